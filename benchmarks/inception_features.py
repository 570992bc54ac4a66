"""FID Inception feature extraction speed, and the time for reference statistics.

    python benchmarks/inception_features.py [--sizes=32,64] [--batch=50] [--reference=10000]

Prints images/s per input size (every input is resized to 299x299, so the
network cost is the same; the resize is not) and, with --reference=N, the
wall time of extracting N images' features plus their mean and covariance.
Uses the converted weights when present, else random weights of the same
shapes (speed does not depend on the values).
"""
from __future__ import annotations

import argparse
import time

import jax
import numpy as np


def _params():
  from bluediff.evaluate import inception_weights as iw
  try:
    params, digest = iw.load_params()
    return params, digest, "converted"
  except iw.InceptionWeightsError:
    from bluediff.evaluate.inception import RESOLUTION, FIDInceptionV3
    x = np.zeros((1, RESOLUTION, RESOLUTION, 3), np.float32)
    params = jax.jit(FIDInceptionV3().init)(jax.random.key(0), x)["params"]
    return params, "0" * 64, "random"


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--sizes", default="32,64")
  ap.add_argument("--batch", type=int, default=50)
  ap.add_argument("--rounds", type=int, default=3)
  ap.add_argument("--reference", type=int, default=0, help="also time N-image statistics")
  args = ap.parse_args()
  from bluediff.evaluate.features import InceptionFeatures
  from bluediff.evaluate.frechet import feature_stats
  from bluediff.sharding import make_mesh
  import ml_collections
  mesh = make_mesh(ml_collections.ConfigDict({"data": -1}))
  params, digest, kind = _params()
  extract = InceptionFeatures(params, digest, mesh, args.batch)
  print(f"device: {jax.devices()[0].device_kind} x{mesh.devices.size}, weights: {kind}, "
        f"batch {extract.batch_size}")
  print("| input | images/s | ms/image |")
  print("|---|---|---|")
  rng = np.random.default_rng(0)
  for size in map(int, args.sizes.split(",")):
    images = rng.integers(0, 256, (extract.batch_size * 2, size, size, 3), dtype=np.uint8)
    extract(images[:extract.batch_size])          # compile
    best = float("inf")
    for _ in range(args.rounds):
      t0 = time.perf_counter()
      extract(images)
      best = min(best, time.perf_counter() - t0)
    ips = len(images) / best
    print(f"| {size}x{size} | {ips:.1f} | {1000 / ips:.1f} |")
  if args.reference:
    images = rng.integers(0, 256, (args.reference, 32, 32, 3), dtype=np.uint8)
    t0 = time.perf_counter()
    feats, _ = extract(images, desc="reference")
    feature_stats(feats)
    print(f"reference statistics of {args.reference} 32x32 images: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
  main()
