"""Desaturation: a linear fade of the colour towards the channel mean."""
from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Desaturate:
  """gray + (1 - t / T) (x0 - gray), gray = the channel mean."""
  num_steps: int = struct.field(pytree_node=False, default=20)
  random: ClassVar[bool] = False

  def __call__(self, x0, t, key=None):
    gray = x0.mean(axis=-1, keepdims=True)
    keep = 1.0 - jnp.asarray(t, jnp.float32) / self.num_steps
    return gray + keep[:, None, None, None] * (x0 - gray)
