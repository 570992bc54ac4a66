"""Config loading, overrides and the fail-fast checks."""
import importlib
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
          "cifar_ddim", "digits_ddim", "digits_cold_blur", "cifar_cold_blur"} <= set(names)
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
    ("optim.ema_every", 0, "ema_every"),
    ("optim.ema_start", -1, "ema_start"),
    ("optim.schedule", "linear", "optim.schedule"),
    ("model.patch_size", 3, "patch_size"),
    ("optim.final_lr_factor", 1.5, "final_lr_factor"),
    ("process.alpha_sampling", "beta", "alpha_sampling"),
])
def test_bad_values_are_rejected(tiny_config, field, value, match):
  c = tiny_config()
  section, name = field.split(".")
  c[section][name] = value
  with pytest.raises(ConfigError, match=match):
    validate(c, num_devices=4)


def test_alpha_sampling_is_refused_outside_iadb(tiny_config):
  c = tiny_config()
  c.process.name, c.process.alpha_sampling = "ddpm", "logit_normal"
  with pytest.raises(ConfigError, match="alpha_sampling='logit_normal' is for iadb"):
    validate(c, num_devices=1)


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


@pytest.mark.parametrize("overrides,match", [
    ({"gamma": "cosine", "gamma_start": 0.0, "gamma_end": 3.0}, "not monotone"),
    ({"gamma": "cosine", "gamma_start": 0.5, "gamma_end": 1.5}, "not monotone"),
    ({"gamma": "sigmoid", "gamma_start": 0.0, "gamma_end": 3.0, "gamma_tau": 1e9}, "flat in float32"),
    ({"gamma": "sigmoid", "gamma_start": 1.0, "gamma_end": 1.0}, "gamma_start < gamma_end"),
    ({"gamma": "sigmoid", "gamma_start": 3.0, "gamma_end": 0.0}, "gamma_start < gamma_end"),
    ({"gamma": "cosine", "gamma_start": 0.0, "gamma_end": 1.0, "gamma_tau": 0.3,
      "__heun": True}, "infinite slope"),
    ({"time_scale": 0.0}, "time_scale"),
    ({"gamma": "sigmoid", "gamma_tau": 0.0}, "must be positive"),
    ({"gamma": "constant", "gamma_value": 1.5}, "gamma_value"),
    ({"gamma": "cosine", "gamma_start": 0.0, "gamma_end": 1.0, "learn_gamma": True}, "learn_gamma"),
])
def test_invalid_gamma_ranges_are_rejected_with_one_line(tiny_config, overrides, match):
  c = tiny_config()
  c.process.name = "blue_noise"
  for k, v in overrides.items():
    if k == "__heun":
      c.sampling.method = "heun"
    else:
      c.process[k] = v
  with pytest.raises(ConfigError, match=match) as e:
    validate(c, num_devices=4)
  assert "\n" not in str(e.value)


@pytest.mark.parametrize("st,en,tau", [(0.0, 1.0, 1.0), (0.0, 1.0, 0.7), (0.0, 1.0, 2.5),
                                       (0.0, 1.0, 0.5), (-1.0, 0.0, 1.0), (0.2, 0.9, 0.3)])
def test_every_allowed_cosine_gamma_is_finite_monotone_and_pinned(tiny_config, st, en, tau):
  """Allowed (st, en, tau) pass validate and give g(0) = 0, g(1) = 1, finite, monotone; the
  values are the reference's 1 - clamp((c(en) - c(v)) / (c(en) - c(st))) with
  c(v) = cos(v pi / 2)^(2 tau), computed here in float64."""
  import jax.numpy as jnp
  import numpy as np
  from bluediff.processes.schedules import Gamma
  c = tiny_config()
  c.process.name = "blue_noise"
  c.process.gamma, c.process.gamma_start, c.process.gamma_end, c.process.gamma_tau = "cosine", st, en, tau
  validate(c, num_devices=4)
  u = np.linspace(0, 1, 201)
  g = np.asarray(Gamma("cosine", st, en, tau)(jnp.asarray(u, jnp.float32)))
  assert np.all(np.isfinite(g)) and g[0] == 0.0 and g[-1] == 1.0
  assert np.all(np.diff(g) >= 0)
  slope = np.asarray(Gamma("cosine", st, en, tau).derivative(jnp.asarray([0.0, 0.5, 1.0])))
  assert np.all(np.isfinite(slope)) and np.all(slope >= -1e-6)   # Heun reads g'(1)
  cf = lambda v: np.abs(np.cos(v * np.pi / 2)) ** (2 * tau)   # noqa: E731
  ref = 1 - np.clip((cf(en) - cf(st + (en - st) * u)) / (cf(en) - cf(st)), 1e-9, 1)
  np.testing.assert_allclose(g, ref, atol=2e-5)


def test_sigmoid_gamma_matches_the_reference_formula():
  """1 - clamp((s(en) - s(st + (en - st) u)) / (s(en) - s(st))), s(v) = sigmoid(v / tau):
  the official get_scheduler_gamma, in float64."""
  import jax.numpy as jnp
  import numpy as np
  from bluediff.processes.schedules import Gamma
  u = np.linspace(0, 1, 101)
  for st, en, tau in ((0.0, 3.0, 1000.0), (0.0, 3.0, 0.2), (-3.0, 3.0, 0.9), (-0.5, 2.0, 0.05),
                      (-3.0, -2.0, 0.15), (-30.0, -20.0, 1.0)):   # the tails: g ~ 1e-6 there
    s = lambda v: 1 / (1 + np.exp(-v / tau))   # noqa: E731
    ref = 1 - np.clip((s(en) - s(st + (en - st) * u)) / (s(en) - s(st)), 1e-9, 1)
    got = np.asarray(Gamma("sigmoid", st, en, tau)(jnp.asarray(u, jnp.float32)))
    np.testing.assert_allclose(got, ref, atol=2e-6)
    small = (ref > 1e-30) & (ref < 1e-3)             # relative precision where g is small
    np.testing.assert_allclose(got[small], ref[small], rtol=1e-3)


@pytest.mark.parametrize("name", ["celeba64_tv", "church64_tv", "afhq_cat64_tv"])
def test_64px_time_varying_presets_train_without_pairing(name):
  """The reference's 64 px training scripts pass no --remap (methods.md §5)."""
  import importlib
  c = importlib.import_module(f"configs.{name}").get_config()
  assert c.process.name == "blue_noise" and c.process.pairing == "none"
  assert c.optim.grad_clip == 1.0 and c.optim.ema_decay == 0.0 and c.sampling.num_steps == 250


@pytest.mark.parametrize("name", ["digits_ddim", "cifar_ddim"])
def test_ddpm_presets_feed_the_integer_step(name):
  """The DDPM presets' network sees k in 1..T (as DDPM/ADM), not k / T: measured better on
  digits (BUILD_NOTES "Time input study")."""
  import importlib

  import jax
  import jax.numpy as jnp
  import numpy as np
  from bluediff.processes import build_process
  c = importlib.import_module(f"configs.{name}").get_config()
  c.data.image_size = 8
  p = build_process(c)
  seen = []

  def net(x, t):
    seen.append(np.asarray(t))
    return jnp.zeros_like(x)
  p.loss(net, jnp.zeros((16, 8, 8, 1)), jax.random.key(0))
  t = seen[0]
  assert np.abs(t - np.round(t)).max() < 1e-3 and t.min() >= 1 and t.max() <= 1000 and t.max() > 1


@pytest.mark.parametrize("name,scale", [
    ("digits", 1000.0), ("digits_tv", 1000.0), ("digits_blue", 1000.0), ("digits_blur", 1000.0),
    ("digits_ddim", 1000.0), ("cifar_iadb", 1000.0), ("cifar_tv", 1000.0), ("cifar_blur", 1000.0),
    ("celeba64_tv", 1000.0), ("church64_tv", 1000.0), ("church64_blur", 1000.0),
    ("digits_cold_blur", 1.0), ("cifar_cold_blur", 1.0)])
def test_presets_time_input_follows_the_study(name, scale):
  """BUILD_NOTES "Time input study": x 1000 where it won by more than a seed std."""
  assert importlib.import_module(f"configs.{name}").get_config().process.time_scale == scale
