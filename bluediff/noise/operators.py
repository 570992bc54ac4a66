"""Gaussian noise as a linear operator on white noise: n = L eps.

Every noise is `apply(eps)` (the operator L) plus `__call__(key, shape)`
(= L applied to fresh white noise). Processes that need both eps and L eps
(the time-varying mix L_t = g I + (1 - g) L_b) call `apply` on their own eps.
Operators are pytrees: their arrays are leaves, so they reach the jitted step
as arguments, never as embedded constants. Shapes are NHWC; every channel
gets the same operator independently.

`root` names the square root of the covariance an operator applies ("fft":
the symmetric circulant root, "cholesky": the lower-triangular one); two
roots of one covariance give the same law for L eps but not for the
time-varying mix (methods.md §2.1), so it is part of a model's identity.
"""
from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


class NoiseOperator:
  """Base: subclasses define `apply(eps)`; `root` and `digest` identify the law."""
  root: ClassVar[str] = "identity"

  def apply(self, eps: jax.Array) -> jax.Array:
    raise NotImplementedError

  def __call__(self, key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    return self.apply(jax.random.normal(key, shape, dtype))

  def diagonal(self, h: int, w: int) -> jax.Array:
    """diag(L) as an [H, W] field: L's own weight on each pixel."""
    raise NotImplementedError


@struct.dataclass
class WhiteNoise(NoiseOperator):
  """i.i.d. N(0, 1): L = I."""
  digest: str = struct.field(pytree_node=False, default="white")

  def apply(self, eps):
    return eps

  def diagonal(self, h, w):
    return jnp.ones((h, w))


@struct.dataclass
class SpectralNoise(NoiseOperator):
  """Stationary (toroidal) Gaussian noise with power spectrum S: L = F^-1 diag(sqrt S) F.

  amplitude: sqrt(S) as [H, W // 2 + 1] (the rfft half-plane of an even
  spectrum, so L is real and symmetric). Images must be [B, H, W, C] with the
  spectrum's H, W: statistics are built per image size, with no tiles.
  """
  amplitude: jax.Array
  width: int = struct.field(pytree_node=False, default=0)
  digest: str = struct.field(pytree_node=False, default="")
  root: ClassVar[str] = "fft"

  @classmethod
  def from_spectrum(cls, spectrum: np.ndarray, digest: str = "") -> "SpectralNoise":
    """spectrum: [H, W] power per 2-D frequency (mean 1 = unit per-pixel variance)."""
    s = np.asarray(spectrum, np.float64)
    if not np.allclose(s, np.roll(np.flip(s, (0, 1)), 1, (0, 1)), rtol=1e-6, atol=1e-9):
      raise ValueError("the spectrum is not even (S(k) != S(-k)); the noise would not be real")
    w = s.shape[1]
    return cls(jnp.asarray(np.sqrt(s[:, :w // 2 + 1]), jnp.float32), w, digest)

  def diagonal(self, h, w):
    """A circulant's diagonal is constant: the mean of sqrt(S) over the full plane."""
    full = jnp.concatenate([self.amplitude, jnp.flip(self.amplitude[:, 1:(self.width + 1) // 2], 1)], 1)
    return jnp.full((h, w), jnp.mean(full))

  def apply(self, eps):
    h, w = self.amplitude.shape[0], self.width
    if eps.shape[1:3] != (h, w):
      raise ValueError(f"noise statistics are for {h}x{w} images; got {eps.shape[1:3]}")
    b, c = eps.shape[0], eps.shape[3]
    # Transform over the minor axes: one field per (image, channel); a single
    # channel needs no transpose (most of the cost for C = 3 on CPU).
    x = eps.reshape(b, h, w) if c == 1 else eps.transpose(0, 3, 1, 2)
    y = jnp.fft.irfft2(jnp.fft.rfft2(x) * self.amplitude, s=(h, w))
    return (y.reshape(b, h, w, 1) if c == 1 else y.transpose(0, 2, 3, 1)).astype(eps.dtype)


@struct.dataclass
class CholeskyNoise(NoiseOperator):
  """L = the lower Cholesky factor of the covariance of T x T fields ([T*T, T*T], raster order).

  Images of T x T use it directly; larger images (multiples of T) are
  independent T x T tiles side by side, as in the blue-noise reference.
  """
  factor: jax.Array
  tile: int = struct.field(pytree_node=False, default=0)
  digest: str = struct.field(pytree_node=False, default="")
  root: ClassVar[str] = "cholesky"

  def diagonal(self, h, w):
    t = self.tile
    return jnp.tile(jnp.diagonal(self.factor).reshape(t, t), (h // t, w // t))

  def apply(self, eps):
    b, h, w, c = eps.shape
    t = self.tile
    if h % t or w % t:
      raise ValueError(f"Cholesky noise tiles {t}x{t} fields; image {h}x{w} is not a multiple")
    tiles = eps.reshape(b, h // t, t, w // t, t, c).transpose(0, 1, 3, 2, 4, 5)
    tiles = tiles.reshape(b, h // t, w // t, t * t, c)
    out = jnp.einsum("ij,bhwjc->bhwic", self.factor, tiles, precision=jax.lax.Precision.HIGHEST)
    out = out.reshape(b, h // t, w // t, t, t, c).transpose(0, 1, 3, 2, 4, 5)
    return out.reshape(b, h, w, c)


def frequency_radius(h: int, w: int) -> np.ndarray:
  """|f| in cycles per image for every 2-D FFT bin, [H, W]."""
  fy, fx = np.fft.fftfreq(h) * h, np.fft.fftfreq(w) * w
  return np.hypot(*np.meshgrid(fy, fx, indexing="ij"))


def red_spectrum(h: int, w: int, exponent: float = 2.0) -> np.ndarray:
  """Power falling as 1 / |f|^exponent (DC excluded), normalised to unit per-pixel variance."""
  r = frequency_radius(h, w)
  s = np.zeros((h, w))
  s[r > 0] = r[r > 0] ** -exponent
  return s * (h * w) / s.sum()
