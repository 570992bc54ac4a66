"""2-D convolution that avoids XLA:CPU's slow path on tiny feature maps.

XLA lowers the kernel gradient of a 3x3 convolution to another convolution
whose "image" is the 3x3 kernel. On 2x2 and 4x4 feature maps (the deepest
levels of a 64 px UNet) XLA:CPU runs that one on a generic path, at under
1 GFLOP/s: 400 ms for 0.3 GFLOP on the 113.7M UNet's 2x2 level. There the
convolution is written as im2col: the k*k shifted views are concatenated on
the channel axis, and one matrix product follows. Its gradients are slices
and matrix products, and the patches of a tiny map cost nothing. Larger maps
keep XLA's convolution, which is fast on them. `Conv` takes `nn.Conv`'s
parameters (`kernel` HWIO, `bias`), so checkpoints do not depend on the path.
"""
from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

# Feature maps with at most this many pixels take the im2col path.
IM2COL_MAX_PIXELS = 16


def _same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
  """XLA's SAME padding: the odd pixel goes at the end."""
  out = -(-size // stride)
  total = max((out - 1) * stride + k - size, 0)
  return total // 2, total - total // 2


def conv_im2col(x: jax.Array, kernel: jax.Array, stride: int = 1) -> jax.Array:
  """SAME convolution as one matrix product over im2col patches.
  x [B, H, W, Cin], kernel [k, k, Cin, Cout] -> [B, ceil(H/s), ceil(W/s), Cout]."""
  k = kernel.shape[0]
  _, h, w, c = x.shape
  ho, wo = -(-h // stride), -(-w // stride)
  xp = jnp.pad(x, ((0, 0), _same_pads(h, k, stride), _same_pads(w, k, stride), (0, 0)))
  # Patches in (dy, dx, channel) order: the order of kernel.reshape(k * k * Cin, Cout).
  views = [xp[:, dy:dy + stride * (ho - 1) + 1:stride, dx:dx + stride * (wo - 1) + 1:stride]
           for dy in range(k) for dx in range(k)]
  return jnp.einsum("bhwk,kd->bhwd", jnp.concatenate(views, -1), kernel.reshape(k * k * c, -1))


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1) -> jax.Array:
  """SAME-padded convolution, NHWC x HWIO, im2col on tiny maps."""
  if x.shape[1] * x.shape[2] <= IM2COL_MAX_PIXELS:
    return conv_im2col(x, kernel, stride)
  return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


class Conv(nn.Module):
  """`nn.Conv(features, (k, k), strides=(s, s))` with the same parameters, SAME padding."""
  features: int
  kernel_size: int = 3
  strides: int = 1
  dtype: Any = jnp.float32
  kernel_init: Callable = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features),
                        jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    return conv2d(x, kernel, self.strides) + bias
