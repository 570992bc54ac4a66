"""Mutation check: plausible one-line bugs in the math, each of which the tests must catch.

    python tools/mutation_check.py                 # every mutation (about 15-20 min on 2 cores)
    python tools/mutation_check.py --only=blue     # those whose name contains "blue"
    python tools/mutation_check.py --list

Each mutation replaces one exact line fragment of one file by a wrong one (a sign, a
missing factor, an off-by-one index, a swapped argument, a dropped term). The check
copies the tree once to a scratch folder, and for each mutation: applies it there,
checks that the pattern occurred exactly once and that the mutated module still
imports (otherwise the mutation is 'invalid', never 'killed'), runs the tests named
for it with `-x` under a time limit, and restores the file. It prints a table
(mutation, killed / survived / invalid / timeout, seconds) and exits non-zero unless
every mutation is killed. The caches (TFDS data, blue-noise statistics, the digits
judge, XLA's compilation cache) are shared with the working tree's `.cache/`.

Run it before resolving an issue that touches processes, noise, degradations, bases,
evaluate, step or checkpoint; when you fix a bug, add the bug here as a mutation.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Mutation:
  name: str
  path: str                 # file, relative to the repository root
  old: str                  # must occur exactly once in the file
  new: str
  tests: tuple[str, ...]    # pytest node ids or files that must catch it


def _m(name, path, old, new, *tests):
  return Mutation(name, path, old, new, tuple(tests))


P = "bluediff/processes/"
MUTATIONS = [
    # --- blue-noise process (methods.md §2) --------------------------------------------
    _m("blue: sampler starts from white noise, not L_1 eps", P + "blue.py",
       "return self.mixed(eps, self.noise.apply(eps), jnp.full((shape[0],), self.gamma(1.0)))",
       "return eps", "tests/test_blue_process.py::test_samplers_start_from_the_training_law_at_t1"),
    # --- DDPM / DDIM --------------------------------------------------------------------
    _m("ddim: eta>0 fresh noise white, not L_j z", P + "ddpm.py",
       "z = self.coloured(jax.random.normal(key, x.shape), jnp.full((x.shape[0],), j, jnp.float32))",
       "z = jax.random.normal(key, x.shape)",
       "tests/test_blue_process.py::test_ddim_fresh_noise_is_coloured_by_L_j"),
    _m("ddim: tv start state white", P + "ddpm.py",
       "x = self.coloured(jax.random.normal(k_init, shape), jnp.full((shape[0],), t, jnp.float32))",
       "x = jax.random.normal(k_init, shape)",
       "tests/test_blue_process.py::test_samplers_start_from_the_training_law_at_t1"),
    _m("ddim: eta variance sqrt dropped", P + "ddpm.py",
       "s = self.eta * jnp.sqrt((1.0 - ab_j) / (1.0 - ab_k)) * jnp.sqrt(1.0 - ab_k / ab_j)",
       "s = self.eta * ((1.0 - ab_j) / (1.0 - ab_k)) * jnp.sqrt(1.0 - ab_k / ab_j)",
       "tests/test_blue_process.py::test_ddim_fresh_noise_is_coloured_by_L_j"),
    # --- gamma schedules (methods.md §2.2) ------------------------------------------------
    _m("gamma: cosine power on the signed cosine (NaN at pi/2)", P + "schedules.py",
       "return jnp.square(jnp.cos(v * (jnp.pi / 2))) ** self.tau",
       "return jnp.cos(v * (jnp.pi / 2)) ** (2 * self.tau)",
       "tests/test_config.py::test_every_allowed_cosine_gamma_is_finite_monotone_and_pinned"),
    _m("gamma: sigmoid normaliser swapped", P + "schedules.py",
       "return (self._unnormalised(v) - lo) / (hi - lo)",
       "return (self._unnormalised(v) - hi) / (lo - hi)",
       "tests/test_config.py::test_sigmoid_gamma_matches_the_reference_formula"),
    _m("gamma: tanh argument loses its factor 2", P + "schedules.py",
       "return jnp.tanh(v / (2.0 * self.tau))", "return jnp.tanh(v / self.tau)",
       "tests/test_config.py::test_sigmoid_gamma_matches_the_reference_formula"),
    _m("validate: cosine monotone-range check dropped", P + "schedules.py",
       "if math.floor(lo_v) != math.floor(hi_v) and hi_v != math.floor(lo_v) + 1:",
       "if False:", "tests/test_config.py::test_invalid_gamma_ranges_are_rejected_with_one_line"),
    # --- signatures (what a checkpoint means) ---------------------------------------------
    _m("signature: time scale not recorded", "bluediff/signature.py",
       '    "iadb": ("time_scale", "sr_factor"),', '    "iadb": ("sr_factor",),',
       "tests/test_signature.py", "tests/test_checkpoint.py::test_a_config_that_changes_the_networks_meaning_is_refused"),
    _m("signature: degradation fields not recorded for cold", "bluediff/signature.py",
       '    "cold": ("time_scale", "degradation"),', '    "cold": ("time_scale",),',
       "tests/test_signature.py"),
    _m("signature: legacy time scale not checked", "bluediff/signature.py",
       "wrong = [(k, v, hint) for k, v, hint in LEGACY if k in fields and fields[k] != v]",
       "wrong = []", "tests/test_signature.py"),
    _m("checkpoint: signature mismatch ignored", "bluediff/checkpoint.py",
       "      if problem:\n        raise CheckpointMismatchError(",
       "      if False:\n        raise CheckpointMismatchError(",
       "tests/test_checkpoint.py::test_a_config_that_changes_the_networks_meaning_is_refused"),
]


def _copy_tree(dst: pathlib.Path) -> None:
  ignore = shutil.ignore_patterns(".git", ".venv", ".cache", "runs", "__pycache__", "*.egg-info",
                                  ".pytest_cache")
  shutil.copytree(ROOT, dst, ignore=ignore, dirs_exist_ok=True)


def _module(path: str) -> str | None:
  if not path.endswith(".py") or not path.startswith("bluediff/"):
    return None
  return path[:-3].replace("/", ".").removesuffix(".__init__")


def _env(scratch: pathlib.Path) -> dict:
  env = dict(os.environ)
  cache = ROOT / ".cache"      # shared: data, statistics, judge, XLA compilations
  env.update(TFDS_DATA_DIR=str(cache / "tfds"), BLUEDIFF_CACHE=str(cache / "bluediff"),
             JAX_COMPILATION_CACHE_DIR=str(cache / "jax_cc"),
             PYTHONPATH=str(scratch), PYTHONDONTWRITEBYTECODE="1")
  return env


def check(m: Mutation, scratch: pathlib.Path, timeout: float) -> tuple[str, float, str]:
  """(status, seconds, detail) of one mutation applied in `scratch` (restored after)."""
  t0 = time.perf_counter()
  target = scratch / m.path
  original = target.read_text()
  count = original.count(m.old)
  if count != 1:
    return "invalid", 0.0, f"pattern found {count} times"
  target.write_text(original.replace(m.old, m.new))
  env = _env(scratch)
  try:
    mod = _module(m.path)
    if mod:
      r = subprocess.run([sys.executable, "-c", f"import {mod}"], cwd=scratch, env=env,
                         capture_output=True, text=True, timeout=120)
      if r.returncode != 0:
        return "invalid", time.perf_counter() - t0, "does not import: " + r.stderr.strip().splitlines()[-1]
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "",
           "--no-header", *m.tests]
    try:
      r = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
      return "timeout", time.perf_counter() - t0, f"over {timeout:.0f} s"
    tail = (r.stdout.strip().splitlines() or [""])[-1]
    if r.returncode == 1:
      return "killed", time.perf_counter() - t0, tail
    if r.returncode == 0:
      return "survived", time.perf_counter() - t0, tail
    return "invalid", time.perf_counter() - t0, f"pytest exit {r.returncode}: {tail}"
  finally:
    target.write_text(original)


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--only", default="", help="run the mutations whose name contains this")
  ap.add_argument("--timeout", type=float, default=300.0, help="seconds per mutation's tests")
  ap.add_argument("--list", action="store_true")
  args = ap.parse_args()
  chosen = [m for m in MUTATIONS if args.only in m.name]
  if args.list:
    for m in chosen:
      print(f"{m.name}  [{m.path}]  -> {' '.join(m.tests)}")
    return 0
  rows, start = [], time.perf_counter()
  with tempfile.TemporaryDirectory(prefix="bluediff-mutants-") as tmp:
    scratch = pathlib.Path(tmp)
    _copy_tree(scratch)
    for i, m in enumerate(chosen, 1):
      status, secs, detail = check(m, scratch, args.timeout)
      rows.append((m, status, secs, detail))
      print(f"[{i}/{len(chosen)}] {status:8s} {secs:6.1f} s  {m.name}" +
            (f"  ({detail})" if status != "killed" else ""), flush=True)
  killed = sum(s == "killed" for _, s, _, _ in rows)
  print("\n| mutation | file | result | s |\n|---|---|---|---|")
  for m, status, secs, detail in rows:
    shown = status if status == "killed" else f"**{status}** ({detail})"
    print(f"| {m.name} | {m.path} | {shown} | {secs:.1f} |")
  print(f"\n{killed}/{len(rows)} killed in {time.perf_counter() - start:.0f} s")
  return 0 if killed == len(rows) else 1


if __name__ == "__main__":
  sys.exit(main())
