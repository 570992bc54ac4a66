"""Orthonormal 2-D bases for diffusion in a rotated basis (blur diffusion, methods.md §4).

A basis maps images [B, H, W, C] to coefficients of the same shape and back
(`forward` = U^T x, `inverse` = U x_bar), per channel, without dense
(H W) x (H W) matrices; `eigenvalues(kernel)` gives the per-component damping
d_k of a symmetric blur kernel in that basis.

  dct_basis  the orthonormal DCT-II (Neumann boundary): a symmetric kernel
             applied with half-sample symmetric padding is diagonal in it.
  svd_basis  the reference's separable SVD of a 1-D zero-boundary blur matrix
             (U_1 (x) U_1, without the reference's channel-ordering bug).
Both are `SeparableBasis` (two small matrix products per image).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


def dct_frequencies(h: int, w: int) -> np.ndarray:
  """lambda_k = (pi i / H)^2 + (pi j / W)^2 for DCT-II component (i, j), [H, W]."""
  i, j = np.arange(h)[:, None], np.arange(w)[None, :]
  return (np.pi * i / h) ** 2 + (np.pi * j / w) ** 2


def dct_transfer_1d(kernel: np.ndarray, n: int) -> np.ndarray:
  """Eigenvalues [n] of a symmetric 1-D kernel (taps -r..r) under half-sample symmetric
  (Neumann) boundaries in the DCT-II basis: K_0 + 2 sum_m K_m cos(pi k m / n)."""
  r = len(kernel) // 2
  k = np.arange(n)[:, None]
  m = np.arange(1, r + 1)[None, :]
  return kernel[r] + 2 * (kernel[r + 1:][None, :] * np.cos(np.pi * k * m / n)).sum(1)


def dct_matrix(n: int) -> np.ndarray:
  """The orthonormal DCT-II matrix C [n, n] (rows = frequencies): X = C x."""
  k, m = np.arange(n)[:, None], np.arange(n)[None, :]
  c = np.sqrt(2 / n) * np.cos(np.pi * (2 * m + 1) * k / (2 * n))
  c[0] /= np.sqrt(2)
  return c


@struct.dataclass
class SeparableBasis:
  """U = U_h (x) U_w (columns = basis vectors): forward x_bar = U_h^T x U_w, per channel.

  Two small matrix products per image: O(H W (H + W)) work and no (H W)^2
  matrix; on CPU this beats jax.scipy.fft.dctn by 2-4x at 32-256 px
  (benchmarks/blur_basis.py) and on accelerators it is matrix-unit work.
  """
  u_h: jax.Array        # [H, H]
  u_w: jax.Array        # [W, W]
  kind: str = struct.field(pytree_node=False, default="dct")

  def forward(self, x):
    return jnp.einsum("hk,wl,bhwc->bklc", self.u_h, self.u_w, x, precision=jax.lax.Precision.HIGHEST)

  def inverse(self, x_bar):
    return jnp.einsum("hk,wl,bklc->bhwc", self.u_h, self.u_w, x_bar, precision=jax.lax.Precision.HIGHEST)


def dct_basis(h: int, w: int) -> SeparableBasis:
  """The orthonormal 2-D DCT-II (Neumann boundary)."""
  return SeparableBasis(jnp.asarray(dct_matrix(h).T, jnp.float32),
                        jnp.asarray(dct_matrix(w).T, jnp.float32), "dct")


def dct_eigenvalues(kernel_1d: np.ndarray, h: int, w: int) -> np.ndarray:
  """d_k [H, W] of the separable kernel k (x) k in the DCT-II basis (Neumann boundary)."""
  return np.outer(dct_transfer_1d(kernel_1d, h), dct_transfer_1d(kernel_1d, w))


def zero_boundary_blur_matrix(kernel_1d: np.ndarray, n: int) -> np.ndarray:
  """[n, n] Toeplitz matrix of the kernel with zero padding."""
  r = len(kernel_1d) // 2
  m = np.zeros((n, n))
  for i in range(n):
    for o in range(-r, r + 1):
      if 0 <= i + o < n:
        m[i, i + o] = kernel_1d[r + o]
  return m


def svd_basis(kernel_1d: np.ndarray, h: int, w: int) -> tuple[SeparableBasis, np.ndarray]:
  """(basis, d [H, W]) from the SVDs of 1-D zero-boundary blur matrices; d_k = s_i s_j.

  The blur matrix is symmetric, so its SVD is an eigendecomposition; vectors
  are sorted by decreasing singular value (coarse first).
  """
  us, ss = [], []
  for n in (h, w):
    evals, evecs = np.linalg.eigh(zero_boundary_blur_matrix(kernel_1d, n))
    order = np.argsort(-np.abs(evals))
    us.append(evecs[:, order])
    ss.append(np.abs(evals[order]))      # singular values
  basis = SeparableBasis(jnp.asarray(us[0], jnp.float32), jnp.asarray(us[1], jnp.float32), "svd")
  return basis, np.outer(ss[0], ss[1])


@struct.dataclass
class IdentityBasis:
  """U = I: with no blur, the process is exactly DDPM (tested)."""
  kind: str = struct.field(pytree_node=False, default="identity")

  def forward(self, x):
    return x

  def inverse(self, x_bar):
    return x_bar
