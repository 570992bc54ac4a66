"""Gaussian-mask inpainting (cold diffusion, methods.md §3)."""
from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class GaussianMaskInpaint:
  """x_t = x0 * prod_{i<t} (1 - exp(-r^2 / (2 s_i^2))), s_i = std (i + initial), i from 0.

  Step t applies the reference's kernels 0..t-1 (defading_diffusion_gaussian.py:
  `get_kernels` builds kernel i = 0..T-1 with std `kernel_std * (i + initial_mask)`,
  `q_sample` applies kernels 0..t for its 0-based t = our t - 1).

  r: distance to the mask centre, on the reference's pixel grid (its kernels
  are (N+1)^2 Gaussians centred at N/2, cropped by one row and column): an
  integer in {-1, ..., N-1} per axis drawn per image from `key` (`random_centre`:
  the reference's random crop of a (2N+1)^2 kernel), else N/2 - 1.
  `colour_fill`: the generation variant x_t = m x0 + (1 - m) c with a constant
  colour c per image (each channel uniform in [-0.5, 0.5], from the key),
  covered from the centre out (the reference's default). `reverse`: its
  `--reverse` (the command its README gives): m_t = 1 - prod_{i < T-t} k_i, so
  the colour covers from the outside in and sampling reveals the image from the
  centre out; m_0 = 1.
  """
  num_steps: int = struct.field(pytree_node=False, default=50)
  std: float = struct.field(pytree_node=False, default=0.1)
  initial: float = struct.field(pytree_node=False, default=11.0)
  random_centre: bool = struct.field(pytree_node=False, default=True)
  colour_fill: bool = struct.field(pytree_node=False, default=False)
  reverse: bool = struct.field(pytree_node=False, default=False)
  random: ClassVar[bool] = True

  def mask(self, shape, t, key):
    """[B, H, W, 1] multiplicative mask at steps t [B]."""
    b, h, w, _ = shape
    if self.random_centre:   # integers -1..N-1 per axis
      centre = jax.vmap(lambda k: jax.random.randint(k, (2,), -1, jnp.array([h, w])))(key)
    else:
      centre = jnp.tile(jnp.array([[h // 2 - 1, w // 2 - 1]]), (b, 1))
    centre = centre.astype(jnp.float32)
    yy, xx = jnp.meshgrid(jnp.arange(h), jnp.arange(w), indexing="ij")
    r2 = (yy[None] - centre[:, 0, None, None]) ** 2 + (xx[None] - centre[:, 1, None, None]) ** 2
    i = jnp.arange(self.num_steps, dtype=jnp.float32)           # kernel index 0..T-1
    s = self.std * (i + self.initial)
    log_z = jnp.log1p(-jnp.exp(-r2[:, None] / (2 * s[None, :, None, None] ** 2)))   # [B, T, H, W]
    t = jnp.asarray(t)
    applied = self.num_steps - t if self.reverse else t   # kernels in the product
    on = (i[None, :] < applied[:, None])[:, :, None, None]
    m = jnp.exp(jnp.sum(jnp.where(on, log_z, 0.0), axis=1))[..., None]
    if self.reverse:
      m = jnp.where((t > 0)[:, None, None, None], 1.0 - m, 1.0)
    return m

  def colour(self, key, channels: int) -> jax.Array:
    """[B, 1, 1, C] constant colours, uniform in [-0.5, 0.5] per channel."""
    k = jax.vmap(lambda k: jax.random.fold_in(k, 1))(key)
    return jax.vmap(lambda k: jax.random.uniform(k, (1, 1, channels), minval=-0.5, maxval=0.5))(k)

  def __call__(self, x0, t, key=None):
    m = self.mask(x0.shape, t, key)
    if self.colour_fill:
      return m * x0 + (1 - m) * self.colour(key, x0.shape[-1])
    return x0 * m
