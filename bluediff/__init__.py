"""bluediff: JAX/Flax diffusion with non-white noise and arbitrary corruptions."""
__version__ = "0.1.0"
