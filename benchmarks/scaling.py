"""Scale-out on one machine: train-step images/s over 1, 2, 4 (fake) devices and
1 vs 2 processes (gloo on 127.0.0.1), the per-step gradient all-reduce, and the
checkpoint save / restore time of a config's train state.

  python benchmarks/scaling.py --config=configs/digits.py --ckpt_config=configs/cifar_tv.py

Each layout runs in its own process (XLA reads the device count once). Fake
CPU devices share the same cores, so images/s cannot grow here; what the table
shows is what the data-parallel machinery costs: the all-reduce of a gradient
the size of the parameters over the mesh (timed alone, "all-reduce ms"), and
the step's slow-down against one device. The same global batch everywhere.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def child(args) -> None:
  """One process of one layout: time the full train step and a gradient all-reduce."""
  import jax
  if args.num_processes > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{args.port}", num_processes=args.num_processes,
                               process_id=args.process_id)
  import jax.numpy as jnp
  import numpy as np
  from jax.sharding import NamedSharding, PartitionSpec as P
  from bluediff import sharding
  from bluediff.config import load_config_file
  from bluediff.experiment import build_experiment

  config = load_config_file(args.config)
  config.training.batch_size = args.batch or config.training.batch_size
  exp = build_experiment(config)
  b = config.training.batch_size
  local = b // jax.process_count()
  rng = np.random.default_rng(jax.process_index())
  images = jax.make_array_from_process_local_data(
      sharding.batch_sharding(exp.mesh),
      rng.standard_normal((local, *exp.image_shape)).astype(np.float32))
  step = exp.train_step()
  key = sharding.replicate(jax.random.key(0), exp.mesh)
  state = exp.init_state(0)
  for _ in range(2):
    state, m = step(state, images, key)
  jax.block_until_ready(m)
  best = float("inf")
  for _ in range(args.rounds):
    t0 = time.perf_counter()
    for _ in range(args.iters):
      state, m = step(state, images, key)
    jax.block_until_ready(m)
    best = min(best, (time.perf_counter() - t0) / args.iters)

  # The data-parallel step's communication: a sum over 'data' of one gradient-sized
  # array per device (what the step's grad all-reduce moves), timed alone.
  n_params = sum(x.size for x in jax.tree.leaves(state.params))
  per_device = jax.make_array_from_callback(
      (jax.device_count(), n_params), NamedSharding(exp.mesh, P("data")),
      lambda idx: np.ones((1, n_params), np.float32))
  allreduce = jax.jit(lambda g: jnp.sum(g, axis=0), out_shardings=sharding.replicated(exp.mesh))
  jax.block_until_ready(allreduce(per_device))
  t_ar = float("inf")
  for _ in range(args.rounds):
    t0 = time.perf_counter()
    for _ in range(args.iters):
      out = allreduce(per_device)
    jax.block_until_ready(out)
    t_ar = min(t_ar, (time.perf_counter() - t0) / args.iters)
  if jax.process_index() == 0:
    print(json.dumps({"step_s": best, "allreduce_s": t_ar, "batch": b, "params": n_params,
                      "devices": jax.device_count(), "processes": jax.process_count()}))


def run_layout(args, devices_per_process: int, processes: int) -> dict:
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT,
         "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices_per_process}"}
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  cmd = [sys.executable, __file__, "--child", f"--config={args.config}",
         f"--batch={args.batch}", f"--iters={args.iters}", f"--rounds={args.rounds}",
         f"--num_processes={processes}", f"--port={port}"]
  procs = [subprocess.Popen(cmd + [f"--process_id={i}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for i in range(processes)]
  outs = [p.communicate() for p in procs]
  for p, (_, err) in zip(procs, outs):
    if p.returncode:
      raise RuntimeError(err[-2000:])
  return json.loads(outs[0][0].strip().splitlines()[-1])


def checkpoint_times(config_path: str) -> dict:
  """Seconds to save (until sealed) and restore the config's initial train state."""
  import jax
  from bluediff.checkpoint import Checkpointer
  from bluediff.config import load_config_file
  from bluediff.experiment import build_experiment

  config = load_config_file(config_path)
  exp = build_experiment(config)
  state = jax.block_until_ready(exp.init_state(0))
  nbytes = sum(x.nbytes for x in jax.tree.leaves(state))
  with tempfile.TemporaryDirectory() as d:
    with Checkpointer(d) as ckpt:
      t0 = time.perf_counter()
      ckpt.save(1, state, {"step": 1}, exp.signature)
      ckpt.wait()                                  # written, hashed, manifest sealed
      t_save = time.perf_counter() - t0
    abstract, _ = exp.abstract_state()
    with Checkpointer(d, read_only=True) as ckpt:
      t0 = time.perf_counter()
      restored, _, _ = ckpt.restore(abstract, expected_meta=exp.signature)
      jax.block_until_ready(restored)
      t_restore = time.perf_counter() - t0
  return {"bytes": nbytes, "save_s": t_save, "restore_s": t_restore}


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--config", default="configs/digits.py")
  ap.add_argument("--ckpt_config", default="configs/cifar_tv.py")
  ap.add_argument("--batch", type=int, default=0, help="global batch (0: the config's)")
  ap.add_argument("--iters", type=int, default=10)
  ap.add_argument("--rounds", type=int, default=3)
  ap.add_argument("--child", action="store_true")
  ap.add_argument("--num_processes", type=int, default=1)
  ap.add_argument("--process_id", type=int, default=0)
  ap.add_argument("--port", type=int, default=0)
  args = ap.parse_args()
  if args.child:
    return child(args)

  layouts = [(1, 1), (2, 1), (4, 1), (1, 2), (2, 2)]
  print(f"config {args.config}: the same global batch on every layout, "
        f"{os.cpu_count()} CPU cores\n")
  print("| processes x devices | images/s | ms/step | vs 1 device | all-reduce ms "
        "(gradient-sized) | all-reduce share of step |\n|---|---|---|---|---|---|")
  base = None
  for per, procs in layouts:
    r = run_layout(args, per, procs)
    base = base or r["step_s"]
    print(f"| {procs} x {per} | {r['batch'] / r['step_s']:.1f} | {1e3 * r['step_s']:.1f} | "
          f"{base / r['step_s']:.2f}x | {1e3 * r['allreduce_s']:.2f} | "
          f"{100 * r['allreduce_s'] / r['step_s']:.1f} % |", flush=True)
  if args.ckpt_config:
    c = checkpoint_times(args.ckpt_config)
    print(f"\ncheckpoint of {args.ckpt_config}'s train state ({c['bytes'] / 2**20:.0f} MiB: "
          f"params, EMA, AdamW moments): save {c['save_s']:.2f} s (until sealed with its "
          f"manifest), restore {c['restore_s']:.2f} s")


if __name__ == "__main__":
  main()
