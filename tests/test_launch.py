"""Launchers: the sweep's expansion and dry runs, and the TPU commands they print."""
import json
import os
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
  lines = r.stdout.strip().splitlines()[1:]           # after the one-line summary
  assert len(lines) == 2 and all("-m bluediff.main" in line for line in lines)
  assert f"--workdir={tmp_path}/lr-1e-3" in lines[0] and "--config.optim.lr=2e-3" in lines[1]
  assert not any(tmp_path.iterdir())                     # nothing ran


def test_sweep_on_a_tpu_vm_prints_ssh_to_all_workers(tmp_path):
  r = subprocess.run([sys.executable, "launch/sweep.py", "--config=configs/cifar_tv.py",
                      "--root=gs://b/runs", "--grid=process.gamma_tau=0.2,1000", "--tpu=bd",
                      "--zone=us-west4-a", "--dry_run"], capture_output=True, text=True, timeout=60)
  assert r.returncode == 0, r.stderr
  lines = r.stdout.strip().splitlines()[1:]
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
  assert "pip install -q -e " in out[2] and ".[gcs]" in out[2] and "jax[tpu]" in out[2] and "--worker=all" in out[2]
  assert "bluediff.main --distributed --config=configs/cifar_tv.py --workdir=gs://b/r" in out[3]
  assert out[4] == "gcloud compute tpus tpu-vm delete bd --zone=z --quiet"


def _cloud_python() -> str:
  """The Python of the `[cloud]` tools (skypilot, xpk): their pins clash with the test
  environment's, so they live in their own venv (.ci/run makes it)."""
  exe = os.environ.get("BLUEDIFF_CLOUD_PYTHON") or os.path.abspath(".venv-cloud/bin/python")
  assert os.path.exists(exe), ("the engines' parsers are missing: python3 -m venv .venv-cloud && "
                               ".venv-cloud/bin/pip install -r launch/requirements-cloud.txt")
  return exe


def _specs(tmp_path, backend, *flags):
  a = sweep._run_parser().parse_args(
      ["--config=configs/cifar_tv.py", "--root=gs://b/sweeps/tau",
       "--grid=process.gamma_tau=0.2,1000", "--grid=sampling.num_steps=50,250", "--evaluate",
       "--dry_run", f"--backend={backend}", f"--spec_dir={tmp_path}", *flags])
  return sweep.run(a, [])


def test_job_specs_hold_each_points_commands(tmp_path):
  m = _specs(tmp_path, "xpk", "--cluster=bd", "--docker_image=gcr.io/p/bd", "--zone=us-west4-a")
  assert len(m["points"]) == 4 and len({p["job"] for p in m["points"]}) == 4
  p = m["points"][0]
  cmd = next(x for x in p["spec"] if x.startswith("--command="))
  assert "--workdir=gs://b/sweeps/tau/gamma_tau-0.2_num_steps-50" in cmd
  assert "--distributed" in cmd and cmd.count("bluediff.main") == 2 and "--mode=evaluate" in cmd
  assert all(len(q["job"]) <= 40 and q["job"] == q["job"].lower() for q in m["points"])
  assert sweep.job_name("bd", "x" * 80) != sweep.job_name("bd", "x" * 79)   # truncated, distinct
  m = _specs(tmp_path, "skypilot", "--accelerators=A100:8")
  task = m["points"][1]["spec"]
  assert task["resources"] == {"accelerators": "A100:8", "use_spot": True,
                               "job_recovery": {"strategy": "FAILOVER", "max_restarts_on_errors": 3}}
  assert "gamma_tau-0.2_num_steps-250" in task["run"] and os.path.exists(m["points"][1]["spec_file"])
  with pytest.raises(SystemExit, match="must be gs://"):
    sweep.run(sweep._run_parser().parse_args(["--config=c.py", "--root=runs/x", "--backend=xpk",
                                              "--cluster=c", "--docker_image=i"]), [])


@pytest.mark.slow   # needs .venv-cloud (CI's slow step installs it): ~20 s
def test_generated_specs_are_accepted_by_the_engines_parsers(tmp_path):
  xpk_m = _specs(tmp_path, "xpk", "--cluster=bd", "--docker_image=gcr.io/p/bd", "--zone=us-west4-a",
                 "--project=p")
  sky_m = _specs(tmp_path, "skypilot")
  sky_gpu = _specs(tmp_path / "gpu", "skypilot", "--accelerators=A100:8", "--no-spot", "--cloud=gcp")
  specs = {"xpk": [p["spec"] for p in xpk_m["points"]],
           "skypilot": [p["spec_file"] for p in sky_m["points"] + sky_gpu["points"]]}
  (tmp_path / "specs.json").write_text(json.dumps(specs))
  r = subprocess.run([_cloud_python(), "tests/cloud_specs_check.py", str(tmp_path / "specs.json")],
                     capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  lines = r.stdout.splitlines()
  assert sum(line.startswith("xpk ok") for line in lines) == 4
  assert sum(line.startswith("sky ok") for line in lines) == 8
  assert any("spot=True" in line and "tpu-v5litepod-8" in line and "FAILOVER" in line for line in lines)
  assert any("spot=False" in line and "A100" in line for line in lines)
  # negative controls: the same checks refuse a misspelt flag and a misspelt YAML key
  bad_yaml = tmp_path / "bad.yaml"
  bad_yaml.write_text(open(sky_m["points"][0]["spec_file"]).read().replace("accelerators:", "accelerator:"))
  for bad in ({"xpk": [xpk_m["points"][0]["spec"] + ["--tpu-typo=v5"]]}, {"skypilot": [str(bad_yaml)]}):
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    r = subprocess.run([_cloud_python(), "tests/cloud_specs_check.py", str(tmp_path / "bad.json")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0


@pytest.mark.slow   # two tiny digits points, trained and evaluated (~3 min)
def test_a_local_sweep_resumes_reports_status_and_collects(tmp_path, subprocess_env):
  root = tmp_path / "sweep"
  cmd = [sys.executable, "launch/sweep.py", "run", "--config=tests/tiny_config.py", f"--root={root}",
         "--grid=optim.lr=1e-3,2e-3", "--evaluate", "--",
         "--config.eval.metrics=('digits',)", "--config.eval.num_samples=16"]
  r = subprocess.run(cmd, env=subprocess_env, capture_output=True, text=True, timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  r = subprocess.run([sys.executable, "launch/sweep.py", "status", f"--root={root}"],
                     env=subprocess_env, capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  assert "| lr-1e-3 | done | 6/6 |" in r.stdout and "| lr-2e-3 | done | 6/6 |" in r.stdout
  # a rerun skips finished points; a point cut short resumes
  status = json.loads((root / "lr-2e-3" / "run_status.json").read_text())
  (root / "lr-2e-3" / "run_status.json").write_text(json.dumps({**status, "state": "stopped"}))
  r = subprocess.run(cmd, env=subprocess_env, capture_output=True, text=True, timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  assert "[lr-1e-3] done at step 6: skipped" in r.stdout
  assert "[lr-2e-3] stopped at step 6: resuming" in r.stdout
  r = subprocess.run([sys.executable, "launch/sweep.py", "collect", f"--root={root}",
                      f"--out={tmp_path / 'table'}"], env=subprocess_env, capture_output=True,
                     text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  table = (tmp_path / "table" / "table.md").read_text()
  assert "lr-1e-3" in table and "lr-2e-3" in table and "digits_confident" in table
