"""Blur diffusion's basis change: the separable DCT vs a dense (H W) x (H W) matrix.

    python benchmarks/blur_basis.py [--batch=16] [--sizes=32,64,256]

Times one forward + inverse rotation (what every step of the process and of
the samplers does twice) for batch x 3 channels. The dense matrix is built
only where it fits (64x64: a 4096^2 float32 matrix, 67 MB; 256x256 would be
17 GB, so only the DCT runs there).
"""
from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from timing import best_seconds   # benchmarks/timing.py

from bluediff.bases import dct_basis, dct_matrix


def best_ms(fn, x, rounds=5) -> float:
  return best_seconds(fn, x, rounds=rounds) * 1e3


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--batch", type=int, default=16)
  ap.add_argument("--sizes", default="32,64,256")
  args = ap.parse_args()
  print(f"device: {jax.devices()[0].device_kind}; batch {args.batch} x 3 channels; forward + inverse")
  print("| size | fast DCT | dense matrix | speed-up | max difference |")
  print("|---|---|---|---|---|")
  for size in map(int, args.sizes.split(",")):
    basis = dct_basis(size, size)
    x = jax.random.normal(jax.random.key(0), (args.batch, size, size, 3))
    fast = jax.jit(lambda x, basis=basis: basis.inverse(basis.forward(x) * 0.5))
    t_fast = best_ms(fast, x)
    if size > 64:
      print(f"| {size}x{size} | {t_fast:.2f} ms | (17 GB: not built) | | |")
      continue
    c = dct_matrix(size)
    m = jnp.asarray(np.kron(c, c), jnp.float32)                    # [(H W), (H W)]

    def dense(x):
      flat = x.transpose(0, 3, 1, 2).reshape(-1, size * size)
      y = (flat @ m.T * 0.5) @ m
      return y.reshape(x.shape[0], 3, size, size).transpose(0, 2, 3, 1)
    dense_j = jax.jit(dense)
    t_dense = best_ms(dense_j, x)
    diff = float(jnp.abs(fast(x) - dense_j(x)).max())
    print(f"| {size}x{size} | {t_fast:.2f} ms | {t_dense:.2f} ms | {t_dense / t_fast:.1f}x | {diff:.1e} |")


if __name__ == "__main__":
  main()
