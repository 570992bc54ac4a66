"""Loss trajectories of one training run with Winograd and one with direct convolutions.

  python benchmarks/conv_algorithm_training.py --steps=60

Same config, init, batches and keys; only `model.conv_algorithm` differs. The
default network is a 128-channel digits UNet (so "auto" runs Winograd on its
16 and 8 px levels). Prints every fifth loss of each run and their largest
relative difference: they agree to float rounding until the trajectories
diverge chaotically, as any two summation orders would.
"""
import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from bluediff.data.pipeline import train_iterator
from bluediff.experiment import build_experiment

_CONFIG = config_flags.DEFINE_config_file("config", "configs/digits.py")
_STEPS = flags.DEFINE_integer("steps", 60, "training steps per run")
_CHANNELS = flags.DEFINE_integer("channels", 128, "UNet base width (Winograd needs >= 128)")


def run(config, algorithm: str, steps: int) -> np.ndarray:
  config.model.conv_algorithm = algorithm
  exp = build_experiment(config)
  step, state = exp.train_step(), exp.init_state(0)
  batches = train_iterator(config.data, config.training.batch_size, seed=0)
  key = jax.random.key(1)
  losses = []
  for _ in range(steps):
    state, metrics = step(state, jnp.asarray(next(batches)["image"]), key)
    losses.append(float(metrics["loss"]))
  return np.array(losses)


def main(_):
  c = _CONFIG.value
  c.model.channels, c.model.channel_mult, c.model.attn_resolutions = _CHANNELS.value, (1, 2), ()
  c.model.norm_groups = 32
  c.training.batch_size, c.optim.warmup_steps = 32, 10
  losses = {a: run(c, a, _STEPS.value) for a in ("auto", "direct")}
  for a, l in losses.items():
    print(f"{a:6s} " + " ".join(f"{v:.4f}" for v in l[::5]))
  rel = np.abs(losses["auto"] - losses["direct"]) / losses["direct"]
  agree = int(np.argmax(rel > 1e-4)) if (rel > 1e-4).any() else len(rel)
  print(f"losses agree to 1e-4 for the first {agree} steps; "
        f"mean of the last 5: auto {losses['auto'][-5:].mean():.4f}, "
        f"direct {losses['direct'][-5:].mean():.4f}")


if __name__ == "__main__":
  app.run(main)
