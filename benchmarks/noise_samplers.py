"""Blue-noise fields per second: FFT root vs Cholesky root, and the statistics build time.

    python benchmarks/noise_samplers.py [--batch=64] [--sizes=64,256]

Cholesky at 256x256 uses independent 64x64 tiles (a dense 65536^2 factor
would need 17 GB); the FFT root samples 256x256 directly.
"""
from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from timing import best_seconds   # benchmarks/timing.py

from bluediff.noise import CholeskyNoise, SpectralNoise
from bluediff.noise import statistics as st


def fields_per_second(fn, arg, fields, rounds=5) -> float:
  return fields / best_seconds(jax.jit(fn), arg, rounds=rounds)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--batch", type=int, default=64)
  ap.add_argument("--sizes", default="64,256")
  ap.add_argument("--channels", type=int, default=3, help="channels per image (fields = batch x channels)")
  args = ap.parse_args()
  print(f"device: {jax.devices()[0].device_kind}; one field = one channel of one image; "
        f"{args.batch * 3} fields as [{args.batch * 3 // args.channels}, S, S, {args.channels}]")
  print("| size | statistics build | FFT apply | Cholesky apply | ratio | FFT sample | Cholesky sample"
        " | ratio |")
  print("|---|---|---|---|---|---|---|---|")
  for size in map(int, args.sizes.split(",")):
    t0 = time.perf_counter()
    stats = st.get_stats(st.BlueNoiseSpec(size), progress=False)
    built = time.perf_counter() - t0
    t = min(size, st.MAX_CHOLESKY)
    ops = (SpectralNoise.from_spectrum(stats.spectrum),
           CholeskyNoise(st.get_stats(st.BlueNoiseSpec(t), progress=False).cholesky, t))
    shape = (args.batch * 3 // args.channels, size, size, args.channels)
    n = args.batch * 3
    eps = jax.random.normal(jax.random.key(0), shape)
    apply = [fields_per_second(op.apply, eps, n) for op in ops]       # the operator alone
    sample = [fields_per_second(lambda k, op=op: op(k, shape), jax.random.key(1), n) for op in ops]
    tiles = " (64x64 tiles)" if size > st.MAX_CHOLESKY else ""
    print(f"| {size}x{size} | {built:.1f} s | {apply[0]:.0f}/s | {apply[1]:.0f}/s{tiles} | "
          f"{apply[0] / apply[1]:.1f}x | {sample[0]:.0f}/s | {sample[1]:.0f}/s | "
          f"{sample[0] / sample[1]:.1f}x |")

if __name__ == "__main__":
  np.set_printoptions(precision=3)
  main()
