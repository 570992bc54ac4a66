"""Config loading, overrides and the fail-fast checks."""
import subprocess
import sys
import time

import pytest
from absl import flags
from ml_collections import config_flags

from bluediff.config import ConfigError, validate


def parse(argv):
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, flag_values=fv, sys_argv=["prog"] + argv)
  fv(["prog"] + argv)
  return fv.config


def test_overrides_reach_nested_fields():
  c = parse(["--config=configs/digits.py", "--config.optim.lr=0.5",
             "--config.model.channel_mult=(1,2)", "--config.training.num_steps=7"])
  assert c.optim.lr == 0.5 and tuple(c.model.channel_mult) == (1, 2)
  assert c.training.num_steps == 7


def test_unknown_field_and_wrong_type_are_rejected():
  with pytest.raises(Exception, match="no_such_field"):
    parse(["--config=configs/digits.py", "--config.training.no_such_field=1"])
  with pytest.raises(Exception):
    parse(["--config=configs/digits.py", "--config.training.num_steps=many"])


def test_every_experiment_config_validates():
  import importlib
  import pathlib
  names = [p.stem for p in pathlib.Path("configs").glob("*.py") if p.stem not in ("__init__", "base")]
  assert {"digits", "digits_tv", "digits_blue", "cifar_iadb", "cifar_tv", "cifar_blue",
          "cifar_ddim", "digits_cold_blur", "cifar_cold_blur"} <= set(names)
  for name in names:
    validate(importlib.import_module(f"configs.{name}").get_config(), num_devices=1)


@pytest.mark.parametrize("field,value,match", [
    ("training.batch_size", 6, "does not divide over the 4 devices"),
    ("process.name", "nope", "process.name"),
    ("noise.kind", "pink", "noise.kind"),
    ("noise.root", "svd", "noise.root"),
    ("process.pairing", "hungarian", "process.pairing"),
    ("data.image_size", 15, "image_size"),
    ("model.conv_algorithm", "fft", "model.conv_algorithm"),
])
def test_bad_values_are_rejected(tiny_config, field, value, match):
  c = tiny_config()
  section, name = field.split(".")
  c[section][name] = value
  with pytest.raises(ConfigError, match=match):
    validate(c, num_devices=4)


@pytest.mark.parametrize("override,match", [
    ("--config.training.no_such_field=1", "no_such_field"),
    ("--config.training.num_steps=many", "num_steps"),
    ("--config.training.batch_size=6", "does not divide over the 4 devices"),
    ("--config.data.dataset=cifar10", "tfds build cifar10"),
    ("--config.noise.root=svd", "noise.root"),
    ("--mode=evaluate --samples=BAD", "expected images uint8"),
    ("--mode=evaluate --samples=MISSING", "does not exist"),
    ("--mode=sample", "train first"),
])
def test_cli_fails_before_compiling_with_one_line(override, match, subprocess_env, tmp_path):
  """One line on stderr, exit status != 0, nothing written, well before any compile."""
  import numpy as np
  np.savez(tmp_path / "bad.npz", images=np.zeros((4, 16, 16, 1), np.float32))   # wrong dtype
  override = override.replace("BAD", str(tmp_path / "bad.npz")).replace("MISSING", str(tmp_path / "x.npz"))
  t = time.time()
  empty = tmp_path / "tfds_empty"
  env = dict(subprocess_env, TFDS_DATA_DIR=str(empty)) if "cifar10" in override else subprocess_env
  r = subprocess.run([sys.executable, "-m", "bluediff.main", "--config=tests/tiny_config.py",
                      f"--workdir={tmp_path}", *override.split()],
                     capture_output=True, text=True, env=env, timeout=120)
  assert r.returncode != 0
  lines = [l for l in r.stderr.splitlines() if match in l]
  assert lines, r.stderr[-2000:]
  assert "Traceback" not in r.stderr
  assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "metrics.json").exists()
  assert time.time() - t < 60


def test_load_config_file_is_the_files_config_locked(tmp_path):
  from bluediff.config import load_config_file
  from configs import digits_blur
  loaded = load_config_file("configs/digits_blur.py")
  assert loaded.to_dict() == digits_blur.get_config().to_dict()
  loaded.training.batch_size = 32                     # existing fields can be set
  with pytest.raises(AttributeError):
    loaded.training.new_field = 1                     # new ones cannot be added
  with pytest.raises(FileNotFoundError, match="config file not found"):
    load_config_file(str(tmp_path / "missing.py"))
