"""2-D convolution: Winograd on the CPU, and no XLA:CPU slow path on tiny maps.

`conv2d(..., algorithm="auto")` picks per call, from static shapes:
* stride-1 3x3 convolutions in float32 on the CPU, on maps larger than 4x4 and
  at least `WINOGRAD_MIN_CHANNELS` wide: Winograd F(4x4, 3x3) (F(2x2, 3x3) when
  the map is even but not divisible by 4), `bluediff.models.winograd`. XLA:CPU's
  direct convolution already runs at the machine's matrix-product roofline;
  Winograd does 4x fewer multiply-adds (max relative error ~1e-5, tested).
* maps of at most 16 pixels: im2col (below);
* everything else (and every convolution on GPU/TPU, whose libraries choose
  their own algorithms): XLA's convolution.
`algorithm="direct"` (config `model.conv_algorithm`) keeps XLA's convolution
(and im2col on tiny maps) everywhere.

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

from bluediff.models.winograd import winograd_conv3x3

ALGORITHMS = ("auto", "direct")
# Winograd only where both channel counts are at least this. Its transforms move
# memory in proportion to the channels, its savings grow with their square: at
# 64 channels it lost 14 % on 32 px maps (won 28 % on 16 px ones); from 128 up it
# won everywhere measured (BUILD_NOTES.md). The 3-channel first and last
# convolutions and the narrow digits UNet stay direct.
WINOGRAD_MIN_CHANNELS = 128
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


def winograd_tile(x_shape, kernel_shape, stride: int, dtype, backend: str | None = None
                  ) -> int:
  """The Winograd output tile m (4 or 2) that "auto" uses for this convolution on
  `backend` (default: JAX's default backend), or 0."""
  _, h, w, _ = x_shape
  k, _, ci, co = kernel_shape
  backend = backend or jax.default_backend()
  if (backend != "cpu" or dtype != jnp.float32 or k != 3 or stride != 1
      or h * w <= IM2COL_MAX_PIXELS or min(ci, co) < WINOGRAD_MIN_CHANNELS):
    return 0
  return 4 if h % 4 == 0 and w % 4 == 0 else 2 if h % 2 == 0 and w % 2 == 0 else 0


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1, algorithm: str = "auto"
           ) -> jax.Array:
  """SAME-padded convolution, NHWC x HWIO; the algorithm as the module docstring says."""
  if algorithm not in ALGORITHMS:
    raise ValueError(f"conv algorithm {algorithm!r} is unknown; choose one of {ALGORITHMS}")
  tile = winograd_tile(x.shape, kernel.shape, stride, x.dtype) if algorithm == "auto" else 0
  if tile:
    return winograd_conv3x3(x, kernel, tile)
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
  algorithm: str = "auto"     # "auto" | "direct": see `conv2d`

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features),
                        jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    return conv2d(x, kernel, self.strides, self.algorithm) + bias
