"""White Gaussian noise."""
import jax
import jax.numpy as jnp


def white_noise(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
  """i.i.d. N(0, 1). shape: e.g. [B, H, W, C]."""
  return jax.random.normal(key, shape, dtype)
