"""bluediff: JAX/Flax diffusion with non-white noise and arbitrary corruptions."""
import os

__version__ = "0.1.0"

# XLA:CPU hands matrix products, convolutions and reductions to its YNNPACK
# kernels with this (experimental) flag: narrow 3x3 convolutions run 1.8x
# faster (benchmarks/conv_lowering.py) and the DDPM CIFAR UNet's train step
# about 1.1x faster (BUILD_NOTES.md, "Training speed"). Only the CPU backend
# reads it. XLA reads XLA_FLAGS when its backend starts, so this takes effect
# when bluediff is imported before the first JAX computation. Replace it with
# BLUEDIFF_XLA_CPU_FLAGS (set it to "" to turn it off).
_FAST_CPU_FLAGS = "--xla_cpu_experimental_ynn_fusion_type=dot,reduce"


def _add_xla_cpu_flags() -> None:
  flags = os.environ.get("BLUEDIFF_XLA_CPU_FLAGS", _FAST_CPU_FLAGS)
  current = os.environ.get("XLA_FLAGS", "")
  if flags and "ynn_fusion_type" not in current:
    os.environ["XLA_FLAGS"] = f"{current} {flags}".strip()


_add_xla_cpu_flags()


def load_pretrained(path: str, overrides: dict | None = None):
  """An exported model (`--mode=export`) with a `.sample(num, seed)` method; see bluediff.export.

  overrides: sampling fields to change ({"process.ddim_eta": 1.0}); one that changes what
  the network means is refused."""
  from bluediff.export import load_pretrained as _load
  return _load(path, overrides)
