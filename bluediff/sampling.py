"""mode=sample: draw images from a trained run, in batches over the mesh."""
from __future__ import annotations

import os

import jax
import numpy as np
from tqdm.auto import tqdm

from bluediff import sharding
from bluediff.checkpoint import Checkpointer
from bluediff.data.sources import to_uint8
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


def generate(exp: Experiment, params, num: int, seed: int, batch_size: int | None = None,
             method: str | None = None, num_steps: int | None = None) -> np.ndarray:
  """`num` samples as uint8 [num, H, W, C]; batch b uses key fold_in(seed, b)."""
  batch_size = batch_size or exp.config.sampling.batch_size
  sample = exp.sampler(batch_size, method, num_steps)
  base = jax.random.key(seed)
  out = []
  for b in tqdm(range(-(-num // batch_size)), desc="sample", disable=not exp.is_chief):
    out.append(to_uint8(sharding.to_host(sample(params, jax.random.fold_in(base, b)))))
  return np.concatenate(out)[:num]


def run_sample(config, workdir: str, step: int | None = None) -> str:
  """Writes <workdir>/samples.npz (images: uint8 [N, H, W, C]) and a grid PNG."""
  exp = build_experiment(config)
  sc = config.sampling
  params, restored = load_params(exp, workdir, step, sc.use_ema)
  images = generate(exp, params, sc.num_samples, config.seed)
  path = os.path.join(workdir, "samples.npz")
  if exp.is_chief:
    np.savez(path, images=images)
    save_grid(images[:config.training.grid_size], os.path.join(workdir, "samples_grid.png"))
    print(f"{len(images)} samples from step {restored} ({sc.method}, {sc.num_steps} steps): {path}")
  return path
