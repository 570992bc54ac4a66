"""Shared timing for the benchmark scripts: best of several rounds, after a warm-up."""
from __future__ import annotations

import time

import jax


def best_seconds(fn, *args, rounds: int = 5, iters: int = 1) -> float:
  """Best wall time of `iters` calls of fn(*args) over `rounds` (compiled by a first call)."""
  jax.block_until_ready(fn(*args))
  best = float("inf")
  for _ in range(rounds):
    t0 = time.perf_counter()
    for _ in range(iters):
      out = fn(*args)
    jax.block_until_ready(out)
    best = min(best, (time.perf_counter() - t0) / iters)
  return best
