"""Sweeps: a grid of config overrides, each point its own run (and, in the cloud, its own job).

    # locally, one point after another; rerunning skips finished points, resumes partial ones
    python launch/sweep.py run --config=configs/digits.py --root=runs/tau \\
        --grid=process.gamma_tau=0.2,1,1000 --evaluate
    # each point a GKE TPU workload (xpk), or a SkyPilot managed job on spot capacity
    python launch/sweep.py run --backend=xpk --cluster=bd --tpu_type=v5litepod-8 \\
        --docker_image=gcr.io/me/bluediff --config=configs/cifar_tv.py \\
        --root=gs://my-bucket/sweeps/tau --grid=process.gamma_tau=0.2,1,1000 --evaluate
    python launch/sweep.py run --backend=skypilot --accelerators=tpu-v5litepod-8 ...
    python launch/sweep.py status  --root=gs://my-bucket/sweeps/tau
    python launch/sweep.py collect --root=gs://my-bucket/sweeps/tau --out=runs/tau_table

Each point of the grid is one run directory <root>/<name>, the name built from
the overrides (e.g. gamma_tau-0.2), and one command: `python -m bluediff.main
--config=... --workdir=<root>/<name> --config.<field>=<value> ...` (then the same
with --mode=evaluate when --evaluate is given); extra flags after `--` go to every
run. Backends:
  local     the commands here, one after another (resumable: see above);
  tpu-vm    the commands on every worker of one TPU VM slice (launch/tpu.py), in turn;
  xpk       one `xpk workload create` per point (GKE TPU; --max_restarts restarts a
            preempted workload, which resumes from its gs:// workdir);
  skypilot  one `sky jobs launch` of a generated task YAML per point (spot TPUs or
            GPUs; managed jobs recover a preempted job, which resumes by itself).
--dry_run writes the manifest and the job specs and prints the commands, and runs
nothing. The manifest (<root>/sweep.json) lists points, workdirs, backend and job
names; `status` reads each point's own workdir (run_status.json and its sealed
checkpoints), so it is right whoever ran the jobs; `collect` runs bluediff.compare
over the evaluated points.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import re
import shlex
import subprocess
import sys
import time

if __package__ in (None, ""):          # run as `python launch/sweep.py`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from launch import tpu as tpu_lib      # noqa: E402

MANIFEST = "sweep.json"
BACKENDS = ("local", "tpu-vm", "xpk", "skypilot")


# ---------------------------------------------------------------- the grid

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


def job_name(prefix: str, name: str, limit: int = 40) -> str:
  """A Kubernetes / SkyPilot-safe job name (lowercase, [a-z0-9-], at most `limit` chars,
  a short hash keeps truncated names distinct)."""
  base = re.sub(r"[^a-z0-9-]+", "-", f"{prefix}-{name}".lower()).strip("-")
  if len(base) <= limit:
    return base
  digest = hashlib.sha1(base.encode()).hexdigest()[:6]
  return f"{base[:limit - 7].rstrip('-')}-{digest}"


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


def point_commands(args: list[str], evaluate: bool, python: str = sys.executable,
                   distributed: bool = False) -> list[list[str]]:
  """The bluediff.main invocations of one point: train, then (optionally) evaluate."""
  base = [python, "-m", "bluediff.main", *(["--distributed"] if distributed else [])]
  cmds = [[*base, *args]]
  if evaluate:
    cmds.append([*base, *args, "--mode=evaluate"])
  return cmds


def shell(cmds: list[list[str]]) -> str:
  return " && ".join(shlex.join(c) for c in cmds)


# ---------------------------------------------------------------- job specs

def xpk_spec(a, job: str, cmds: list[list[str]]) -> list[str]:
  """`xpk workload create` for one point: a GKE TPU workload running the point's commands."""
  spec = ["xpk", "workload", "create", f"--cluster={a.cluster}", f"--workload={job}",
          f"--tpu-type={a.tpu_type}", f"--num-slices={a.num_slices}",
          f"--docker-image={a.docker_image}", f"--max-restarts={a.max_restarts}",
          f"--command={shell(cmds)}"]
  if a.project:
    spec.append(f"--project={a.project}")
  if a.zone:
    spec.append(f"--zone={a.zone}")
  if a.spot:
    spec.append("--spot")
  return spec


def skypilot_task(a, job: str, cmds: list[list[str]], envs: dict[str, str]) -> dict:
  """A SkyPilot task (its YAML schema) for one point: a managed job on spot capacity that
  SkyPilot recovers after a preemption; the rerun command resumes from the gs:// workdir."""
  resources = {"accelerators": a.accelerators, "use_spot": bool(a.spot),
               "job_recovery": {"strategy": "FAILOVER", "max_restarts_on_errors": a.max_restarts}}
  if a.cloud:
    resources["cloud"] = a.cloud
  return {"name": job, "resources": resources, "workdir": a.code_dir,
          "setup": "pip install -e '.[gcs]'", "envs": envs,
          "run": shell(cmds) + "\n"}


# ---------------------------------------------------------------- the manifest and status

def _storage():
  from bluediff import storage
  return storage


def write_manifest(root: str, manifest: dict) -> str:
  storage = _storage()
  return storage.write_json(storage.join(root, MANIFEST), manifest)


def read_manifest(root: str) -> dict:
  storage = _storage()
  path = storage.join(root, MANIFEST)
  if not storage.exists(path):
    raise FileNotFoundError(f"{path} does not exist: start the sweep with "
                            f"`python launch/sweep.py run --root={root} ...`")
  return storage.read_json(path)


def point_status(workdir: str, evaluate: bool = False) -> dict:
  """A point's state from its own workdir: pending (nothing written), running (started,
  not finished: training, or preempted and waiting for its restart), stopped (a signal;
  resumable), failed (the run recorded an error), done (finished; with --evaluate, also
  evaluated); with the newest sealed checkpoint step."""
  storage = _storage()
  status_path = storage.join(workdir, "run_status.json")
  if not storage.exists(status_path):
    return {"state": "pending", "step": None}
  rs = storage.read_json(status_path)
  step = None
  if storage.exists(storage.join(workdir, "checkpoints")):
    from bluediff.checkpoint import Checkpointer
    with Checkpointer(storage.join(workdir, "checkpoints"), read_only=True) as ckpt:
      step = ckpt.latest_step()
  state = rs.get("state", "running")
  evaluated = storage.exists(storage.join(workdir, "evaluations.jsonl"))
  if state == "done" and evaluate and not evaluated:
    state = "running"                      # trained; its evaluation has not finished
  out = {"state": state, "step": step, "num_steps": rs.get("num_steps"), "evaluated": evaluated}
  if rs.get("error"):
    out["error"] = rs["error"]
  return out


def status(root: str) -> list[dict]:
  m = read_manifest(root)
  rows = []
  for p in m["points"]:
    rows.append({"name": p["name"], "job": p.get("job", ""), "workdir": p["workdir"],
                 **point_status(p["workdir"], m.get("evaluate", False))})
  return rows


def print_status(rows: list[dict]) -> None:
  print("| point | state | step | job | workdir |")
  print("|---|---|---|---|---|")
  for r in rows:
    step = "-" if r["step"] is None else f"{r['step']}/{r.get('num_steps') or '?'}"
    print(f"| {r['name']} | {r['state']} | {step} | {r['job'] or '-'} | {r['workdir']} |")
    if r.get("error"):
      print(f"|   | error: {r['error']} | | | |")
  counts = {}
  for r in rows:
    counts[r["state"]] = counts.get(r["state"], 0) + 1
  print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


def collect(root: str, out: str) -> dict:
  """bluediff.compare over the evaluated points: table.md, table.csv and plots in `out`."""
  from bluediff.compare import compare
  rows = status(root)
  ready = [r["workdir"] for r in rows if r["evaluated"]]
  missing = [r["name"] for r in rows if not r["evaluated"]]
  if missing:
    print(f"not evaluated yet (left out): {', '.join(missing)}")
  if not ready:
    raise FileNotFoundError(f"no point of {root} is evaluated yet (run the sweep with --evaluate, "
                            f"or evaluate each point with --mode=evaluate)")
  return compare(ready, out)


# ---------------------------------------------------------------- running

def _run_local(points, a) -> None:
  for p in points:
    st = point_status(p["workdir"], a.evaluate)
    if st["state"] == "done":
      print(f"[{p['name']}] done at step {st['step']}: skipped", flush=True)
      continue
    if st["step"] is not None:
      print(f"[{p['name']}] {st['state']} at step {st['step']}: resuming", flush=True)
    for cmd in p["commands"]:
      if cmd[-1] == "--mode=evaluate" and st.get("evaluated"):
        continue
      print(shlex.join(cmd), flush=True)
      rc = subprocess.run(cmd).returncode
      if rc != 0:
        raise SystemExit(f"[{p['name']}] exited with {rc}; rerun the sweep to resume it "
                         f"(finished points are skipped)")


def _launch(cmd: list[str], dry_run: bool) -> None:
  print(shlex.join(cmd), flush=True)
  if not dry_run:
    subprocess.run(cmd, check=True)


def run(a, extra: list[str]) -> dict:
  storage = _storage()
  remote = "://" in a.root
  root = a.root.rstrip("/") if remote else os.path.abspath(a.root)   # local: (no client needed)
  if a.backend in ("xpk", "skypilot") and not remote:
    raise SystemExit(f"error: --backend={a.backend} runs each point on another machine: "
                     f"--root must be gs://, not {a.root}")
  runs = expand(a.config, root, parse_grid(a.grid), extra)
  remote_python = "python" if a.backend in ("xpk", "skypilot") else sys.executable
  points = []
  for name, args in runs:
    p = {"name": name, "workdir": f"{root}/{name}", "args": args,
         "commands": point_commands(args, a.evaluate, remote_python,
                                    distributed=a.backend == "xpk")}
    if a.backend == "tpu-vm":
      p["commands"] = [tpu_lib.run_cmd(argparse.Namespace(name=a.tpu, zone=a.zone), c[3:])[0]
                       for c in p["commands"]]
    if a.backend in ("xpk", "skypilot"):
      p["job"] = job_name(a.job_prefix, name)
    points.append(p)
  manifest = {"backend": a.backend, "config": a.config, "root": root, "grid": a.grid,
              "evaluate": a.evaluate, "created": time.time(), "points": points}
  spec_dir = a.spec_dir or os.path.join("runs", "sweep_specs",  # local: specs for the CLIs
                                        root.rstrip("/").rsplit("/", 1)[-1])
  if a.backend == "xpk":
    for p in points:
      p["spec"] = xpk_spec(a, p["job"], p["commands"])
  elif a.backend == "skypilot":
    import yaml
    os.makedirs(spec_dir, exist_ok=True)                          # local: the sky CLI reads it
    envs = {"BLUEDIFF_CACHE": a.cache} if a.cache else {}
    for p in points:
      task = skypilot_task(a, p["job"], p["commands"], envs)
      path = os.path.join(spec_dir, f"{p['job']}.yaml")             # local: as above
      with open(path, "w") as f:                                    # local: as above
        yaml.safe_dump(task, f, sort_keys=False)
      p["spec_file"], p["spec"] = path, task
  if a.dry_run:
    print(f"sweep of {len(points)} points ({a.backend}); dry run: no manifest written, "
          f"nothing launched")
  else:
    write_manifest(root, manifest)
    print(f"sweep of {len(points)} points ({a.backend}); manifest {storage.join(root, MANIFEST)}")
  if a.backend == "local":
    if a.dry_run:
      for p in points:
        for cmd in p["commands"]:
          print(shlex.join(cmd))
    else:
      _run_local(points, a)
  elif a.backend == "tpu-vm":
    for p in points:
      for cmd in p["commands"]:
        _launch(cmd, a.dry_run)
  elif a.backend == "xpk":
    for p in points:
      _launch(p["spec"], a.dry_run)
  else:
    for p in points:
      _launch(["sky", "jobs", "launch", "--yes", f"--name={p['job']}", p["spec_file"]], a.dry_run)
  return manifest


def _run_parser() -> argparse.ArgumentParser:
  ap = argparse.ArgumentParser(prog="sweep.py run", description=__doc__.splitlines()[0])
  ap.add_argument("--config", required=True)
  ap.add_argument("--root", required=True, help="parent of the run directories (gs:// for cloud)")
  ap.add_argument("--grid", action="append", default=[], help="field=v1,v2,... (repeatable)")
  ap.add_argument("--backend", choices=BACKENDS, default="")
  ap.add_argument("--evaluate", action="store_true", help="evaluate each point after training")
  ap.add_argument("--dry_run", action="store_true")
  ap.add_argument("--tpu", default="", help="tpu-vm: the TPU VM (all workers)")
  ap.add_argument("--zone", default="")
  ap.add_argument("--project", default="")
  ap.add_argument("--cluster", default="", help="xpk: the GKE cluster")
  ap.add_argument("--tpu_type", default="v5litepod-8", help="xpk: TPU type of each workload")
  ap.add_argument("--num_slices", type=int, default=1)
  ap.add_argument("--docker_image", default="", help="xpk: an image with bluediff installed")
  ap.add_argument("--accelerators", default="tpu-v5litepod-8",
                  help="skypilot: e.g. tpu-v5litepod-8 or A100:8")
  ap.add_argument("--cloud", default="", help="skypilot: pin a cloud (gcp, aws, ...)")
  ap.add_argument("--spot", action=argparse.BooleanOptionalAction, default=True,
                  help="preemptible capacity (the job resumes from its workdir)")
  ap.add_argument("--max_restarts", type=int, default=3)
  ap.add_argument("--job_prefix", default="bd")
  ap.add_argument("--code_dir", default=".", help="skypilot: the checkout synced to each job")
  ap.add_argument("--cache", default="", help="BLUEDIFF_CACHE of each job (e.g. gs://b/cache)")
  ap.add_argument("--spec_dir", default="", help="where job specs are written (local)")
  return ap


def main(argv=None) -> None:
  argv = list(sys.argv[1:] if argv is None else argv)
  sub = argv[0] if argv and argv[0] in ("run", "status", "collect") else "run"
  if argv and argv[0] == sub:
    argv = argv[1:]
  if sub in ("status", "collect"):
    ap = argparse.ArgumentParser(prog=f"sweep.py {sub}")
    ap.add_argument("--root", required=True)
    if sub == "collect":
      ap.add_argument("--out", default="", help="default: <root>/collect")
    a = ap.parse_args(argv)
    try:
      if sub == "status":
        print_status(status(a.root))
      else:
        storage = _storage()
        out = a.out or storage.join(a.root, "collect")
        result = collect(a.root, out)
        print(f"{len(result['rows'])} rows, {len(result['plots'])} plots -> "
              f"{storage.join(out, 'table.md')}")
    except (FileNotFoundError, ValueError) as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
    return
  extra = argv[argv.index("--") + 1:] if "--" in argv else []
  ap = _run_parser()
  a = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
  a.backend = a.backend or ("tpu-vm" if a.tpu else "local")
  if a.backend == "tpu-vm" and not (a.tpu and a.zone):
    ap.error("--backend=tpu-vm needs --tpu and --zone")
  if a.backend == "xpk" and not (a.cluster and a.docker_image):
    ap.error("--backend=xpk needs --cluster and --docker_image")
  run(a, extra)


if __name__ == "__main__":
  main()
