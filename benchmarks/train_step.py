"""Train-step throughput: the UNet alone vs the full bluediff step.

  python benchmarks/train_step.py --config=configs/digits.py [--config.training.batch_size=64]

"UNet alone" is forward + backward + AdamW on the network with a fixed
regression target (no process, no noise, no EMA); "full step" is the jitted
step the loop runs (process + noise + UNet + optimizer + EMA). The gap is the
framework's overhead. Prints a table; the figures go into BUILD_NOTES.md.
"""
import time

import jax
import jax.numpy as jnp
import optax
from absl import app
from ml_collections import config_flags

from bluediff import sharding
from bluediff.train import build_experiment

_CONFIG = config_flags.DEFINE_config_file("config", "configs/digits.py")


def timeit(fn, state, *args, iters: int, warmup: int = 2):
  for _ in range(warmup):
    state, out = fn(state, *args)
  jax.block_until_ready(out)
  t = time.perf_counter()
  for _ in range(iters):
    state, out = fn(state, *args)
  jax.block_until_ready(out)
  return (time.perf_counter() - t) / iters


def main(_):
  config = _CONFIG.value
  exp = build_experiment(config)
  b = config.training.batch_size
  h, w, c = exp.image_shape
  images = sharding.host_to_global(jax.random.normal(jax.random.key(1), (b, h, w, c)), exp.mesh)
  n_params = sum(x.size for x in jax.tree.leaves(exp.init_state(0).params))

  def unet_only(state, x):
    t = jnp.full((x.shape[0],), 0.5)
    def loss_fn(p):
      y = exp.model.apply({"params": p}, x, t, train=True, rngs={"dropout": jax.random.key(0)})
      return jnp.mean(jnp.square(y - x))
    loss, g = jax.value_and_grad(loss_fn)(state.params)
    upd, opt = exp.optimizer.update(g, state.opt_state, state.params)
    return state.replace(params=optax.apply_updates(state.params, upd), opt_state=opt), loss

  unet_step = jax.jit(unet_only, donate_argnums=0)
  full_step = exp.train_step()
  key = jax.device_put(jax.random.key(0), sharding.replicated(exp.mesh))
  flops = full_step.func.lower(exp.process_on_mesh, exp.init_state(0), images, key).compile().cost_analysis()
  flops = flops.get("flops", float("nan")) if isinstance(flops, dict) else float("nan")
  # Best of 3 interleaved rounds: the two timings see the same machine state.
  t_unet, t_full = float("inf"), float("inf")
  for _ in range(3):
    t_unet = min(t_unet, timeit(unet_step, exp.init_state(0), images, iters=10))
    t_full = min(t_full, timeit(lambda s, x: full_step(s, x, key), exp.init_state(0), images,
                                iters=10))

  print(f"\nconfig: {config.data.dataset} {h}x{w}x{c}, batch {b}, {n_params/1e6:.2f}M params, "
        f"{jax.device_count()} x {jax.devices()[0].platform}")
  print("| what | ms/step | images/s | GFLOP/s |")
  print("|---|---|---|---|")
  print(f"| UNet fwd+bwd+AdamW | {t_unet*1e3:.1f} | {b/t_unet:.1f} | |")
  print(f"| full bluediff step | {t_full*1e3:.1f} | {b/t_full:.1f} | {flops/t_full/1e9:.1f} |")
  print(f"| overhead outside the UNet | {(t_full-t_unet)*1e3:.1f} | {100*(t_full-t_unet)/t_full:.1f} % | |")


if __name__ == "__main__":
  app.run(main)
