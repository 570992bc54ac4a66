"""Expand a grid of config overrides into named runs; run them locally or on a TPU VM.

    python launch/sweep.py --config=configs/cifar_tv.py --root=runs/tau \\
        --grid=process.gamma_tau=0.2,1,1000 --grid=sampling.num_steps=50,250 --dry_run
    # on a TPU VM slice (one run after another, each on all workers):
    python launch/sweep.py ... --tpu=bd-v5e --zone=us-west4-a

Each point of the grid is one run directory <root>/<name>, name built from the
overrides (e.g. gamma_tau-0.2_num_steps-50), with `--config.<field>=<value>`
passed to `python -m bluediff.main`; extra flags after `--` go to every run
(e.g. `-- --mode=evaluate`). --dry_run prints every command and runs nothing.
"""
from __future__ import annotations

import argparse
import itertools
import os
import re
import shlex
import subprocess
import sys

if __package__ in (None, ""):          # run as `python launch/sweep.py`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from launch import tpu as tpu_lib      # noqa: E402


def parse_grid(specs: list[str]) -> list[tuple[str, list[str]]]:
  """['a.b=1,2', 'c=x'] -> [('a.b', ['1', '2']), ('c', ['x'])]."""
  out = []
  for spec in specs:
    if "=" not in spec:
      raise ValueError(f"--grid={spec!r}: expected field=value1,value2,...")
    field, values = spec.split("=", 1)
    out.append((field.strip(), [v.strip() for v in values.split(",") if v.strip()]))
  return out


def run_name(point: dict[str, str]) -> str:
  """A directory-safe name: the last part of each field and its value."""
  parts = [f"{field.split('.')[-1]}-{value}" for field, value in point.items()]
  return re.sub(r"[^A-Za-z0-9._-]", "", "_".join(parts)) or "run"


def expand(config: str, root: str, grid: list[tuple[str, list[str]]],
           extra: list[str]) -> list[tuple[str, list[str]]]:
  """[(name, bluediff.main arguments)] for every point of the grid."""
  fields = [f for f, _ in grid]
  runs = []
  for values in itertools.product(*[v for _, v in grid]):
    point = dict(zip(fields, values))
    name = run_name(point)
    args = [f"--config={config}", f"--workdir={root.rstrip('/')}/{name}"]
    args += [f"--config.{f}={v}" for f, v in point.items()] + list(extra)
    runs.append((name, args))
  names = [n for n, _ in runs]
  if len(set(names)) != len(names):
    raise ValueError(f"grid values collide after making names: {names}")
  return runs


def commands(runs, tpu: str = "", zone: str = "") -> list[list[str]]:
  if not tpu:
    return [[sys.executable, "-m", "bluediff.main", *args] for _, args in runs]
  a = argparse.Namespace(name=tpu, zone=zone)
  return [tpu_lib.run_cmd(a, args)[0] for _, args in runs]


def main(argv=None) -> None:
  argv = sys.argv[1:] if argv is None else argv
  extra = argv[argv.index("--") + 1:] if "--" in argv else []
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--config", required=True)
  ap.add_argument("--root", required=True, help="parent directory of the run directories")
  ap.add_argument("--grid", action="append", default=[], help="field=v1,v2,... (repeatable)")
  ap.add_argument("--tpu", default="", help="run on this TPU VM (all workers)")
  ap.add_argument("--zone", default="")
  ap.add_argument("--dry_run", action="store_true")
  a = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
  if a.tpu and not a.zone:
    ap.error("--tpu needs --zone")
  runs = expand(a.config, a.root, parse_grid(a.grid), extra)
  for cmd in commands(runs, a.tpu, a.zone):
    print(shlex.join(cmd), flush=True)
    if not a.dry_run:
      subprocess.run(cmd, check=True)


if __name__ == "__main__":
  main()
