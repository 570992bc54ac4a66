"""3x3 convolutions by Winograd's minimal filtering: F(2x2, 3x3) and F(4x4, 3x3).

A stride-1 SAME 3x3 convolution, computed tile by tile (Lavin & Gray, "Fast
Algorithms for Convolutional Neural Networks", 2016): each m x m output tile
reads an n x n input tile (n = m + 2), and

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise over the n x n grid)

so the channel contraction becomes n^2 matrix products, one per grid position,
of [tiles, C_in] x [C_in, C_out]: 2.25 (m=4) or 4 (m=2) multiply-adds per output
pixel and channel pair, instead of 9. Here the three transforms are sums with
constant coefficients over strided slices (one XLA loop fusion each), and the
n^2 products are one batched matrix product.

Why: on XLA:CPU a direct 3x3 convolution runs at the matrix-product roofline
of the machine (~200 GFLOP/s on the 2-core dev machine), so only fewer
multiply-adds make it faster. F(4x4, 3x3) took the DDPM CIFAR UNet's training
step from 3.6 to 2.4-2.6 s (BUILD_NOTES.md, "Training speed"). The price is rounding:
the transforms' coefficients (up to 8 for m=4) amplify float32 rounding to a
max relative error of ~1e-5 for m=4 and ~1e-6 for m=2 (tested), still far
below TF32's ~1e-3, which GPUs use for float32 convolutions by default.

The gradient is a custom VJP: the input gradient is the same algorithm on the
flipped kernel (a stride-1 SAME 3x3 convolution is its own transpose up to the
flip), and the kernel gradient is one batched product of the saved transformed
input with the transposed output transform of the cotangent.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class Tile:
  """F(m x m, 3x3): input transform B^T [n, n], kernel transform G [n, 3],
  output transform A^T [m, n], n = m + 2."""
  m: int
  BT: np.ndarray
  G: np.ndarray
  AT: np.ndarray

  @property
  def n(self) -> int:
    return self.m + 2


# Interpolation points 0, 1, -1 (and infinity) for m = 2; 0, +-1, +-2 (and infinity) for m = 4.
TILES = {
    2: Tile(2,
            BT=np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64),
            G=np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float64),
            AT=np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)),
    4: Tile(4,
            BT=np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
                        np.float64),
            G=np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                        [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64),
            AT=np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                         [0, 1, -1, 8, -8, 1]], np.float64)),
}


def _lincomb(terms: list[jax.Array], coeffs: np.ndarray) -> jax.Array:
  """sum_i coeffs[i] * terms[i], skipping zeros and multiplications by +-1."""
  out = None
  for c, t in zip(coeffs, terms):
    if c == 0:
      continue
    term = t if c == 1 else -t if c == -1 else t * float(c)
    out = term if out is None else out + term
  return out


def _transform_axis(x: jax.Array, axis: int, tile: Tile, tiles: int, out_axis: int = 0
                    ) -> jax.Array:
  """B^T over the overlapping n-wide windows (stride m) of one axis.

  x: padded to (tiles + 1) * m along `axis` -> x with that axis `tiles` long and
  a new axis of length n at `out_axis`.
  Window j covers m-blocks j and the first two entries of block j + 1, so every
  window row is a strided slice of x viewed as [..., tiles + 1, m, ...]."""
  m = tile.m
  blocks = x.reshape(x.shape[:axis] + (tiles + 1, m) + x.shape[axis + 1:])

  def row(i):   # entry i of every window: [..., tiles, ...]
    block, phase = divmod(i, m)
    return jax.lax.index_in_dim(jax.lax.slice_in_dim(blocks, block, block + tiles, axis=axis),
                                phase, axis + 1, keepdims=False)

  rows = [row(i) for i in range(tile.n)]
  return jnp.stack([_lincomb(rows, tile.BT[k]) for k in range(tile.n)], axis=out_axis)


def transform_input(x: jax.Array, tile: Tile) -> jax.Array:
  """x [B, H, W, C] (H, W divisible by m) -> V [n*n, B*(H/m)*(W/m), C], grid-major
  (index r * n + c for grid row r, column c)."""
  b, h, w, c = x.shape
  th, tw = h // tile.m, w // tile.m
  xp = jnp.pad(x, ((0, 0), (1, tile.m - 1), (1, tile.m - 1), (0, 0)))  # SAME: 1 before
  v = _transform_axis(xp, 1, tile, th)                 # [n_r, B, th, W + m, C]
  v = _transform_axis(v, 3, tile, tw, out_axis=1)      # [n_r, n_c, B, th, tw, C]
  return v.reshape(tile.n * tile.n, b * th * tw, c)


def transform_kernel(kernel: jax.Array, tile: Tile) -> jax.Array:
  """kernel [3, 3, C_in, C_out] (HWIO) -> U = G g G^T per channel pair: [n*n, C_in, C_out]."""
  _, _, ci, co = kernel.shape
  gg = jnp.asarray(np.kron(tile.G, tile.G), kernel.dtype)       # [(r, c), (kh, kw)]
  return (gg @ kernel.reshape(9, ci * co)).reshape(tile.n * tile.n, ci, co)


def transform_output(prod: jax.Array, tile: Tile, shape: tuple[int, ...]) -> jax.Array:
  """prod [n*n, B*(H/m)*(W/m), C_out] -> Y = A^T prod A: [B, H, W, C_out] (`shape`)."""
  b, h, w, co = shape
  m, n = tile.m, tile.n
  p = prod.reshape(n, n, b, h // m, w // m, co)
  rows = [p[i] for i in range(n)]
  p = jnp.stack([_lincomb(rows, tile.AT[i]) for i in range(m)])          # [m_r, n_c, ...]
  cols = [p[:, j] for j in range(n)]
  p = jnp.stack([_lincomb(cols, tile.AT[j]) for j in range(m)], axis=1)  # [m_r, m_c, ...]
  return jnp.transpose(p, (2, 3, 0, 4, 1, 5)).reshape(shape)


def _forward(x, kernel, m):
  if m not in TILES or x.shape[1] % m or x.shape[2] % m or kernel.shape[:2] != (3, 3):
    raise ValueError(f"winograd_conv3x3 needs a 3x3 kernel, m in {tuple(TILES)} and H, W "
                     f"divisible by m={m}; got x {x.shape}, kernel {kernel.shape}")
  tile = TILES[m]
  v = transform_input(x, tile)
  y = transform_output(jnp.einsum("tnc,tco->tno", v, transform_kernel(kernel, tile)), tile,
                       x.shape[:3] + kernel.shape[-1:])
  return y, v


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def winograd_conv3x3(x: jax.Array, kernel: jax.Array, m: int = 4) -> jax.Array:
  """Stride-1 SAME 3x3 convolution by F(m x m, 3x3), m in (2, 4).

  x [B, H, W, C_in] with H and W divisible by m; kernel [3, 3, C_in, C_out]
  (HWIO) -> [B, H, W, C_out]. Equal to `lax.conv_general_dilated(x, kernel,
  (1, 1), "SAME")` up to float rounding."""
  return _forward(x, kernel, m)[0]


def _vjp_forward(x, kernel, m):
  y, v = _forward(x, kernel, m)
  return y, (v, kernel)


def _vjp_backward(m, residuals, dy):
  v, kernel = residuals
  tile = TILES[m]
  # Input gradient: the correlation with the kernel flipped in space, in and out swapped.
  dx = winograd_conv3x3(dy, jnp.transpose(kernel[::-1, ::-1], (0, 1, 3, 2)), m)
  prod = jax.ShapeDtypeStruct(v.shape[:2] + kernel.shape[-1:], dy.dtype)
  d_prod, = jax.linear_transpose(lambda p: transform_output(p, tile, dy.shape), prod)(dy)
  d_u = jnp.einsum("tnc,tno->tco", v, d_prod)
  d_kernel, = jax.linear_transpose(lambda k: transform_kernel(k, tile),
                                   jax.ShapeDtypeStruct(kernel.shape, kernel.dtype))(d_u)
  return dx, d_kernel


winograd_conv3x3.defvjp(_vjp_forward, _vjp_backward)
