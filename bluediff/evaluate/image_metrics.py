"""Restoration metrics on batches: RMSE, PSNR and the standard Gaussian-window SSIM.

Images are [B, H, W, C] in [-1, 1] (data range 2) unless `data_range` says
otherwise. Each function returns one value per image ([B]); average as needed.
SSIM is Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5, K1 = 0.01,
K2 = 0.03, population covariances, reflect padding, and the mean taken over
the map with the 5-pixel border cropped — scikit-image's
`structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)` convention, channel-averaged.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def rmse(x: jax.Array, y: jax.Array) -> jax.Array:
  return jnp.sqrt(jnp.mean(jnp.square(x - y), axis=(1, 2, 3)))


def psnr(x: jax.Array, y: jax.Array, data_range: float = 2.0) -> jax.Array:
  mse = jnp.mean(jnp.square(x - y), axis=(1, 2, 3))
  return 10.0 * jnp.log10(data_range ** 2 / mse)


def _gaussian_1d(sigma: float, radius: int) -> np.ndarray:
  x = np.arange(-radius, radius + 1, dtype=np.float64)
  k = np.exp(-0.5 * (x / sigma) ** 2)
  return (k / k.sum()).astype(np.float32)


def _blur(x: jax.Array, k: jax.Array, radius: int) -> jax.Array:
  """Separable filter with reflect ('symmetric' in numpy terms) padding. x [B,H,W,C]."""
  x = jnp.pad(x, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="symmetric")
  h, w = x.shape[1] - 2 * radius, x.shape[2] - 2 * radius
  x = sum(k[i] * x[:, i:i + h] for i in range(2 * radius + 1))
  return sum(k[i] * x[:, :, i:i + w] for i in range(2 * radius + 1))


def ssim(x: jax.Array, y: jax.Array, data_range: float = 2.0, sigma: float = 1.5) -> jax.Array:
  """Mean SSIM per image: x, y [B, H, W, C] -> [B]."""
  radius = int(3.5 * sigma + 0.5)
  k = jnp.asarray(_gaussian_1d(sigma, radius))
  x, y = x.astype(jnp.float32), y.astype(jnp.float32)
  mx, my = _blur(x, k, radius), _blur(y, k, radius)
  vx = _blur(x * x, k, radius) - mx * mx
  vy = _blur(y * y, k, radius) - my * my
  cxy = _blur(x * y, k, radius) - mx * my
  c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
  s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
  s = s[:, radius:-radius, radius:-radius, :]
  return jnp.mean(s, axis=(1, 2, 3))
