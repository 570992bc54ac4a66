"""mode=sample: draw images from a trained run, in batches over the mesh."""
from __future__ import annotations

import jax
import numpy as np
from tqdm.auto import tqdm

from bluediff import sharding, storage
from bluediff.checkpoint import Checkpointer
from bluediff.config import ConfigError
from bluediff.data.sources import load_split, to_uint8
from bluediff.images import save_grid
from bluediff.experiment import Experiment, attach_run_state, build_experiment, restore_or_init


def load_params(exp: Experiment, workdir: str, step: int | None = None, use_ema: bool = True):
  """Sampling weights from the run's latest (or given) checkpoint."""
  hint = f"train first (python -m bluediff.main --mode=train --workdir={workdir} ...)"
  try:
    ckpt = Checkpointer(storage.join(workdir, "checkpoints"), read_only=True)
  except FileNotFoundError as e:
    raise FileNotFoundError(f"{e}: {hint}") from None
  with ckpt:
    if ckpt.latest_step() is None:
      raise FileNotFoundError(f"no checkpoint in {ckpt.directory}: {hint}")
    state, _, restored = restore_or_init(exp, ckpt, step)
  attach_run_state(exp, workdir)
  exp.bind_process(jax.device_get(state.process_params))   # learned schedule, if any
  return (state.ema_params if use_ema else state.params), restored


def held_out_references(exp: Experiment, num: int) -> np.ndarray:
  """The first `num` held-out images [num, H, W, C] in [-1, 1]: what conditional
  processes restore in sample / evaluate / the training grids."""
  c = exp.config
  x, _ = load_split(c.data.dataset, c.data.eval_split, c.data.image_size, c.data.data_dir)
  if num > len(x):
    raise ConfigError(f"{num} restorations asked, but {c.data.dataset}/{c.data.eval_split} "
                      f"holds {len(x)} images")
  return x[:num]


def _batches(num: int, batch_size: int, is_chief: bool, desc: str):
  return tqdm(range(-(-num // batch_size)), desc=desc, disable=not is_chief)


def _pad(x: np.ndarray, size: int) -> np.ndarray:
  return np.concatenate([x, np.zeros((size - len(x),) + x.shape[1:], x.dtype)]) if len(x) < size else x


def generate(exp: Experiment, params, num: int, seed: int, batch_size: int | None = None,
             method: str | None = None, num_steps: int | None = None) -> np.ndarray:
  """`num` unconditional samples as uint8 [num, H, W, C]; batch b uses key fold_in(seed, b)."""
  if exp.process.conditional:
    raise ConfigError(f"process {exp.config.process.name} restores observations; it does not "
                      f"generate from noise alone")
  batch_size = batch_size or exp.config.sampling.batch_size
  sample = exp.sampler(batch_size, method, num_steps)
  base = jax.random.key(seed)
  out = [to_uint8(sharding.to_host(sample(params, jax.random.fold_in(base, b))))
         for b in _batches(num, batch_size, exp.is_chief, "sample")]
  return np.concatenate(out)[:num]


def restore(exp: Experiment, params, references: np.ndarray, seed: int,
            batch_size: int | None = None, method: str | None = None,
            num_steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Observes clean images [N, H, W, C] in [-1, 1] and restores them.

  Batch b uses key fold_in(seed, b) for the observation AND the sampler, so a
  random degradation (a mask centre, a snow layer) is the same in both.
  Returns (restorations, observations), uint8 [N, H, W, C].
  """
  batch_size = batch_size or exp.config.sampling.batch_size
  sample = exp.sampler(batch_size, method, num_steps)
  observe = jax.jit(exp.process.observe)
  base = jax.random.key(seed)
  restored, observed = [], []
  for b in _batches(len(references), batch_size, exp.is_chief, "restore"):
    key = jax.random.fold_in(base, b)
    x = _pad(np.asarray(references[b * batch_size:(b + 1) * batch_size], np.float32), batch_size)
    cond = observe(sharding.shard_replicated_batch(x, exp.mesh), key)
    restored.append(to_uint8(sharding.to_host(sample(params, key, cond))))
    observed.append(to_uint8(sharding.to_host(cond)))
  n = len(references)
  return np.concatenate(restored)[:n], np.concatenate(observed)[:n]


def run_sample(config, workdir: str, step: int | None = None) -> str:
  """Writes <workdir>/samples.npz (images: uint8 [N, H, W, C]) and a grid PNG."""
  exp = build_experiment(config)
  sc = config.sampling
  params, restored = load_params(exp, workdir, step, sc.use_ema)
  extra = {}
  if exp.process.conditional:
    refs = held_out_references(exp, sc.num_samples)
    images, observations = restore(exp, params, refs, config.seed)
    extra = {"observations": observations, "references": to_uint8(refs)}
  else:
    images = generate(exp, params, sc.num_samples, config.seed)
  path = storage.join(workdir, "samples.npz")
  if exp.is_chief:
    storage.save_npz(path, images=images, **extra)
    shown = images[:config.training.grid_size]
    if extra:   # observation | restoration | reference, side by side
      n = len(shown)
      shown = np.concatenate([extra["observations"][:n], shown, extra["references"][:n]], axis=2)
    save_grid(shown, storage.join(workdir, "samples_grid.png"))
    print(f"{len(images)} samples from step {restored} ({sc.method}, {sc.num_steps} steps): {path}")
  return path
