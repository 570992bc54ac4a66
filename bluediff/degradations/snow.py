"""Procedural snow (ImageNet-C style) with its motion-blur kernel."""
from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import struct


def motion_blur_kernel(h: int, w: int, length: jax.Array, angle: jax.Array,
                       sigma: float) -> jax.Array:
  """A normalised one-sided motion-blur kernel [H, W] on the torus (origin at [0, 0]).

  Weight exp(-u^2 / 2 sigma^2) for 0 <= u <= length along the direction
  `angle` (radians), falling linearly to 0 one pixel off the line.
  """
  dy = jnp.fft.fftfreq(h) * h
  dx = jnp.fft.fftfreq(w) * w
  yy, xx = jnp.meshgrid(dy, dx, indexing="ij")
  u = xx * jnp.cos(angle) + yy * jnp.sin(angle)          # along the motion
  v = -xx * jnp.sin(angle) + yy * jnp.cos(angle)         # across it
  k = jnp.exp(-u ** 2 / (2 * sigma ** 2)) * (u >= 0) * (u <= length) * jnp.maximum(0.0, 1 - jnp.abs(v))
  return k / jnp.sum(k)


@struct.dataclass
class Snow:
  """Procedural ImageNet-C-style snow (no image library): per image, from its key,
  a Gaussian noise layer (mean 0.1, std 0.3), zoomed 3x, thresholded at
  thr_t = thr_start + (thr_end - thr_start) t / T, motion-blurred along a random
  angle in [-135, -45] degrees with length 1 + (max_length - 1) t / T; the layer
  and its 180-degree rotation are added to the image brightened towards
  1.5 gray + 0.5 (ImageNet-C's blend, weight 0.2 t / T) and clipped. D(x0, 0) = x0.
  Images are in [-1, 1]; the recipe runs in [0, 1].
  """
  num_steps: int = struct.field(pytree_node=False, default=200)
  thr_start: float = struct.field(pytree_node=False, default=1.15)
  thr_end: float = struct.field(pytree_node=False, default=0.6)
  max_length: float = struct.field(pytree_node=False, default=10.0)
  sigma: float = struct.field(pytree_node=False, default=4.0)
  zoom: float = struct.field(pytree_node=False, default=3.0)
  random: ClassVar[bool] = True

  def threshold(self, t):
    return self.thr_start + (self.thr_end - self.thr_start) * jnp.asarray(t, jnp.float32) / self.num_steps

  def layer(self, key, h: int, w: int, t) -> jax.Array:
    """The snow layer [H, W] of one image at step t (scalar)."""
    k_noise, k_angle = jax.random.split(key)
    noise = 0.1 + 0.3 * jax.random.normal(k_noise, (h, w))
    ch, cw = max(1, int(round(h / self.zoom))), max(1, int(round(w / self.zoom)))
    top, left = (h - ch) // 2, (w - cw) // 2
    zoomed = jax.image.resize(noise[top:top + ch, left:left + cw], (h, w), "bilinear")
    flakes = jnp.where(zoomed >= self.threshold(t), zoomed, 0.0)
    frac = jnp.asarray(t, jnp.float32) / self.num_steps
    angle = jnp.deg2rad(jax.random.uniform(k_angle, (), minval=-135.0, maxval=-45.0))
    kernel = motion_blur_kernel(h, w, 1.0 + (self.max_length - 1.0) * frac, angle, self.sigma)
    blurred = jnp.real(jnp.fft.ifft2(jnp.fft.fft2(flakes) * jnp.fft.fft2(kernel)))
    return blurred * (t > 0)

  def __call__(self, x0, t, key=None):
    b, h, w, c = x0.shape
    t = jnp.broadcast_to(jnp.asarray(t), (b,))
    layers = jax.vmap(lambda k, s: self.layer(k, h, w, s))(key, t)[..., None]   # [B, H, W, 1]
    x = (x0 + 1.0) / 2.0
    gray = x.mean(axis=-1, keepdims=True)
    mix = 0.2 * (t / self.num_steps)[:, None, None, None]
    x = (1 - mix) * x + mix * jnp.maximum(x, gray * 1.5 + 0.5)
    x = jnp.clip(x + layers + jnp.rot90(layers, 2, axes=(1, 2)), 0.0, 1.0)
    return x * 2.0 - 1.0
