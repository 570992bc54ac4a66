"""Launchers: the sweep's expansion and dry runs, and the TPU commands they print."""
import subprocess
import sys

import pytest

from launch import sweep, tpu


def test_grid_expands_to_named_runs_with_overrides():
  runs = sweep.expand("configs/cifar_tv.py", "runs/tau/",
                      sweep.parse_grid(["process.gamma_tau=0.2,1,1000", "sampling.num_steps=50,250"]),
                      ["--mode=evaluate"])
  assert len(runs) == 6
  name, args = runs[0]
  assert name == "gamma_tau-0.2_num_steps-50"
  assert args == ["--config=configs/cifar_tv.py", "--workdir=runs/tau/gamma_tau-0.2_num_steps-50",
                  "--config.process.gamma_tau=0.2", "--config.sampling.num_steps=50", "--mode=evaluate"]
  assert len({n for n, _ in runs}) == 6
  with pytest.raises(ValueError, match="field=value"):
    sweep.parse_grid(["nonsense"])


def test_sweep_dry_run_prints_every_command_and_runs_nothing(tmp_path):
  r = subprocess.run([sys.executable, "launch/sweep.py", "--config=configs/digits.py",
                      f"--root={tmp_path}", "--grid=optim.lr=1e-3,2e-3", "--dry_run"],
                     capture_output=True, text=True, timeout=60)
  assert r.returncode == 0, r.stderr
  lines = r.stdout.strip().splitlines()
  assert len(lines) == 2 and all("-m bluediff.main" in line for line in lines)
  assert f"--workdir={tmp_path}/lr-1e-3" in lines[0] and "--config.optim.lr=2e-3" in lines[1]
  assert not any(tmp_path.iterdir())                     # nothing ran


def test_sweep_on_a_tpu_vm_prints_ssh_to_all_workers(tmp_path):
  r = subprocess.run([sys.executable, "launch/sweep.py", "--config=configs/cifar_tv.py",
                      "--root=gs://b/runs", "--grid=process.gamma_tau=0.2,1000", "--tpu=bd",
                      "--zone=us-west4-a", "--dry_run"], capture_output=True, text=True, timeout=60)
  assert r.returncode == 0, r.stderr
  lines = r.stdout.strip().splitlines()
  assert len(lines) == 2
  assert lines[0].startswith("gcloud compute tpus tpu-vm ssh bd --zone=us-west4-a --worker=all")
  assert "--distributed" in lines[0] and "--config.process.gamma_tau=0.2" in lines[0]


def test_tpu_lifecycle_dry_run(capsys):
  tpu.main(["create", "--name=bd", "--zone=z", "--accelerator=v4-32", "--spot", "--dry_run"])
  tpu.main(["setup", "--name=bd", "--zone=z", "--dry_run"])
  tpu.main(["run", "--name=bd", "--zone=z", "--dry_run", "--", "--config=configs/cifar_tv.py",
            "--workdir=gs://b/r"])
  tpu.main(["delete", "--name=bd", "--zone=z", "--dry_run"])
  out = capsys.readouterr().out.strip().splitlines()
  assert out[0] == ("gcloud compute tpus tpu-vm create bd --zone=z --accelerator-type=v4-32 "
                    "--version=tpu-ubuntu2204-base --spot")
  assert out[1].startswith("gcloud compute tpus tpu-vm scp --recurse . bd:bluediff") and "--worker=all" in out[1]
  assert "pip install -q -e ." in out[2] and "jax[tpu]" in out[2] and "--worker=all" in out[2]
  assert "bluediff.main --distributed --config=configs/cifar_tv.py --workdir=gs://b/r" in out[3]
  assert out[4] == "gcloud compute tpus tpu-vm delete bd --zone=z --quiet"
