"""Command line: `python -m bluediff.main --config=configs/digits.py --workdir=runs/x`.

Flags only; the work happens in train / sampling / evaluate. Any config field
can be overridden: `--config.optim.lr=3e-4`. Multi-process runs call
`jax.distributed.initialize` from the --coordinator flags (or, on Cloud TPU
and SLURM, from the environment with --distributed).
"""
import os
import sys

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (checkpoints, logs, samples).")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "sample", "evaluate", "export"], "What to do.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step for sample/evaluate (default: latest).")
_SAMPLES = flags.DEFINE_string("samples", "", "evaluate: score this samples.npz instead of sampling.")
_EXPORT_DIR = flags.DEFINE_string("export_dir", "", "export: output directory (default <workdir>/export).")
_RAW = flags.DEFINE_bool("raw_weights", False, "export: the raw parameters instead of the EMA.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False,
                                 "Call jax.distributed.initialize() with arguments from the environment.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Total processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.")

flags.mark_flags_as_required(["config", "workdir"])


def _unknown_override(argv) -> str | None:
  """Names the first `--config.a.b=...` override whose field does not exist."""
  path = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  if path is None:
    return None
  from bluediff.config import load_config_file
  try:
    config = load_config_file(path)
  except Exception:
    return None
  for arg in argv:
    if not arg.startswith("--config."):
      continue
    node, walked = config, []
    for key in arg[len("--config."):].split("=", 1)[0].split("."):
      if not hasattr(node, "keys") or key not in node:
        where = ".".join(["config", *walked])
        known = sorted(node.keys()) if hasattr(node, "keys") else []
        return f"unknown config field {key!r} in {arg.split('=')[0]}; {where} has {known}"
      node, walked = node[key], walked + [key]
  return None


def parse_flags(argv):
  """absl flag parsing that turns every config error into one line on stderr."""
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # unknown field, wrong type, missing file, bad flag
    msg = _unknown_override(argv) or str(e).strip().splitlines()[-1]
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def _init_distributed():
  import jax
  if _COORDINATOR.value:
    if os.environ.get("JAX_PLATFORMS", "") == "cpu" or jax.config.jax_platforms == "cpu":
      jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)
  elif _DISTRIBUTED.value:
    jax.distributed.initialize()


def compilation_cache_dir(environ=os.environ) -> str | None:
  """Where XLA's persistent compilation cache goes: $JAX_COMPILATION_CACHE_DIR if set,
  none if $BLUEDIFF_COMPILATION_CACHE is 0, else `jax_cc` under the user cache
  (`bluediff.cache`; local or gs://). Kept across runs, it lets `--mode=evaluate` after
  training, a resumed run and a second seed skip recompiling the same programs."""
  if environ.get("JAX_COMPILATION_CACHE_DIR"):
    return environ["JAX_COMPILATION_CACHE_DIR"]
  if environ.get("BLUEDIFF_COMPILATION_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
    return None
  from bluediff.cache import cache_dir
  return cache_dir("jax_cc", environ=environ)


def _use_compilation_cache():
  path = compilation_cache_dir()
  if path:   # JAX reads $JAX_COMPILATION_CACHE_DIR itself; then this sets the same path
    import jax
    jax.config.update("jax_compilation_cache_dir", path)


def main(argv):
  from absl import logging
  logging.set_verbosity(logging.WARNING)   # Orbax logs every save at INFO
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  _init_distributed()
  _use_compilation_cache()
  from bluediff.checkpoint import CheckpointMismatchError
  from bluediff.config import ConfigError
  from bluediff.data.sources import DatasetNotPreparedError
  config, workdir = _CONFIG.value, _WORKDIR.value
  try:
    config.keys()   # config_flags defers a file's load error to first use
  except OSError as e:
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    print(f"error: cannot load --config={flags.FLAGS['config'].config_filename}: {lines[-1]}",
          file=sys.stderr)
    sys.exit(2)
  try:
    if _MODE.value == "train":
      from bluediff.train import train
      train(config, workdir)
    elif _MODE.value == "sample":
      from bluediff.sampling import run_sample
      run_sample(config, workdir, _STEP.value)
    elif _MODE.value == "export":
      from bluediff.export import export
      export(config, workdir, _EXPORT_DIR.value, _STEP.value, use_ema=not _RAW.value)
    else:
      from bluediff.evaluate.run import run_evaluate
      run_evaluate(config, workdir, _SAMPLES.value, _STEP.value)
  except (ConfigError, DatasetNotPreparedError, FileNotFoundError, CheckpointMismatchError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
