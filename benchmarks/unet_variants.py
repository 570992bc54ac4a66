"""Full-step time of UNet variants on digits, to size the CPU default.

  python benchmarks/unet_variants.py 16:32:1,2,2:1:4:128 16:16:1,2,4:1:4:128

Each argument is image_size:channels:channel_mult:num_res_blocks:attn_resolutions:batch.
Prints a table row per variant (parameters, ms per step, images/s).
"""
import sys
import time

import jax

from bluediff import sharding
from bluediff.experiment import build_experiment
from configs import digits


def time_variant(spec: str, iters: int = 8) -> tuple[float, float]:
  size, ch, mult, nres, attn, batch = spec.split(":")
  c = digits.get_shared_config()   # its specs name the unpatched UNet
  c.data.image_size, c.model.channels, c.model.num_res_blocks = int(size), int(ch), int(nres)
  c.model.channel_mult = tuple(int(m) for m in mult.split(","))
  c.model.attn_resolutions = tuple(int(a) for a in attn.split(",")) if attn else ()
  c.training.batch_size = int(batch)
  exp = build_experiment(c)
  state = exp.init_state(0)
  n_params = sum(x.size for x in jax.tree.leaves(state.params))
  fn = exp.train_step()
  x = sharding.host_to_global(
      jax.random.normal(jax.random.key(0), (int(batch), int(size), int(size), 1)), exp.mesh)
  key = jax.random.key(0)
  for _ in range(2):
    state, m = fn(state, x, key)
  jax.block_until_ready(m)
  t = time.perf_counter()
  for _ in range(iters):
    state, m = fn(state, x, key)
  jax.block_until_ready(m)
  return n_params, (time.perf_counter() - t) / iters


if __name__ == "__main__":
  print("| variant | params | ms/step | images/s |\n|---|---|---|---|")
  for spec in sys.argv[1:]:
    n, dt = time_variant(spec)
    print(f"| {spec} | {n / 1e6:.2f}M | {dt * 1e3:.0f} | {int(spec.split(':')[-1]) / dt:.0f} |",
          flush=True)
