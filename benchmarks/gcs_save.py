"""How long a checkpoint save takes to gs:// (a local GCS emulator) beside local disk.

  python benchmarks/gcs_save.py --config=configs/cifar_tv.py --rounds=3

A spot VM gets about 30 s between SIGTERM and its end: the training loop then saves
once (bluediff.train.StopRequest). This times that save of the config's whole train
state (parameters, EMA, optimizer moments, the data iterator and meta; Orbax's commit
and bluediff's seal included) to a local directory and to gs:// served by the test
emulator (tests/gcs_emulator.py) on 127.0.0.1, and the restore after it. The emulator
serves from memory on this machine, so its figure is a lower bound for real GCS,
whose throughput per object and latency are worse (and whose parallelism is better).
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))


def start_emulator():
  from conftest import gcs_emulator_env   # the variables the suite uses, one source
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "gcs_emulator.py"), str(port),
                           "bench"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  endpoint = f"http://127.0.0.1:{port}"
  for _ in range(300):
    try:
      urllib.request.urlopen(f"{endpoint}/storage/v1/b/bench", timeout=2).read()
      break
    except OSError:
      time.sleep(0.2)
  os.environ.update(gcs_emulator_env(endpoint, tempfile.mkdtemp()))
  os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
  import fsspec
  fsspec.config.conf.setdefault("gcs", {})["token"] = "anon"
  return proc


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--config", default="configs/cifar_tv.py")
  ap.add_argument("--rounds", type=int, default=3)
  args = ap.parse_args()
  proc = start_emulator()
  try:
    import jax
    import numpy as np

    from bluediff import storage
    from bluediff.checkpoint import Checkpointer
    from bluediff.config import load_config_file
    from bluediff.experiment import build_experiment
    config = load_config_file(args.config)
    exp = build_experiment(config)
    state = exp.init_state(0)
    nbytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state))
    rows = []
    for where in ("local disk", "gs:// (emulator)"):
      root = (tempfile.mkdtemp() if where == "local disk" else f"gs://bench/save-{os.getpid()}")
      saves, restores = [], []
      for r in range(args.rounds):
        d = storage.join(root, f"r{r}", "checkpoints")
        with Checkpointer(d) as ckpt:
          t0 = time.perf_counter()
          ckpt.save(1, state, {"it": 1}, exp.signature)
          ckpt.wait()                               # written, committed and sealed
          saves.append(time.perf_counter() - t0)
          abstract, _ = exp.abstract_state()
          t0 = time.perf_counter()
          back, _, _ = ckpt.restore(abstract, 1)
          jax.block_until_ready(back)
          restores.append(time.perf_counter() - t0)
      rows.append((where, min(saves), float(np.median(saves)), min(restores)))
    print(f"train state of {args.config}: {nbytes / 2**20:.1f} MiB, {len(jax.tree.leaves(state))} arrays; "
          f"best and median of {args.rounds} rounds")
    print("| where | save s (best) | save s (median) | restore s (best) | save MiB/s |")
    print("|---|---|---|---|---|")
    for where, best, med, rest in rows:
      print(f"| {where} | {best:.2f} | {med:.2f} | {rest:.2f} | {nbytes / 2**20 / best:.0f} |")
    print(f"gs:// / local save time: {rows[1][1] / rows[0][1]:.2f}x")
  finally:
    proc.kill()


if __name__ == "__main__":
  main()
