"""Saves a train-state-sized pytree to a (gs://) checkpoint directory, step after step,
until it is killed (test_gcs's preemption invariant).

argv: directory. Like a resumed run it continues after the newest sealed step (so an
unsealed leftover of the killed run is marked damaged and written anew). Step k holds
arrays filled with k, so a restored step can be checked against its number.
"""
import sys

import jax.numpy as jnp

from bluediff.checkpoint import Checkpointer


def tree(step: int) -> dict:
  return {f"layer{i}": jnp.full((256, 256), float(step), jnp.float32) for i in range(8)}   # 2 MiB


def main():
  directory = sys.argv[1]
  with Checkpointer(directory, max_to_keep=2) as ckpt:
    step = (ckpt.latest_step() or 0) + 1
    while True:
      ckpt.save(step, tree(step), {"step": step}, {"m": 1})
      print(f"saving {step}", flush=True)
      step += 1


if __name__ == "__main__":
  main()
