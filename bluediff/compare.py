"""Compare runs: one table (markdown + CSV) and plots from their evaluations.

    python -m bluediff.compare runs/iadb runs/blue runs/tv --out=reports/cmp

Reads each run's `evaluations.jsonl` (written by --mode=evaluate) and writes
  table.md, table.csv   one row per (run, checkpoint step, sampler, steps), the
                        latest evaluation of each; a pivot of the main metric
                        (runs x sampling steps) as in the papers' tables
  <metric>_vs_steps.png          metric vs number of sampling steps (latest checkpoint)
  <metric>_vs_training_step.png  metric vs training step (each run's most used step count)
"""
from __future__ import annotations

import argparse
import collections
import csv
import json
import io
import sys

from bluediff import storage

# Lower is better for these; the table marks the best value of each column.
LOWER_IS_BETTER = {"fid", "kid", "digits_frechet", "digits_frechet_ratio", "spectral_log_error",
                   "rmse", "lpips"}


def read_evaluations(run_dir: str) -> list[dict]:
  path = storage.join(run_dir, "evaluations.jsonl")
  if not storage.isfile(path):
    raise FileNotFoundError(f"{path} does not exist: evaluate the run first "
                            f"(python -m bluediff.main --mode=evaluate --workdir={run_dir} ...)")
  return [json.loads(line) for line in storage.read_text(path).splitlines() if line.strip()]


def latest_evaluations(evaluations: list[dict]) -> dict:
  """(checkpoint step, sampler, steps) -> the newest evaluation of that key."""
  latest = {}
  for e in evaluations:
    latest[(e.get("checkpoint_step"), e.get("sampler"), e.get("num_steps"))] = e
  return latest


def latest_rows(run_name: str, evaluations: list[dict]) -> list[dict]:
  """The newest evaluation per (checkpoint step, sampler, steps), flattened."""
  latest = latest_evaluations(evaluations)
  return [{"run": run_name, "checkpoint_step": k[0], "sampler": k[1], "num_steps": k[2],
           **{m: v for m, v in e["metrics"].items() if isinstance(v, (int, float))}}
          for k, e in latest.items()]


def judge_version(evaluation: dict) -> int | None:
  """The digits judge that scored an evaluation (1 before versions were recorded)."""
  if not any(k.startswith("digits_") for k in evaluation.get("metrics", {})):
    return None
  return (evaluation.get("digits_judge_version")
          or (evaluation.get("provenance") or {}).get("digits_judge_version") or 1)


def check_judge_versions(per_run: dict[str, list[dict]]) -> None:
  """Refuses to tabulate digits metrics scored by different judge versions (the
  newest evaluation of each key counts: a re-scored run is not refused)."""
  seen = collections.defaultdict(set)
  for name, evaluations in per_run.items():
    for e in latest_evaluations(evaluations).values():
      v = judge_version(e)
      if v is not None:
        seen[v].add(name)
  if len(seen) > 1:
    parts = "; ".join(f"v{v}: {', '.join(sorted(n))}" for v, n in sorted(seen.items()))
    raise ValueError(f"these evaluations were scored by different digits judges ({parts}); "
                     f"re-score the older ones (--mode=evaluate --samples=eval/<tag>/samples.npz)")


def _fmt(v) -> str:
  if isinstance(v, bool):
    return str(v)
  if isinstance(v, float):
    return f"{v:.4g}"
  return "" if v is None else str(v)


def markdown_table(rows: list[dict], columns: list[str]) -> str:
  best = {}
  for c in columns:
    vals = [r[c] for r in rows if isinstance(r.get(c), float)]
    if vals and c in LOWER_IS_BETTER:
      best[c] = min(vals)
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  for r in rows:
    cells = [f"**{_fmt(r.get(c))}**" if c in best and r.get(c) == best[c] else _fmt(r.get(c))
             for c in columns]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _plot(series: dict, xlabel: str, ylabel: str, path: str) -> str:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
  for label, pts in series.items():
    pts = sorted(pts)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
  if xlabel == "sampling steps":     # step counts are usually powers of two
    ax.set_xscale("log", base=2)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  storage.save_figure(fig, path)
  plt.close(fig)
  return path


def compare(run_dirs: list[str], out: str, metrics: list[str] | None = None) -> dict:
  """Writes table.md, table.csv and plots into `out`. Returns {'rows', 'plots', 'metrics'}."""
  full = [str(storage.run_path(d)) for d in run_dirs]
  if len(set(full)) < len(run_dirs):
    raise ValueError(f"a run directory is given twice: {run_dirs}")
  names = [storage.basename(d) for d in full]
  if len(set(names)) < len(names):   # same leaf name in different places: use full paths
    names = full
  per_run = {n: read_evaluations(d) for n, d in zip(names, run_dirs)}
  check_judge_versions(per_run)
  rows = [r for n in names for r in latest_rows(n, per_run[n])]
  found = []
  for r in rows:
    found += [k for k in r if k not in ("run", "checkpoint_step", "sampler", "num_steps")
              and k not in found]
  metrics = [m for m in (metrics or found) if m in found]
  if not metrics:
    raise ValueError(f"no common numeric metric in {run_dirs}; found {found}")
  storage.makedirs(out)
  columns = ["run", "checkpoint_step", "sampler", "num_steps"] + metrics
  rows.sort(key=lambda r: (r["run"], r["checkpoint_step"] or 0, r["sampler"] or "", r["num_steps"] or 0))
  buf = io.StringIO(newline="")
  w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
  w.writeheader()
  w.writerows(rows)
  storage.write_text(storage.join(out, "table.csv"), buf.getvalue())

  main_metric = metrics[0]
  last_ckpt = {n: max((r["checkpoint_step"] or 0) for r in rows if r["run"] == n) for n in names}
  at_last = [r for r in rows if (r["checkpoint_step"] or 0) == last_ckpt[r["run"]]]
  steps = sorted({r["num_steps"] for r in at_last if r["num_steps"] is not None})
  pivot = [{"run": f"{n} ({s})", **{str(k): r[main_metric] for r in at_last
                                    if r["run"] == n and r["sampler"] == s
                                    for k in [r["num_steps"]] if main_metric in r}}
           for n in names for s in sorted({r["sampler"] for r in at_last if r["run"] == n}, key=str)]
  md = [f"# Comparison of {len(names)} runs", "",
        f"## {main_metric} by sampling steps (latest checkpoint of each run)", "",
        markdown_table(pivot, ["run"] + [str(s) for s in steps]), "",
        "## All evaluations (latest per checkpoint, sampler and steps)", "",
        markdown_table(rows, columns)]

  plots = []
  for m in metrics:
    vs_steps = collections.defaultdict(list)
    for r in at_last:
      if m in r and r["num_steps"] is not None:
        vs_steps[f"{r['run']} ({r['sampler']})"].append((r["num_steps"], r[m]))
    if any(len(v) > 1 for v in vs_steps.values()):
      plots.append(_plot(vs_steps, "sampling steps", m, storage.join(out, f"{m}_vs_steps.png")))
    vs_train = collections.defaultdict(list)
    for n in names:
      counts = collections.Counter(r["num_steps"] for r in rows if r["run"] == n and m in r)
      if counts:
        usual = counts.most_common(1)[0][0]
        vs_train[n] = [(r["checkpoint_step"] or 0, r[m]) for r in rows
                       if r["run"] == n and r["num_steps"] == usual and m in r]
    if any(len(v) > 1 for v in vs_train.values()):
      plots.append(_plot(vs_train, "training step", m,
                         storage.join(out, f"{m}_vs_training_step.png")))
  md += [""] + [f"![{storage.basename(p)}]({storage.basename(p)})" for p in plots]
  storage.write_text(storage.join(out, "table.md"), "\n".join(md) + "\n")
  return {"rows": rows, "plots": plots, "metrics": metrics}


def main(argv=None):
  ap = argparse.ArgumentParser(description="Compare evaluated runs: a markdown table, a CSV, plots.")
  ap.add_argument("runs", nargs="+", help="run directories (each with evaluations.jsonl)")
  ap.add_argument("--out", required=True, help="output directory")
  ap.add_argument("--metrics", default="", help="comma-separated metrics (default: all found)")
  args = ap.parse_args(argv)
  try:
    result = compare(args.runs, args.out, [m for m in args.metrics.split(",") if m] or None)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  print(f"{len(result['rows'])} rows, {len(result['plots'])} plots -> {storage.join(args.out, 'table.md')}")


if __name__ == "__main__":
  main()
