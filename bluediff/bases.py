"""Orthonormal 2-D bases for diffusion in a rotated basis (blur diffusion, methods.md §4).

A basis maps images [B, H, W, C] to coefficients of the same shape and back
(`forward` = U^T x, `inverse` = U x_bar), per channel, without dense
(H W) x (H W) matrices; `eigenvalues(kernel)` gives the per-component damping
d_k of a symmetric blur kernel in that basis.

  DCTBasis  the orthonormal DCT-II (Neumann boundary): a symmetric kernel
            applied with half-sample symmetric padding is diagonal in it.
  SVDBasis  the reference's separable SVD of a 1-D zero-boundary blur matrix
            (U_1 (x) U_1, without the reference's channel-ordering bug).
"""
from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import jax.scipy.fft as jfft
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


@struct.dataclass
class DCTBasis:
  kind: ClassVar[str] = "dct"

  def forward(self, x):
    return jfft.dctn(x, type=2, axes=(1, 2), norm="ortho")

  def inverse(self, x_bar):
    return jfft.idctn(x_bar, type=2, axes=(1, 2), norm="ortho")

  @staticmethod
  def eigenvalues(kernel_1d: np.ndarray, h: int, w: int) -> np.ndarray:
    """d_k [H, W] of the separable kernel k (x) k."""
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


@struct.dataclass
class SVDBasis:
  """U = U_h (x) U_w from the SVDs of 1-D zero-boundary blur matrices; d_k = s_i s_j."""
  u_h: jax.Array        # [H, H], columns = basis vectors
  u_w: jax.Array        # [W, W]
  kind: ClassVar[str] = "svd"

  @classmethod
  def build(cls, kernel_1d: np.ndarray, h: int, w: int) -> tuple["SVDBasis", np.ndarray]:
    """(basis, d [H, W]). The blur matrix is symmetric, so its SVD is an eigendecomposition;
    singular vectors are sorted by decreasing singular value (coarse first)."""
    us, ss = [], []
    for n in (h, w):
      evals, evecs = np.linalg.eigh(zero_boundary_blur_matrix(kernel_1d, n))
      order = np.argsort(-np.abs(evals))
      us.append(evecs[:, order])
      ss.append(np.abs(evals[order]))      # singular values
    basis = cls(jnp.asarray(us[0], jnp.float32), jnp.asarray(us[1], jnp.float32))
    return basis, np.outer(ss[0], ss[1])

  def forward(self, x):
    return jnp.einsum("hk,wl,bhwc->bklc", self.u_h, self.u_w, x, precision=jax.lax.Precision.HIGHEST)

  def inverse(self, x_bar):
    return jnp.einsum("hk,wl,bklc->bhwc", self.u_h, self.u_w, x_bar, precision=jax.lax.Precision.HIGHEST)


@struct.dataclass
class IdentityBasis:
  """U = I: with no blur, the process is exactly DDPM (tested)."""
  kind: ClassVar[str] = "identity"

  def forward(self, x):
    return x

  def inverse(self, x_bar):
    return x_bar
