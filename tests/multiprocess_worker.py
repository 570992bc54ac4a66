"""One of two real processes (gloo CPU collectives on 127.0.0.1) for test_multiprocess.py.

argv: process_id port workdir [restore]. Each process has 2 CPU devices (4 in all).
It checks the process count and a cross-process reduction, saves its first data
slice, then runs the ordinary training loop on the tiny config. The workdir may be
gs:// (test_gcs). With `restore`, both processes then restore the latest checkpoint
together and print the step and a checksum of its parameters.
"""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np


def main():
  pid, port, workdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=pid)
  assert jax.process_count() == 2 and jax.device_count() == 4 and jax.local_device_count() == 2
  from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
  mesh = Mesh(np.asarray(jax.devices()), ("data",))
  local = np.full((2,), pid + 1.0, np.float32)               # process 0: 1s, process 1: 2s
  x = jax.make_array_from_process_local_data(NamedSharding(mesh, P("data")), local)
  total = jax.jit(jnp.sum, out_shardings=NamedSharding(mesh, P()))(x)
  assert float(total) == 6.0, float(total)                    # needs both processes' data

  sys.path.insert(0, os.getcwd())
  from bluediff.data import pipeline
  from bluediff.train import train
  from tests.tiny_config import get_config
  from bluediff import storage
  c = get_config()
  it = pipeline.train_iterator(c.data, c.training.batch_size, c.seed, pid, 2)
  storage.save_npz(storage.join(workdir, f"batch{pid}.npz"), image=next(it)["image"])
  train(c, workdir)
  if sys.argv[4:] == ["restore"]:
    from bluediff.checkpoint import Checkpointer
    from bluediff.experiment import build_experiment, restore_or_init
    exp = build_experiment(c)
    with Checkpointer(storage.join(workdir, "checkpoints"), read_only=True) as ckpt:
      state, _, step = restore_or_init(exp, ckpt)
    total = sum(float(jnp.sum(jnp.abs(x))) for x in jax.tree.leaves(state.params))
    print(f"restored step {step} checksum {total:.6f}")
  print(f"process {pid}: done")


if __name__ == "__main__":
  main()
