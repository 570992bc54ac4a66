"""mode=sample: draw images from a trained run, in batches over the mesh."""
from __future__ import annotations

import os

import jax
import numpy as np
from tqdm.auto import tqdm

from bluediff import sharding
from bluediff.checkpoint import Checkpointer
from bluediff.config import ConfigError
from bluediff.data.sources import load_split, to_uint8
from bluediff.images import save_grid
from bluediff.train import Experiment, build_experiment, restore_or_init


def load_params(exp: Experiment, workdir: str, step: int | None = None, use_ema: bool = True):
  """Sampling weights from the run's latest (or given) checkpoint."""
  hint = f"train first (python -m bluediff.main --mode=train --workdir={workdir} ...)"
  try:
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), read_only=True)
  except FileNotFoundError as e:
    raise FileNotFoundError(f"{e}: {hint}") from None
  with ckpt:
    if ckpt.latest_step() is None:
      raise FileNotFoundError(f"no checkpoint in {ckpt.directory}: {hint}")
    state, _, restored = restore_or_init(exp, ckpt, step)
  return (state.ema_params if use_ema else state.params), restored


def held_out_observations(exp: Experiment, num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(clean held-out images [num, H, W, C] in [-1, 1], their observations) for a conditional
  process: what super-resolution or a restoration starts from."""
  c = exp.config
  x, _ = load_split(c.data.dataset, c.data.eval_split, c.data.image_size, c.data.data_dir)
  if num > len(x):
    raise ConfigError(f"{num} observations asked, but {c.data.dataset}/{c.data.eval_split} "
                      f"holds {len(x)} images")
  x = x[:num]
  observe = jax.jit(exp.process.observe)
  cond = np.concatenate([np.asarray(observe(x[i:i + 500], jax.random.fold_in(jax.random.key(seed), i)))
                         for i in range(0, num, 500)])
  return x, cond


def generate(exp: Experiment, params, num: int, seed: int, batch_size: int | None = None,
             method: str | None = None, num_steps: int | None = None,
             cond: np.ndarray | None = None) -> np.ndarray:
  """`num` samples as uint8 [num, H, W, C]; batch b uses key fold_in(seed, b).

  cond: observations [num, H, W, C] for a conditional process (restored in
  order; the last batch is padded).
  """
  batch_size = batch_size or exp.config.sampling.batch_size
  sample = exp.sampler(batch_size, method, num_steps)
  if exp.process.conditional and cond is None:
    raise ConfigError(f"process {exp.config.process.name} is conditional: it restores "
                      f"observations (see held_out_observations)")
  base = jax.random.key(seed)
  out = []
  for b in tqdm(range(-(-num // batch_size)), desc="sample", disable=not exp.is_chief):
    c = None
    if cond is not None:
      c = cond[b * batch_size:(b + 1) * batch_size]
      c = np.concatenate([c, np.zeros((batch_size - len(c),) + c.shape[1:], c.dtype)])
      c = sharding.shard_replicated_batch(c.astype(np.float32), exp.mesh)
    out.append(to_uint8(sharding.to_host(sample(params, jax.random.fold_in(base, b), c))))
  return np.concatenate(out)[:num]


def run_sample(config, workdir: str, step: int | None = None) -> str:
  """Writes <workdir>/samples.npz (images: uint8 [N, H, W, C]) and a grid PNG."""
  exp = build_experiment(config)
  sc = config.sampling
  params, restored = load_params(exp, workdir, step, sc.use_ema)
  extra = {}
  if exp.process.conditional:
    x, cond = held_out_observations(exp, sc.num_samples, config.seed)
    images = generate(exp, params, sc.num_samples, config.seed, cond=cond)
    extra = {"observations": to_uint8(cond), "references": to_uint8(x)}
  else:
    images = generate(exp, params, sc.num_samples, config.seed)
  path = os.path.join(workdir, "samples.npz")
  if exp.is_chief:
    np.savez(path, images=images, **extra)
    shown = images[:config.training.grid_size]
    if extra:   # observation | restoration | reference, side by side
      n = len(shown)
      shown = np.concatenate([extra["observations"][:n], shown, extra["references"][:n]], axis=2)
    save_grid(shown, os.path.join(workdir, "samples_grid.png"))
    print(f"{len(images)} samples from step {restored} ({sc.method}, {sc.num_steps} steps): {path}")
  return path
