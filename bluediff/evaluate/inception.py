"""The FID Inception-v3 in Flax: the 2015 TF graph as ported for pytorch-fid.

What makes FID numbers comparable with published ones is this exact network,
not "an Inception-v3":
  * bilinear resize to 299x299 with half-pixel centres (PyTorch's
    align_corners=False) and no antialiasing, then inputs scaled to [-1, 1];
  * BasicConv = conv (no bias) + BatchNorm (eps 1e-3) + ReLU;
  * the 3x3 average pools of the A, C and E blocks exclude the padding from
    the count (TF semantics); the last E block max-pools instead;
  * 2048-d pool features (the FID/KID/precision-recall space) and a
    1008-class head (logits for the Inception score).

Parameter names follow the PyTorch module names so that the one-time
conversion (`python -m bluediff.evaluate.convert_inception`) is a renaming
plus a kernel transpose; the runtime reads only the converted safetensors file.
"""
from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

RESOLUTION = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008
BN_EPS = 1e-3


def resize_bilinear(x: jax.Array, size: int = RESOLUTION) -> jax.Array:
  """[B, H, W, C] -> [B, size, size, C]; PyTorch's bilinear, align_corners=False, no antialias."""
  b, _, _, c = x.shape
  return jax.image.resize(x, (b, size, size, c), "bilinear", antialias=False)


def avg_pool_exclude_pad(x: jax.Array) -> jax.Array:
  """3x3 stride-1 average pool, padding 1, dividing by the number of real pixels."""
  window, strides, pad = (1, 3, 3, 1), (1, 1, 1, 1), ((0, 0), (1, 1), (1, 1), (0, 0))
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, pad)
  ones = jnp.ones((1,) + x.shape[1:3] + (1,), x.dtype)
  count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, window, strides, pad)
  return total / count


def max_pool(x: jax.Array, stride: int, pad: int = 0) -> jax.Array:
  """3x3 max pool (padding counts as -inf, as in PyTorch)."""
  return nn.max_pool(x, (3, 3), strides=(stride, stride), padding=((pad, pad), (pad, pad)))


class BasicConv(nn.Module):
  """conv (no bias) -> inference BatchNorm -> ReLU."""
  features: int
  kernel: Sequence[int]
  stride: int = 1
  padding: Sequence[int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    ph, pw = self.padding
    x = nn.Conv(self.features, tuple(self.kernel), strides=(self.stride, self.stride),
                padding=((ph, ph), (pw, pw)), use_bias=False, name="conv")(x)
    bn = {k: self.param(f"bn_{k}", nn.initializers.zeros, (self.features,))
          for k in ("scale", "bias", "mean")}
    var = self.param("bn_var", nn.initializers.ones, (self.features,))
    scale = bn["scale"] * jax.lax.rsqrt(var + BN_EPS)
    return nn.relu(x * scale + (bn["bias"] - bn["mean"] * scale))


def _conv(name, features, kernel, stride=1, padding=(0, 0)):
  if isinstance(kernel, int):
    kernel = (kernel, kernel)
  return BasicConv(features, kernel, stride, padding, name=name)


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = _conv("branch1x1", 64, 1)(x)
    b5 = _conv("branch5x5_2", 64, 5, padding=(2, 2))(_conv("branch5x5_1", 48, 1)(x))
    b3 = _conv("branch3x3dbl_1", 64, 1)(x)
    b3 = _conv("branch3x3dbl_2", 96, 3, padding=(1, 1))(b3)
    b3 = _conv("branch3x3dbl_3", 96, 3, padding=(1, 1))(b3)
    bp = _conv("branch_pool", self.pool_features, 1)(avg_pool_exclude_pad(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """Grid reduction 35 -> 17."""

  @nn.compact
  def __call__(self, x):
    b3 = _conv("branch3x3", 384, 3, stride=2)(x)
    bd = _conv("branch3x3dbl_1", 64, 1)(x)
    bd = _conv("branch3x3dbl_2", 96, 3, padding=(1, 1))(bd)
    bd = _conv("branch3x3dbl_3", 96, 3, stride=2)(bd)
    return jnp.concatenate([b3, bd, max_pool(x, 2)], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = _conv("branch1x1", 192, 1)(x)
    b7 = _conv("branch7x7_1", c7, 1)(x)
    b7 = _conv("branch7x7_2", c7, (1, 7), padding=(0, 3))(b7)
    b7 = _conv("branch7x7_3", 192, (7, 1), padding=(3, 0))(b7)
    bd = _conv("branch7x7dbl_1", c7, 1)(x)
    bd = _conv("branch7x7dbl_2", c7, (7, 1), padding=(3, 0))(bd)
    bd = _conv("branch7x7dbl_3", c7, (1, 7), padding=(0, 3))(bd)
    bd = _conv("branch7x7dbl_4", c7, (7, 1), padding=(3, 0))(bd)
    bd = _conv("branch7x7dbl_5", 192, (1, 7), padding=(0, 3))(bd)
    bp = _conv("branch_pool", 192, 1)(avg_pool_exclude_pad(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """Grid reduction 17 -> 8."""

  @nn.compact
  def __call__(self, x):
    b3 = _conv("branch3x3_2", 320, 3, stride=2)(_conv("branch3x3_1", 192, 1)(x))
    b7 = _conv("branch7x7x3_1", 192, 1)(x)
    b7 = _conv("branch7x7x3_2", 192, (1, 7), padding=(0, 3))(b7)
    b7 = _conv("branch7x7x3_3", 192, (7, 1), padding=(3, 0))(b7)
    b7 = _conv("branch7x7x3_4", 192, 3, stride=2)(b7)
    return jnp.concatenate([b3, b7, max_pool(x, 2)], axis=-1)


class InceptionE(nn.Module):
  """The 8x8 blocks; the FID graph's last one max-pools its pool branch."""
  pool: str = "avg"

  @nn.compact
  def __call__(self, x):
    b1 = _conv("branch1x1", 320, 1)(x)
    b3 = _conv("branch3x3_1", 384, 1)(x)
    b3 = jnp.concatenate([_conv("branch3x3_2a", 384, (1, 3), padding=(0, 1))(b3),
                          _conv("branch3x3_2b", 384, (3, 1), padding=(1, 0))(b3)], axis=-1)
    bd = _conv("branch3x3dbl_1", 448, 1)(x)
    bd = _conv("branch3x3dbl_2", 384, 3, padding=(1, 1))(bd)
    bd = jnp.concatenate([_conv("branch3x3dbl_3a", 384, (1, 3), padding=(0, 1))(bd),
                          _conv("branch3x3dbl_3b", 384, (3, 1), padding=(1, 0))(bd)], axis=-1)
    pooled = avg_pool_exclude_pad(x) if self.pool == "avg" else max_pool(x, 1, pad=1)
    bp = _conv("branch_pool", 192, 1)(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
  """x [B, 299, 299, 3] in [-1, 1] -> (pool features [B, 2048], logits [B, 1008])."""

  @nn.compact
  def __call__(self, x):
    x = _conv("Conv2d_1a_3x3", 32, 3, stride=2)(x)
    x = _conv("Conv2d_2a_3x3", 32, 3)(x)
    x = _conv("Conv2d_2b_3x3", 64, 3, padding=(1, 1))(x)
    x = max_pool(x, 2)
    x = _conv("Conv2d_3b_1x1", 80, 1)(x)
    x = _conv("Conv2d_4a_3x3", 192, 3)(x)
    x = max_pool(x, 2)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
      x = InceptionC(c7, name=name)(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE("avg", name="Mixed_7b")(x)
    x = InceptionE("max", name="Mixed_7c")(x)
    features = x.mean(axis=(1, 2))
    return features, nn.Dense(NUM_CLASSES, name="fc")(features)


def preprocess(images: jax.Array) -> jax.Array:
  """uint8 [B, H, W, C] (C = 1 or 3) -> float32 [B, 299, 299, 3] in [-1, 1].

  Resizing in [0, 1] and then scaling commutes with pytorch-fid's order
  (both steps are affine per pixel).
  """
  x = images.astype(jnp.float32) / 255.0
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  return 2.0 * resize_bilinear(x) - 1.0


@functools.partial(jax.jit, static_argnums=())
def inception_outputs(params, images: jax.Array) -> tuple[jax.Array, jax.Array]:
  """uint8 images [B, H, W, C] -> (features [B, 2048], logits [B, 1008])."""
  return FIDInceptionV3().apply({"params": params}, preprocess(images))
