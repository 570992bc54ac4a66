"""Building a blurred training batch: the O(1) transfer-function form vs the recursive one.

    python benchmarks/cold_blur.py [--batch=64]

For the paper's CIFAR-10 (32 px, T = 50, 11x11, std 0.35 + i/100) and CelebA-HQ
(128 px, T = 200, 15x15, std exp(0.01 i)) settings: ms per batch at t = 1 and
t = T for both forms (reflect padding, as the reference), and the speed-up at T.
"""
from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from timing import best_seconds   # benchmarks/timing.py

from bluediff.degradations import Blur

SETTINGS = {
    "CIFAR-10 32px T=50": (32, [0.35 + i / 100 for i in range(50)], 11),
    "CelebA-HQ 128px T=200": (128, [float(np.exp(0.01 * i)) for i in range(200)], 15),
}


def best_ms(fn, x, rounds=5) -> float:
  return best_seconds(fn, x, rounds=rounds) * 1e3


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--batch", type=int, default=64)
  args = ap.parse_args()
  print(f"device: {jax.devices()[0].device_kind}, batch {args.batch} x 3 channels, reflect padding")
  print("| setting | O(1) t=1 | O(1) t=T | T/1 | recursive t=1 | recursive t=T | T/1 | speed-up at T |")
  print("|---|---|---|---|---|---|---|---|")
  for name, (size, stds, k) in SETTINGS.items():
    blur = Blur.build(stds, k, size)
    x = jax.random.uniform(jax.random.key(0), (args.batch, size, size, 3), minval=-1, maxval=1)
    T = len(stds)
    fast = {t: best_ms(jax.jit(lambda x, t=t: blur(x, jnp.full((args.batch,), t))), x) for t in (1, T)}
    slow = {t: best_ms(jax.jit(lambda x, t=t: blur.recursive(x, t)), x, rounds=2) for t in (1, T)}
    print(f"| {name} | {fast[1]:.2f} ms | {fast[T]:.2f} ms | {fast[T] / fast[1]:.2f}x | "
          f"{slow[1]:.2f} ms | {slow[T]:.1f} ms | {slow[T] / slow[1]:.0f}x | {slow[T] / fast[T]:.0f}x |")


if __name__ == "__main__":
  main()
