"""bluediff: JAX/Flax diffusion with non-white noise and arbitrary corruptions."""
__version__ = "0.1.0"


def load_pretrained(path: str):
  """An exported model (`--mode=export`) with a `.sample(num, seed)` method; see bluediff.export."""
  from bluediff.export import load_pretrained as _load
  return _load(path)
