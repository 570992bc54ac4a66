"""Super-resolution as a degradation: t halvings, then back to full size."""
from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class SuperResolution:
  """Step t: t bicubic halvings (no antialias), then nearest back to full size."""
  num_steps: int = struct.field(pytree_node=False, default=3)
  random: ClassVar[bool] = False

  def levels(self, x0):
    """[T + 1, B, H, W, C]: every level, resized back (static shapes)."""
    b, h, w, c = x0.shape
    out, x = [x0], x0
    for _ in range(self.num_steps):
      x = jax.image.resize(x, (b, x.shape[1] // 2, x.shape[2] // 2, c), "bicubic", antialias=False)
      out.append(jax.image.resize(x, x0.shape, "nearest"))
    return jnp.stack(out)

  def __call__(self, x0, t, key=None):
    levels = self.levels(x0)
    return levels[jnp.asarray(t), jnp.arange(x0.shape[0])]
