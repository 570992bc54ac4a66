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


# ------------------------------------------------------------------ a real GCS API on 127.0.0.1

def gcs_emulator_env(endpoint: str, config_dir: str) -> dict:
  """What points every storage library at a local emulator and keeps each from probing
  Google's metadata server or reading the user's credentials (README, "Object storage")."""
  return {
      "STORAGE_EMULATOR_HOST": endpoint,               # gcsfs (epath's gs://), google-cloud-storage
      "FSSPEC_GCS_TOKEN": "anon",                      # gcsfs: no credential lookup at all
      "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",    # gcsfs: no gRPC bucket-type probe
      "TENSORSTORE_GCS_HTTP_URL": endpoint,            # TensorStore (Orbax's arrays)
      "GCE_METADATA_ROOT": "127.0.0.1:9",              # TensorStore: a closed port, refused at once
      "GCE_METADATA_HOST": "127.0.0.1:9",              # google-auth, the same
      "NO_GCE_CHECK": "true",                          # google-auth / gcsfs: skip the GCE probe
      "CLOUDSDK_CONFIG": config_dir,                   # no gcloud credentials are found
  }                                                    # (and GOOGLE_APPLICATION_CREDENTIALS unset)


class GCS:
  """A running emulator: `path()` gives a fresh gs:// prefix, `env` its variables."""

  def __init__(self, bucket: str, env: dict):
    self.bucket, self.env, self._n = bucket, env, 0

  def subprocess_env(self, base: dict) -> dict:
    env = {**base, **self.env}
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    return env

  def path(self, name: str = "run") -> str:
    self._n += 1
    return f"gs://{self.bucket}/{name}-{os.getpid()}-{self._n}"


@pytest.fixture(scope="session")
def gcs(tmp_path_factory):
  """gcp-storage-emulator (the `test` extra, with the generation semantics of
  tests/gcs_emulator.py) on a free port of 127.0.0.1, in memory, with one bucket; this
  process and its subprocesses talk to it through the real clients (gcsfs, TensorStore,
  Orbax) - nothing is mocked. Stopped at the end of the session."""
  import socket
  import subprocess
  import time
  import urllib.request
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  bucket = "bluediff-test"
  proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "gcs_emulator.py"), str(port), bucket],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  endpoint = f"http://127.0.0.1:{port}"
  deadline = time.time() + 60
  while True:
    try:
      urllib.request.urlopen(f"{endpoint}/storage/v1/b/{bucket}", timeout=2).read()
      break
    except OSError:
      if time.time() > deadline or proc.poll() is not None:
        proc.kill()
        raise RuntimeError("the GCS emulator did not start")
      time.sleep(0.2)
  env = gcs_emulator_env(endpoint, str(tmp_path_factory.mktemp("no_gcloud")))
  old = {k: os.environ.get(k) for k in [*env, "GOOGLE_APPLICATION_CREDENTIALS"]}
  os.environ.update(env)
  os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
  import fsspec
  fsspec.config.conf.setdefault("gcs", {})["token"] = "anon"   # fsspec read its env at import
  try:
    yield GCS(bucket, env)
  finally:
    for k, v in old.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
    proc.kill()
    proc.wait()
