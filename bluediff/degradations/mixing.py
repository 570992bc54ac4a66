"""Degradations that mix x0 with a second image: a fixed noise per image, or an image
of a second dataset (the targets are given; the caller reads them)."""
from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


class AlphaBarMix:
  """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) e, e a second image (noise z, a target y):
  the form whose e can be re-estimated from (x_t, x0_hat), as DDIM does."""

  def mix(self, x0, e, t):
    """x0, e [B, H, W, C], t [B] integer in 0..T -> x_t."""
    ab = self.alpha_bar[jnp.asarray(t)][:, None, None, None]
    return jnp.sqrt(ab) * x0 + jnp.sqrt(1 - ab) * e

  def estimate_other(self, x_t, x0_hat, t):
    """e_hat = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t) for t [B] >= 1 (abar_t < 1)."""
    ab = self.alpha_bar[jnp.asarray(t)][:, None, None, None]
    return (x_t - jnp.sqrt(ab) * x0_hat) / jnp.sqrt(1 - ab)


@struct.dataclass
class FixedNoise(AlphaBarMix):
  """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) z with one z per image (from its key):
  cold diffusion's deterministic-noise degradation (cosine abar, T steps)."""
  alpha_bar: jax.Array                     # [T + 1], abar_0 = 1
  random: ClassVar[bool] = True

  @property
  def num_steps(self) -> int:
    return self.alpha_bar.shape[0] - 1

  @classmethod
  def cosine(cls, num_steps: int, s: float = 0.008) -> "FixedNoise":
    u = np.arange(num_steps + 1) / num_steps
    f = np.cos((u + s) / (1 + s) * np.pi / 2) ** 2
    return cls(jnp.asarray(np.clip(f / f[0], 1e-5, 1.0), jnp.float32))

  def noise(self, shape, key):
    return jax.vmap(lambda k: jax.random.normal(k, shape[1:]))(key)

  def __call__(self, x0, t, key=None):
    return self.mix(x0, self.noise(x0.shape, key), t)


@struct.dataclass
class Blend(AlphaBarMix):
  """Animorphosis: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) y, with y an image of a
  second dataset (one of `targets` [N, H, W, C], picked by the image's key)."""
  targets: jax.Array
  alpha_bar: jax.Array
  random: ClassVar[bool] = True

  @property
  def num_steps(self) -> int:
    return self.alpha_bar.shape[0] - 1

  def target(self, key):
    idx = jax.vmap(lambda k: jax.random.randint(k, (), 0, self.targets.shape[0]))(key)
    return self.targets[idx]

  def __call__(self, x0, t, key=None):
    return self.mix(x0, self.target(key).astype(x0.dtype), t)
