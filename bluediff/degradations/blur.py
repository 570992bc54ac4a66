"""Blur (cold diffusion's O(1) blur, methods.md §3) and the 1-D filtering it is built from.

A symmetric kernel applied with periodic padding is a circular convolution, and with
reflect padding (the reference's) it is a circular convolution of the whole-sample
symmetric extension (period 2(N - 1); exact while the kernel radius is below N) - both
diagonalised by an FFT. Step i's actual sampled, truncated kernel has transfer function
H_i(k); t steps multiply: D(x0, t) = F^-1(prod_{i<=t} H_i . F x0), from a table of
cumulative products (one row per t) built once.
"""
from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


PADDINGS = ("reflect", "periodic")


def gaussian_kernel_1d(std: float, size: int) -> np.ndarray:
  """The sampled, truncated, normalised Gaussian on offsets -(size//2)..size//2."""
  r = size // 2
  x = np.arange(-r, r + 1, dtype=np.float64)
  k = np.exp(-x ** 2 / (2 * std ** 2))
  return k / k.sum()


def transfer_function(kernel: np.ndarray, period: int) -> np.ndarray:
  """Real transfer function [period // 2 + 1] of a symmetric 1-D kernel on a torus of `period`."""
  r = len(kernel) // 2
  if r >= period:
    raise ValueError(f"kernel radius {r} does not fit a period of {period}")
  wrapped = np.zeros(period)
  for offset, v in zip(range(-r, r + 1), kernel):
    wrapped[offset % period] += v
  return np.real(np.fft.rfft(wrapped))


def _extend(x: jax.Array, axis: int) -> jax.Array:
  """Whole-sample symmetric extension along `axis`: length N -> 2 (N - 1)."""
  n = x.shape[axis]
  inner = jax.lax.slice_in_dim(x, 1, n - 1, axis=axis)
  return jnp.concatenate([x, jnp.flip(inner, axis)], axis=axis)


def filter_axis(x: jax.Array, tf: jax.Array, axis: int, padding: str) -> jax.Array:
  """Applies per-example transfer functions tf [B, P // 2 + 1] along `axis` of x [B, H, W, C]."""
  n = x.shape[axis]
  ext = _extend(x, axis) if padding == "reflect" else x
  period = ext.shape[axis]
  # Transform over the minor axis of a 2-D [rows, period] array: XLA:CPU's FFT
  # requires the default layout, which a transform over an inner axis inside
  # a loop can lose (RET_CHECK in fft_thunk).
  moved = jnp.moveaxis(ext, axis, -1)                       # [B, ., C, P]
  flat = moved.reshape(-1, period)
  f = jnp.fft.rfft(flat, axis=-1).reshape(moved.shape[:-1] + (period // 2 + 1,))
  f = f * tf[:, None, None, :]
  y = jnp.fft.irfft(f.reshape(-1, period // 2 + 1), n=period, axis=-1).reshape(moved.shape)
  y = jnp.moveaxis(y, -1, axis)
  return jax.lax.slice_in_dim(y, 0, n, axis=axis).astype(x.dtype)


@struct.dataclass
class Blur:
  """Repeated Gaussian blur; step i uses std_i = std_fn(i) on a size x size kernel.

  tf: cumulative transfer functions [T + 1, P // 2 + 1] (row t = prod_{i<=t}), the
  same along both axes of a square image; `mean_at_end` replaces D(., T) by the per-channel mean
  (the generation variant).
  """
  tf: jax.Array
  stds: tuple = struct.field(pytree_node=False)
  kernel_size: int = struct.field(pytree_node=False, default=11)
  padding: str = struct.field(pytree_node=False, default="reflect")
  mean_at_end: bool = struct.field(pytree_node=False, default=False)
  random: ClassVar[bool] = False

  @property
  def num_steps(self) -> int:
    return self.tf.shape[0] - 1

  @classmethod
  def build(cls, stds, kernel_size: int, image_size: int, padding: str = "reflect",
            mean_at_end: bool = False) -> "Blur":
    if padding not in PADDINGS:
      raise ValueError(f"blur padding {padding!r} is unknown; choose one of {list(PADDINGS)}")
    period = 2 * (image_size - 1) if padding == "reflect" else image_size
    rows = [np.ones(period // 2 + 1)]
    for std in stds:
      rows.append(rows[-1] * transfer_function(gaussian_kernel_1d(std, kernel_size), period))
    tf = jnp.asarray(np.stack(rows), jnp.float32)
    return cls(tf, tuple(float(s) for s in stds), kernel_size, padding, mean_at_end)

  def __call__(self, x0, t, key=None):
    t = jnp.asarray(t, jnp.int32)
    y = filter_axis(filter_axis(x0, self.tf[t], 1, self.padding), self.tf[t], 2, self.padding)
    if self.mean_at_end:
      mean = jnp.broadcast_to(x0.mean(axis=(1, 2), keepdims=True), x0.shape)
      y = jnp.where((t == self.num_steps)[:, None, None, None], mean, y)
    return y

  def recursive(self, x0, t: int):
    """The reference's O(t) form: t depthwise convolutions, each padded (for comparison)."""
    mode = "reflect" if self.padding == "reflect" else "wrap"
    r = self.kernel_size // 2
    x = x0
    for i in range(t):
      k1 = jnp.asarray(gaussian_kernel_1d(self.stds[i], self.kernel_size), x.dtype)
      k2 = jnp.outer(k1, k1)[:, :, None, None] * jnp.ones((1, 1, 1, x.shape[-1]), x.dtype)
      xp = jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), mode=mode)
      x = jax.lax.conv_general_dilated(xp, k2, (1, 1), "VALID",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                       feature_group_count=x.shape[-1],
                                       precision=jax.lax.Precision.HIGHEST)
    if self.mean_at_end and t == self.num_steps:
      x = jnp.broadcast_to(x0.mean(axis=(1, 2), keepdims=True), x0.shape)
    return x


def blur_stds(config) -> list[float]:
  g = config
  if g.blur_schedule == "linear":
    return [g.blur_std + g.blur_std_step * i for i in range(g.num_steps)]
  if g.blur_schedule == "exp":
    return [float(np.exp(g.blur_std_step * i)) for i in range(g.num_steps)]
  raise ValueError(f"config.degradation.blur_schedule={g.blur_schedule!r}: use linear or exp")
