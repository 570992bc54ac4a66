"""End to end through the real command line: train, sample, evaluate."""
import json
import subprocess
import sys

import numpy as np


def run_main(args, env, timeout=600):
  r = subprocess.run([sys.executable, "-m", "bluediff.main", "--config=tests/tiny_config.py", *args],
                     capture_output=True, text=True, env=env, timeout=timeout)
  assert r.returncode == 0, r.stderr[-3000:]
  return r


def test_train_sample_evaluate(subprocess_env, tmp_path):
  wd = f"--workdir={tmp_path}"
  run_main([wd, "--config.training.num_steps=4"], subprocess_env)
  assert (tmp_path / "checkpoints" / "4").is_dir() and (tmp_path / "samples.png").exists()
  run_main([wd, "--mode=sample"], subprocess_env)
  with np.load(tmp_path / "samples.npz", allow_pickle=False) as f:
    images = f["images"]
  assert images.dtype == np.uint8 and images.shape == (16, 16, 16, 1)
  run_main([wd, "--mode=evaluate", f"--samples={tmp_path / 'samples.npz'}"], subprocess_env)
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  d = metrics["digits"]
  assert d["num_samples"] == 16 and abs(sum(d["class_shares"]) - 1) < 1e-6
  assert d["passes"] is False      # 4 training steps make no digits


def test_unknown_mode_is_an_error(subprocess_env, tmp_path):
  r = subprocess.run([sys.executable, "-m", "bluediff.main", "--config=tests/tiny_config.py",
                      f"--workdir={tmp_path}", "--mode=dance"],
                     capture_output=True, text=True, env=subprocess_env, timeout=120)
  assert r.returncode != 0 and "mode" in r.stderr


def test_sample_without_checkpoint_says_train_first(subprocess_env, tmp_path):
  r = subprocess.run([sys.executable, "-m", "bluediff.main", "--config=tests/tiny_config.py",
                      f"--workdir={tmp_path}", "--mode=sample"],
                     capture_output=True, text=True, env=subprocess_env, timeout=120)
  assert r.returncode == 2 and "train first" in r.stderr and "Traceback" not in r.stderr


def test_sigkill_then_rerun_resumes_and_finishes(subprocess_env, tmp_path):
  """The acceptance check: kill -9 mid-run, rerun the same command, it finishes."""
  import os
  import signal
  import time
  cmd = [sys.executable, "-m", "bluediff.main", "--config=tests/tiny_config.py",
         f"--workdir={tmp_path}", "--config.training.num_steps=200",
         "--config.training.checkpoint_every=10"]
  p = subprocess.Popen(cmd, env=subprocess_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  ckpts = tmp_path / "checkpoints"
  deadline = time.time() + 300
  while time.time() < deadline and not any(d.name.isdigit() for d in ckpts.glob("*")):
    time.sleep(0.2)
  os.kill(p.pid, signal.SIGKILL)
  p.wait()
  done = sorted(int(d.name) for d in ckpts.glob("*") if d.name.isdigit())
  assert done and done[-1] < 200, done
  r = run_main([f"--workdir={tmp_path}", "--config.training.num_steps=200",
                "--config.training.checkpoint_every=10"], subprocess_env)
  assert "resumed from" in r.stdout
  resumed_at = int(r.stdout.split("resumed from")[1].split()[0].rsplit("/", 1)[1])
  assert resumed_at >= done[-1]
  assert (ckpts / "200").is_dir()
