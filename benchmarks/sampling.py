"""Sampling throughput: images/s of the whole jitted sampler (one `fori_loop`).

  python benchmarks/sampling.py --config=configs/cifar_tv.py --batch=8 --steps=250

Times each sampler the config's process offers in `--methods` (first- and
second-order: IADB / blue noise euler and heun) at --steps steps, from random
weights (the cost does not depend on them), and prints a table with the
network evaluations (NFE) per image.
"""
import time

import jax
from absl import app, flags
from ml_collections import config_flags

from bluediff import step as step_lib
from bluediff.experiment import build_experiment

_CONFIG = config_flags.DEFINE_config_file("config", "configs/cifar_tv.py")
_BATCH = flags.DEFINE_integer("batch", 8, "images per sampler call")
_STEPS = flags.DEFINE_integer("steps", 250, "sampling steps")
_METHODS = flags.DEFINE_list("methods", ["euler", "heun"], "samplers to time")


def main(_):
  config = _CONFIG.value
  exp = build_experiment(config)
  params = exp.init_state(0).params
  print(f"{config.process.name}, {exp.image_shape}, batch {_BATCH.value}, "
        f"{_STEPS.value} steps, {jax.device_count()} x {jax.devices()[0].device_kind}")
  print("| sampler | NFE | s per batch | images/s | ms per NFE (batch) |\n|---|---|---|---|---|")
  for method in _METHODS.value:
    fn = step_lib.make_sampler(exp.model, exp.process, exp.mesh,
                               (_BATCH.value, *exp.image_shape), method=method,
                               num_steps=_STEPS.value)
    args = (exp.process_on_mesh, params, jax.random.key(1), None)
    compiled = fn.lower(*args).compile()               # compile outside the timing
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    seconds = time.perf_counter() - t0
    nfe = 2 * _STEPS.value - 1 if method == "heun" else _STEPS.value
    print(f"| {method} | {nfe} | {seconds:.1f} | {_BATCH.value / seconds:.3f} | "
          f"{1e3 * seconds / nfe:.0f} |", flush=True)


if __name__ == "__main__":
  app.run(main)
