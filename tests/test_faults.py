"""Faults: damaged checkpoints are skipped, SIGTERM saves and exits, NaN steps can be skipped,
and a run is deterministic."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bluediff.checkpoint import Checkpointer
from bluediff.experiment import build_experiment, restore_or_init
from bluediff.train import train


@pytest.fixture(scope="module")
def finished_run(tiny_config, tmp_path_factory):
  wd = tmp_path_factory.mktemp("run")
  train(tiny_config(), str(wd))          # 6 steps, checkpoints at 3 and 6
  return wd


def _losses(wd):
  return [json.loads(line)["loss"] for line in open(os.path.join(wd, "metrics.jsonl"))]


def _damage(step_dir, how):
  files = sorted(os.path.join(d, f) for d, _, fs in os.walk(step_dir) for f in fs
                 if f != "bluediff_manifest.json" and os.path.getsize(os.path.join(d, f)) > 8)
  target = files[-1]
  if how == "truncate":
    with open(target, "r+b") as f:
      f.truncate(os.path.getsize(target) // 2)
  elif how == "delete":
    os.remove(target)
  else:                                   # flip bytes
    data = bytearray(open(target, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(target, "wb").write(bytes(data))


@pytest.mark.parametrize("how", ["truncate", "delete", "flip"])
def test_damaged_checkpoint_is_skipped_never_loaded(tiny_config, finished_run, tmp_path, how, capsys):
  wd = tmp_path / "run"
  shutil.copytree(finished_run, wd)
  ckpts = wd / "checkpoints"
  files = json.loads((ckpts / "6" / "bluediff_manifest.json").read_text())["files"]
  assert files and all(len(v["sha256"]) == 64 and v["size"] >= 0 for v in files.values())
  _damage(ckpts / "6", how)
  with Checkpointer(str(ckpts)) as ckpt:
    state, _, step = restore_or_init(build_experiment(tiny_config()), ckpt)
  assert step == 3 and int(state.step) == 3
  assert "is skipped" in capsys.readouterr().out
  assert (ckpts / "6.damaged").is_dir() and not (ckpts / "6").exists()
  train(tiny_config(), str(wd))           # resumes from 3 and rewrites 6
  with Checkpointer(str(ckpts), read_only=True) as ckpt:
    assert ckpt.latest_step() == 6 and ckpt.verify(6) is None


def test_manifests_from_before_issue_18_still_verify(finished_run, tmp_path):
  """The old manifest form ({"sha256": {file: digest}}) is read: a good step verifies,
  a flipped byte is caught."""
  import hashlib
  wd = tmp_path / "run"
  shutil.copytree(finished_run / "checkpoints", wd)
  step = wd / "6"
  files = [p for p in step.rglob("*") if p.is_file() and p.name != "bluediff_manifest.json"]
  old = {str(p.relative_to(step)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
  (step / "bluediff_manifest.json").write_text(json.dumps({"sha256": old}))
  with Checkpointer(str(wd), read_only=True) as ckpt:
    assert ckpt.verify(6) is None
  _damage(step, "flip")
  with Checkpointer(str(wd), read_only=True) as ckpt:
    assert "does not match its hash" in ckpt.verify(6)


@pytest.mark.slow   # a real subprocess run, signalled (~30 s)
def test_sigterm_saves_and_exits_cleanly_then_resumes(subprocess_env, tmp_path):
  cmd = [sys.executable, "-m", "bluediff.main", "--config=tests/tiny_config.py",
         f"--workdir={tmp_path}", "--config.training.num_steps=100000",
         "--config.training.checkpoint_every=100000", "--config.training.log_every=1"]
  p = subprocess.Popen(cmd, env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
  log = tmp_path / "metrics.jsonl"
  deadline = time.time() + 300
  while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
    time.sleep(0.2)
  p.send_signal(signal.SIGTERM)
  t0 = time.time()
  out, err = p.communicate(timeout=120)
  assert p.returncode == 0, err[-2000:]
  assert time.time() - t0 < 60 and "stopped by signal SIGTERM" in out
  with Checkpointer(str(tmp_path / "checkpoints"), read_only=True) as ckpt:
    stopped = ckpt.latest_step()
  assert stopped is not None and stopped >= 3 and stopped < 100000
  r = subprocess.run(cmd[:-3] + [f"--config.training.num_steps={stopped + 2}",
                                 "--config.training.checkpoint_every=1"],
                     env=subprocess_env, capture_output=True, text=True, timeout=300)
  assert r.returncode == 0 and f"resumed from {tmp_path}/checkpoints/{stopped}" in r.stdout


def test_nonfinite_steps_can_be_skipped():
  """With skip_nonfinite, a non-finite step (a NaN loss; or a finite loss whose gradient
  is NaN) leaves params, optimizer state and EMA exactly as they were; only the step
  counter advances. The state is taken after one good step, so that the EMA differs from
  the params and Adam's moments and count are nonzero (at init a NaN update could leave
  them looking untouched)."""
  import flax.linen as nn
  import optax
  from bluediff.processes.base import Process
  from bluediff.step import init_state, make_train_step
  from flax import struct

  @struct.dataclass
  class Loss(Process):
    """mean sqrt(c (out - 1/2)^2 + d): (c, d) = (1, 1) is finite; (1, NaN) a NaN loss;
    (0, 0) a finite loss (0) whose gradient is 0 * inf = NaN (sqrt at 0). c, d are
    leaves, so the three share one compilation."""
    c: jax.Array
    d: jax.Array
    samplers = ()
    def loss(self, net, x0, key):
      out = net(x0, jnp.zeros(x0.shape[0]))
      return jnp.mean(jnp.sqrt(self.c * jnp.square(out - 0.5) + self.d)), {}
    def sample(self, *a, **k):
      raise NotImplementedError

  class Net(nn.Module):                 # two convolutions: a few leaves, quick to compile
    @nn.compact
    def __call__(self, x, t, train=False):
      return nn.Conv(1, (3, 3))(nn.relu(nn.Conv(4, (3, 3))(x)))

  model = Net()
  opt = optax.adam(1e-3)
  state = init_state(model, opt, jax.random.key(0), (2, 8, 8, 1))
  step = jax.jit(make_train_step(model, opt, 0.9, skip_nonfinite=True))
  x = jnp.ones((2, 8, 8, 1))
  state, metrics = step(Loss(jnp.float32(1.0), jnp.float32(1.0)), state, x, jax.random.key(1))
  assert float(metrics["skipped"]) == 0.0
  leaves = lambda s: jax.tree.leaves((s.params, s.opt_state, s.ema_params))   # noqa: E731
  ema_gap = max(float(jnp.abs(e - p).max()) for e, p in zip(jax.tree.leaves(state.ema_params),
                                                             jax.tree.leaves(state.params)))
  assert ema_gap > 1e-5
  before = [np.asarray(a) for a in leaves(state)]
  for kind, (c, d) in {"nan_loss": (1.0, np.nan), "nan_grad": (0.0, 0.0)}.items():
    new, metrics = step(Loss(jnp.float32(c), jnp.float32(d)), state, x, jax.random.key(2))
    assert not np.isfinite(float(metrics["grad_norm"])), kind
    assert float(metrics["skipped"]) == 1.0 and int(new.step) == 2, kind
    after = leaves(new)
    assert len(after) == len(before)
    for a, b in zip(after, before):
      np.testing.assert_array_equal(np.asarray(a), b, err_msg=kind)


def test_on_nan_skip_reaches_the_train_step(tiny_config, monkeypatch):
  """training.on_nan=skip builds the step with skip_nonfinite (stop: without)."""
  from bluediff import step as step_lib
  seen = []
  real = step_lib.make_train_step
  monkeypatch.setattr(step_lib, "make_train_step",
                      lambda *a, **k: seen.append(k["skip_nonfinite"]) or real(*a, **k))
  for on_nan in ("skip", "stop"):
    c = tiny_config()
    c.training.on_nan = on_nan
    build_experiment(c).train_step()
  assert seen == [True, False]


def test_same_seed_same_losses(tiny_config, finished_run, tmp_path):
  train(tiny_config(), str(tmp_path))
  np.testing.assert_array_equal(_losses(tmp_path), _losses(finished_run))


def _sealed(ckpts):
  return sorted(int(d.name) for d in ckpts.glob("*")
                if d.name.isdigit() and (d / "bluediff_manifest.json").exists())


KILL_STEPS = ["--config.training.num_steps=8", "--config.training.checkpoint_every=2",
              "--config.training.log_every=1"]


@pytest.fixture(scope="module")
def kill_reference(tiny_config, tmp_path_factory):
  ref = tmp_path_factory.mktemp("ref")
  c = tiny_config()
  c.training.num_steps, c.training.checkpoint_every, c.training.log_every = 8, 2, 1
  train(c, str(ref))
  return {row["step"]: row["loss"] for row in map(json.loads, open(ref / "metrics.jsonl"))}


@pytest.mark.parametrize("when", [pytest.param("after_first_seal", marks=pytest.mark.slow), "mid_save",
                                  pytest.param("random", marks=pytest.mark.slow)])
def test_sigkill_at_any_point_resumes_from_a_complete_checkpoint(kill_reference, subprocess_env,
                                                                  tmp_path, when):
  """kill -9 (after a checkpoint is sealed, while a save is in flight, at a random time),
  then rerun the same command: it resumes from the last sealed step and ends with the
  uninterrupted run's losses."""
  import random
  wd = tmp_path / "run"
  cmd = [sys.executable, "-m", "bluediff.main", "--config=tests/tiny_config.py", f"--workdir={wd}",
         *KILL_STEPS]
  p = subprocess.Popen(cmd, env=subprocess_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  ckpts = wd / "checkpoints"
  deadline = time.time() + 300
  if when == "random":
    while time.time() < deadline and not (wd / "metrics.jsonl").exists():
      time.sleep(0.05)
    time.sleep(random.Random(0).uniform(0.0, 2.0))
  else:
    def ready():
      if when == "after_first_seal":
        return bool(_sealed(ckpts))
      return ckpts.exists() and any("tmp" in d.name for d in ckpts.iterdir())   # a save in flight
    while time.time() < deadline and p.poll() is None and not ready():
      time.sleep(0.01)
  p.kill()
  p.wait()
  sealed = _sealed(ckpts) if ckpts.exists() else []
  r = subprocess.run(cmd, env=subprocess_env, capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  if sealed:
    assert f"resumed from {ckpts}/{sealed[-1]}" in r.stdout
  final = {}
  for row in map(json.loads, open(wd / "metrics.jsonl")):
    final[row["step"]] = row["loss"]                  # the rerun's value wins
  want = kill_reference
  assert sorted(final) == sorted(want)
  np.testing.assert_allclose([final[s] for s in sorted(want)], [want[s] for s in sorted(want)],
                             rtol=1e-6)


def test_time_budget_stops_with_a_checkpoint(tiny_config, finished_run, tmp_path):
  """(Resuming a stopped run is tested in test_checkpoint.)"""
  c = tiny_config()
  c.training.time_budget_s, c.training.log_every = 1e-6, 2     # over budget at the first check
  train(c, str(tmp_path))
  assert Checkpointer(str(tmp_path / "checkpoints")).latest_step() == 2
  assert (tmp_path / "samples.png").exists()
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert [r["step"] for r in rows] == [2]                        # stopped at the first check
