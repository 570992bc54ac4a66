"""Create / attach a Cloud TPU VM slice, copy the code, install, run on every worker.

    python launch/tpu.py create  --name=bd-v5e --zone=us-west4-a --accelerator=v5litepod-8
    python launch/tpu.py setup   --name=bd-v5e --zone=us-west4-a
    python launch/tpu.py run     --name=bd-v5e --zone=us-west4-a -- \\
        --config=configs/cifar_tv.py --workdir=gs://my-bucket/runs/cifar_tv
    python launch/tpu.py delete  --name=bd-v5e --zone=us-west4-a
Every subcommand takes --dry_run (print the gcloud commands, run nothing).

`run` starts the same `python -m bluediff.main --distributed ...` on all
workers (`--worker=all`): jax.distributed.initialize reads the slice's
topology from the TPU environment, the global batch is split over every
chip, process 0 writes logs and grids, and every process takes part in
checkpoints (use a gs:// workdir so all workers see it).
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

REMOTE_DIR = "bluediff"


def gcloud_tpu(*args: str) -> list[str]:
  return ["gcloud", "compute", "tpus", "tpu-vm", *args]


def create_cmd(a) -> list[list[str]]:
  cmd = gcloud_tpu("create", a.name, f"--zone={a.zone}", f"--accelerator-type={a.accelerator}",
                   f"--version={a.version}")
  if a.spot:
    cmd.append("--spot")
  return [cmd]


def ssh_all(a, command: str) -> list[str]:
  return gcloud_tpu("ssh", a.name, f"--zone={a.zone}", "--worker=all", f"--command={command}")


def setup_cmds(a) -> list[list[str]]:
  """Copy the working tree to every worker and install it with JAX for TPU."""
  return [
      gcloud_tpu("scp", "--recurse", ".", f"{a.name}:{REMOTE_DIR}", f"--zone={a.zone}",
                 "--worker=all"),
      ssh_all(a, f"cd {REMOTE_DIR} && python3 -m venv .venv && .venv/bin/pip install -q -U pip "
                 f"&& .venv/bin/pip install -q -e '.[gcs]' 'jax[tpu]'"),
  ]


def run_cmd(a, main_args: list[str]) -> list[list[str]]:
  args = " ".join(shlex.quote(x) for x in main_args)
  return [ssh_all(a, f"cd {REMOTE_DIR} && .venv/bin/python -m bluediff.main --distributed {args}")]


def delete_cmd(a) -> list[list[str]]:
  return [gcloud_tpu("delete", a.name, f"--zone={a.zone}", "--quiet")]


def execute(cmds: list[list[str]], dry_run: bool) -> None:
  for cmd in cmds:
    print(shlex.join(cmd), flush=True)
    if not dry_run:
      subprocess.run(cmd, check=True)


def parser() -> argparse.ArgumentParser:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("action", choices=["create", "setup", "run", "delete"])
  ap.add_argument("--name", required=True)
  ap.add_argument("--zone", required=True)
  ap.add_argument("--accelerator", default="v5litepod-8")
  ap.add_argument("--version", default="tpu-ubuntu2204-base")
  ap.add_argument("--spot", action="store_true")
  ap.add_argument("--dry_run", action="store_true")
  return ap


def main(argv=None) -> None:
  argv = sys.argv[1:] if argv is None else argv
  main_args = argv[argv.index("--") + 1:] if "--" in argv else []
  a = parser().parse_args(argv[:argv.index("--")] if "--" in argv else argv)
  cmds = {"create": lambda: create_cmd(a), "setup": lambda: setup_cmds(a),
          "run": lambda: run_cmd(a, main_args), "delete": lambda: delete_cmd(a)}[a.action]()
  execute(cmds, a.dry_run)


if __name__ == "__main__":
  main()
