"""Shared test setup: 4 fake CPU devices, a persistent compilation cache, and
caches (TFDS data, the digits judge) inside the repo's .cache/ so that test
runs never touch the user's home and reuse work across runs."""
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=4").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TFDS_DATA_DIR", str(CACHE / "tfds"))
os.environ.setdefault("BLUEDIFF_CACHE", str(CACHE / "bluediff"))
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(CACHE / "jax_cc"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs",
                  float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))


@pytest.fixture(scope="session")
def tiny_config():
  """A fresh copy of the tiny config per call site (tests may modify it)."""
  from tests import tiny_config as tc
  return tc.get_config


@pytest.fixture(scope="session")
def digits16():
  """(train images, train labels, test images, test labels) at 16x16 in [-1, 1]."""
  from bluediff.data.sources import load_split
  x_tr, y_tr = load_split("digits", "train", 16)
  x_te, y_te = load_split("digits", "test", 16)
  return x_tr, y_tr, x_te, y_te


@pytest.fixture(scope="session")
def subprocess_env():
  """Environment for real `python -m bluediff.main` runs (shares the caches)."""
  env = dict(os.environ)
  env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
  return env
