"""Two real processes (gloo on 127.0.0.1) train like one process with the same global batch."""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from bluediff.checkpoint import Checkpointer
from bluediff.data import pipeline
from bluediff.experiment import build_experiment, restore_or_init
from bluediff.train import train


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _losses(wd):
  return {r["step"]: r["loss"] for r in map(json.loads, open(os.path.join(wd, "metrics.jsonl")))}


@pytest.mark.slow   # two real processes (~1-2 min): CI runs it in its slow step
def test_two_processes_equal_one(tiny_config, subprocess_env, tmp_path):
  multi, single = tmp_path / "multi", tmp_path / "single"
  multi.mkdir()
  env = dict(subprocess_env, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
  port = str(_free_port())
  procs = [subprocess.Popen([sys.executable, "tests/multiprocess_worker.py", str(i), port, str(multi)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  # disjoint data slices whose union is the one-process global batch
  c = tiny_config()
  full = next(pipeline.train_iterator(c.data, c.training.batch_size, c.seed, 0, 1))["image"]
  b0, b1 = np.load(multi / "batch0.npz")["image"], np.load(multi / "batch1.npz")["image"]
  np.testing.assert_array_equal(np.concatenate([b0, b1]), full)
  assert not any(np.array_equal(a, b) for a in b0 for b in b1)
  # the same losses and parameters as one process with 4 devices
  train(c, str(single))
  l_multi, l_single = _losses(multi), _losses(single)
  assert sorted(l_multi) == sorted(l_single)
  np.testing.assert_allclose([l_multi[s] for s in sorted(l_multi)],
                             [l_single[s] for s in sorted(l_single)], rtol=1e-5)
  exp = build_experiment(c)
  with Checkpointer(str(multi / "checkpoints"), read_only=True) as a, \
       Checkpointer(str(single / "checkpoints"), read_only=True) as b:
    sa, _, _ = restore_or_init(exp, a)
    sb, _, _ = restore_or_init(exp, b)
  for x, y in zip(jax.tree.leaves(sa.params), jax.tree.leaves(sb.params)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6)
