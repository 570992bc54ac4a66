"""What blue noise and in-batch pairing cost inside a train step.

    python benchmarks/blue_overhead.py --config=configs/digits_tv.py
    python benchmarks/blue_overhead.py --config=configs/cifar_tv.py --full_iters=2

"Process only" is the process's loss with a free network (zeros): drawing eps,
applying L_b, mixing L_t, pairing and the loss arithmetic, i.e. all the step
does outside the UNet, optimizer and EMA. It is timed for each noise root x
pairing at batch 64 and 256, and as a share of the config's full jitted step.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
from absl import app, flags
from ml_collections import config_flags

from timing import best_seconds   # benchmarks/timing.py

from bluediff import sharding
from bluediff.processes import build_process
from bluediff.experiment import build_experiment

_CONFIG = config_flags.DEFINE_config_file("config", "configs/digits_tv.py")
_FULL_ITERS = flags.DEFINE_integer("full_iters", 10, "iterations of the full step")


def main(_):
  config = _CONFIG.value
  exp = build_experiment(config)
  b = config.training.batch_size
  h, w, c = exp.image_shape
  step = exp.train_step()
  key = jax.device_put(jax.random.key(0), sharding.replicated(exp.mesh))
  images = sharding.host_to_global(jax.random.uniform(jax.random.key(1), (b, h, w, c), minval=-1,
                                                      maxval=1), exp.mesh)
  state = exp.init_state(0)

  def full(state):
    return step(state, images, key)[0]
  state = jax.block_until_ready(full(state))     # compile (the state is donated)
  t0 = time.perf_counter()
  for _ in range(_FULL_ITERS.value):
    state = full(state)
  jax.block_until_ready(state)
  t_full = (time.perf_counter() - t0) / _FULL_ITERS.value

  out_c = exp.process.output_channels(c)
  print(f"\nconfig: {config.data.dataset} {h}x{w}x{c}, batch {b}, full step {t_full * 1e3:.0f} ms "
        f"({jax.device_count()} x {jax.devices()[0].platform})")
  print("| noise root | pairing | batch | process only (ms) | share of full step |")
  print("|---|---|---|---|---|")
  for root in ("fft", "cholesky"):
    for pairing in ("none", "greedy", "exact"):
      for batch in sorted({64, 256, b}):
        cfg = config.copy_and_resolve_references()
        cfg.noise.root, cfg.process.pairing = root, pairing
        process = build_process(cfg, exp.mesh.devices.size)
        x0 = jax.random.uniform(jax.random.key(2), (batch, h, w, c), minval=-1, maxval=1)
        free_net = lambda x, t: jnp.zeros(x.shape[:-1] + (out_c,))   # noqa: E731
        fn = jax.jit(lambda p, k, x: p.loss(free_net, x, k)[0])
        t = best_seconds(fn, process, jax.random.key(3), x0, rounds=3, iters=10)
        share = f"{100 * t / t_full:.2f} %" if batch == b else ""
        print(f"| {root} | {pairing} | {batch} | {t * 1e3:.2f} | {share} |")


if __name__ == "__main__":
  app.run(main)
