"""GroupNorm written as per-channel moments, then per-group statistics.

Same parameters ('scale', 'bias'), epsilon and variance formula (E[x^2] - E[x]^2)
as `flax.linen.GroupNorm`, so checkpoints are interchangeable; it differs in
how the reduction is laid out. Flax reduces [B, H, W, G, C/G] over (H, W, C/G),
whose innermost reduced axis is C/G wide (4 for 128 channels in 32 groups),
which XLA:CPU emits as a slow strided loop. Here the reductions run over the
spatial axes only, with the channel axis contiguous (vectorised), and the tiny
[B, C] moments are then pooled into groups; the backward pass inherits the
same layout. With bluediff's XLA:CPU flag, this cut the gradient step of the
DDPM CIFAR UNet by about a tenth on a 2-core CPU (4.1 -> 3.7 s at batch 16;
BUILD_NOTES.md, "Training speed").

On the CPU the input's gradient is also materialised (`materialized_grad`):
otherwise XLA fuses the GroupNorm backward into the transposes that the next
convolution's kernel gradient needs, and that fused loop writes in transposed
order at 2-3 GB/s (UNet gradient step 3.70 -> 3.50 s).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


@jax.custom_vjp
def materialized_grad(x: jax.Array) -> jax.Array:
  """Identity whose cotangent passes an optimisation barrier, so XLA computes it
  as its own fusion instead of recomputing it inside its consumers."""
  return x


materialized_grad.defvjp(lambda x: (x, None),
                         lambda _, g: (jax.lax.optimization_barrier(g),))


def group_norm(x: jax.Array, num_groups: int, scale: jax.Array, bias: jax.Array,
               epsilon: float = 1e-6) -> jax.Array:
  """x [B, ..., C] normalised over (spatial..., C/G) per group; scale, bias [C]."""
  if jax.default_backend() == "cpu":    # GPU/TPU fusions write coalesced; leave them be
    x = materialized_grad(x)
  b, c = x.shape[0], x.shape[-1]
  spatial = tuple(range(1, x.ndim - 1))
  xf = x.astype(jnp.float32)
  m1 = jnp.mean(xf, axis=spatial)                       # [B, C]
  m2 = jnp.mean(jnp.square(xf), axis=spatial)           # [B, C]
  mean = m1.reshape(b, num_groups, -1).mean(-1)         # [B, G]
  var = jnp.maximum(m2.reshape(b, num_groups, -1).mean(-1) - jnp.square(mean), 0.0)
  inv = jax.lax.rsqrt(var + epsilon)
  per_channel = lambda g: jnp.repeat(g, c // num_groups, axis=-1)  # [B, G] -> [B, C]
  mul = per_channel(inv) * scale                        # y = x * mul + add
  add = bias - per_channel(mean) * mul
  bshape = (b,) + (1,) * len(spatial) + (c,)
  return (xf * mul.reshape(bshape) + add.reshape(bshape)).astype(x.dtype)


class GroupNorm(nn.Module):
  """Drop-in for `nn.GroupNorm(num_groups)` over NHWC (statistics in float32)."""
  num_groups: int = 32
  epsilon: float = 1e-6
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    assert c % self.num_groups == 0, (c, self.num_groups)
    scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
    y = group_norm(x, self.num_groups, scale, bias, self.epsilon)
    return y.astype(self.dtype or x.dtype)
