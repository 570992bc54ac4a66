"""A DDPM/ADM-family UNet in Flax linen.

`UNet(x, t)`: x [B, H, W, C_in], t [B] (float; processes choose its scale)
-> [B, H, W, C_out]. Widths, depth, attention resolutions, dropout and the
input/output channel counts all come from the config, so the same module
serves single-head IADB, two-headed blue-noise models and conditional inputs.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from bluediff.models.conv import Conv
from bluediff.models.norm import GroupNorm


def timestep_embedding(t: jax.Array, dim: int, max_period: float = 10_000.0) -> jax.Array:
  """Sinusoidal embedding. t: [B] float -> [B, dim]."""
  half = dim // 2
  freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
  args = t.astype(jnp.float32)[:, None] * freqs[None, :]
  emb = jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)
  if dim % 2:
    emb = jnp.pad(emb, ((0, 0), (0, 1)))
  return emb


def upsample2x(x: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x upsampling [B, H, W, C] -> [B, 2H, 2W, C], as a broadcast
  (its gradient is a sum; `jax.image.resize`'s is a scatter)."""
  b, h, w, c = x.shape
  return jnp.broadcast_to(x[:, :, None, :, None], (b, h, 2, w, 2, c)).reshape(b, 2 * h, 2 * w, c)


def _groups(channels: int, max_groups: int) -> int:
  """Largest group count <= max_groups that divides `channels`."""
  g = min(max_groups, channels)
  while channels % g:
    g -= 1
  return g


class ResBlock(nn.Module):
  out_ch: int
  norm_groups: int
  dropout: float
  dtype: jnp.dtype = jnp.float32
  conv_algorithm: str = "auto"

  @nn.compact
  def __call__(self, x, temb, train: bool):
    conv = functools.partial(Conv, dtype=self.dtype, algorithm=self.conv_algorithm)
    h = GroupNorm(_groups(x.shape[-1], self.norm_groups), dtype=self.dtype)(x)
    h = conv(self.out_ch, 3)(nn.silu(h))
    # Time conditioning as a per-channel bias (DDPM style).
    h = h + nn.Dense(self.out_ch, dtype=self.dtype)(nn.silu(temb))[:, None, None, :]
    h = GroupNorm(_groups(self.out_ch, self.norm_groups), dtype=self.dtype)(h)
    h = nn.Dropout(self.dropout, deterministic=not train)(nn.silu(h))
    # Zero-init the last conv so every block starts as the identity.
    h = conv(self.out_ch, 3, kernel_init=nn.initializers.zeros)(h)
    if x.shape[-1] != self.out_ch:
      x = conv(self.out_ch, 1)(x)
    return x + h


class AttnBlock(nn.Module):
  num_heads: int
  norm_groups: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    b, hh, ww, c = x.shape
    h = GroupNorm(_groups(c, self.norm_groups), dtype=self.dtype)(x)
    h = h.reshape(b, hh * ww, c)
    h = nn.MultiHeadDotProductAttention(
        num_heads=self.num_heads, dtype=self.dtype,
        out_kernel_init=nn.initializers.zeros)(h, h)
    return x + h.reshape(b, hh, ww, c)


def fold_patches(x: jax.Array, p: int) -> jax.Array:
  """[B, H, W, C] -> [B, H/p, W/p, p * p * C]: channel (i p + j) C + c of folded pixel
  (y, x) is pixel (p y + i, p x + j), channel c."""
  if p == 1:
    return x
  b, h, w, c = x.shape
  x = x.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // p, w // p, p * p * c)


def unfold_patches(x: jax.Array, p: int) -> jax.Array:
  """The inverse of `fold_patches`: [B, h, w, p * p * C] -> [B, h p, w p, C]."""
  if p == 1:
    return x
  b, h, w, pc = x.shape
  x = x.reshape(b, h, w, p, p, pc // (p * p)).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h * p, w * p, pc // (p * p))


class UNet(nn.Module):
  """DDPM-style UNet.

  channels: base width; channel_mult: width multiplier per level (one level
  per entry, downsampling by 2 between levels); attn_resolutions: the spatial
  sizes (px) at which self-attention follows each res block. patch_size p > 1: the
  image [B, H, W, C] is folded into [B, H/p, W/p, C p^2] (each p x p patch becomes
  one pixel's channels) before the first convolution and the output unfolded back,
  so every level runs at 1/p of the resolution (attn_resolutions count folded
  pixels): for data with little detail below p pixels (digits: 8x8 resized to 16x16).
  """
  channels: int = 64
  channel_mult: Sequence[int] = (1, 2, 2)
  num_res_blocks: int = 2
  attn_resolutions: Sequence[int] = (8,)
  num_heads: int = 1
  dropout: float = 0.0
  norm_groups: int = 32
  out_channels: int = 1
  dtype: jnp.dtype = jnp.float32
  conv_algorithm: str = "auto"   # "auto" (Winograd on the CPU) | "direct": models/conv.py
  patch_size: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array, train: bool = False) -> jax.Array:
    assert x.ndim == 4 and t.shape == (x.shape[0],), (x.shape, t.shape)
    in_dtype = x.dtype
    x = fold_patches(x.astype(self.dtype), self.patch_size)
    temb_dim = 4 * self.channels
    temb = timestep_embedding(t, self.channels)
    temb = nn.Dense(temb_dim, dtype=self.dtype)(temb)
    temb = nn.Dense(temb_dim, dtype=self.dtype)(nn.silu(temb))

    res = functools.partial(ResBlock, norm_groups=self.norm_groups, dropout=self.dropout,
                            dtype=self.dtype, conv_algorithm=self.conv_algorithm)
    conv = functools.partial(Conv, dtype=self.dtype, algorithm=self.conv_algorithm)
    attn = functools.partial(AttnBlock, num_heads=self.num_heads,
                             norm_groups=self.norm_groups, dtype=self.dtype)

    h = conv(self.channels, 3)(x)
    skips = [h]
    for level, mult in enumerate(self.channel_mult):
      for _ in range(self.num_res_blocks):
        h = res(self.channels * mult)(h, temb, train)
        if h.shape[1] in self.attn_resolutions:
          h = attn()(h)
        skips.append(h)
      if level != len(self.channel_mult) - 1:
        h = conv(h.shape[-1], 3, strides=2)(h)
        skips.append(h)

    h = res(h.shape[-1])(h, temb, train)
    h = attn()(h)
    h = res(h.shape[-1])(h, temb, train)

    for level, mult in reversed(list(enumerate(self.channel_mult))):
      for _ in range(self.num_res_blocks + 1):
        h = jnp.concatenate([h, skips.pop()], axis=-1)
        h = res(self.channels * mult)(h, temb, train)
        if h.shape[1] in self.attn_resolutions:
          h = attn()(h)
      if level != 0:
        h = upsample2x(h)
        h = conv(h.shape[-1], 3)(h)
    assert not skips

    h = nn.silu(GroupNorm(_groups(h.shape[-1], self.norm_groups), dtype=self.dtype)(h))
    h = conv(self.out_channels * self.patch_size ** 2, 3, kernel_init=nn.initializers.zeros)(h)
    return unfold_patches(h, self.patch_size).astype(in_dtype)
