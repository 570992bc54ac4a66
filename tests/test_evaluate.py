"""--mode=evaluate's Inception metrics through the real pipeline (mesh, cache, report),
with random He-initialised Inception weights written as the converted file would be."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
  from safetensors.numpy import save_file
  from bluediff.evaluate.inception_weights import param_shapes
  rng = np.random.default_rng(0)
  flat = {}
  for k, shape in param_shapes().items():
    if k.endswith("kernel"):
      fan_in = int(np.prod(shape[:-1]))
      flat[k] = rng.normal(0, np.sqrt(2.0 / fan_in), shape)
    elif k.endswith(("bn_scale", "bn_var")):
      flat[k] = np.ones(shape)
    else:
      flat[k] = np.zeros(shape)
  path = str(tmp_path_factory.mktemp("w") / "fid.safetensors")
  save_file({k: v.astype(np.float32) for k, v in flat.items()}, path)
  return path


@pytest.fixture(scope="module")
def evaluation(random_weights, tiny_config, tmp_path_factory):
  """Evaluates 64 held-out digits against the same 64 as the reference, and noise."""
  from bluediff.data.sources import load_split, to_uint8
  from bluediff.evaluate import run
  from bluediff.experiment import build_experiment
  c = tiny_config()
  c.eval.metrics = ("fid", "kid", "precision_recall", "inception_score", "spectra")
  c.eval.inception_weights = random_weights
  c.eval.reference_samples = 64
  c.eval.reference_split = "test"    # generation's default is the training split
  c.eval.kid_subsets, c.eval.kid_subset_size, c.eval.inception_batch = 10, 32, 32
  exp = build_experiment(c)
  x, _ = load_split("digits", "test", 16)
  ref = to_uint8(x[np.random.default_rng(0).permutation(len(x))[:64]])   # the cached subset
  wd = str(tmp_path_factory.mktemp("eval"))
  same = run.evaluate_images(c, exp, ref, {"source": "reference"}, wd, "same")
  noise = np.random.default_rng(1).integers(0, 256, ref.shape, dtype=np.uint8)
  other = run.evaluate_images(c, exp, noise, {"source": "noise"}, wd, "noise")
  return same["metrics"], other["metrics"], wd


def test_a_set_against_itself_scores_perfectly(evaluation):
  same, _, _ = evaluation
  assert abs(same["fid"]) < 1e-3 * max(1.0, same["fid"] + 1)
  assert same["precision"] == 1.0 and same["recall"] == 1.0
  assert abs(same["kid"]) < 2 * same["kid_std"] + 1e-6   # unbiased: 0 within its spread
  assert same["spectral_log_error"] < 1e-6


def test_noise_scores_badly(evaluation):
  same, noise, _ = evaluation
  assert noise["fid"] > 1.0 and noise["kid"] > 3 * noise["kid_std"]
  assert noise["precision"] < 0.5
  assert noise["spectral_log_error"] > 0.3
  assert 1.0 <= noise["is_mean"] <= 1008


def test_reports_and_reference_cache(evaluation):
  _, _, wd = evaluation
  report = open(os.path.join(wd, "eval", "noise", "report.md")).read()
  assert "| fid |" in report and "spectra.png" in report
  lines = open(os.path.join(wd, "evaluations.jsonl")).read().splitlines()
  assert [json.loads(line)["tag"] for line in lines] == ["same", "noise"]
  cached = [f for f in os.listdir(os.path.join(os.environ["BLUEDIFF_CACHE"], "fid_reference"))
            if f.startswith("digits-test-16px-n64-")]
  assert cached


def test_sharded_extraction_equals_single_device(random_weights):
  """Features batched over 4 devices (with a padded last batch) equal 1-device features."""
  import jax
  from jax.sharding import Mesh
  from bluediff.evaluate.features import InceptionFeatures
  from bluediff.evaluate.inception_weights import load_params
  params, digest = load_params(random_weights)
  import hashlib                     # the digest keys the reference-feature cache
  assert digest == hashlib.sha256(open(random_weights, "rb").read()).hexdigest()
  images = np.random.default_rng(2).integers(0, 256, (6, 16, 16, 1), dtype=np.uint8)
  four = InceptionFeatures(params, digest, Mesh(np.array(jax.devices()[:4]), ("data",)), 4)
  one = InceptionFeatures(params, digest, Mesh(np.array(jax.devices()[:1]), ("data",)), 8)
  f4, l4 = four(images)
  f1, l1 = one(images)
  assert f4.shape == (6, 2048) and l4.shape == (6, 1008)
  np.testing.assert_allclose(f4, f1, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(l4, l1, rtol=1e-4, atol=1e-5)


def test_missing_weights_is_one_line_before_compiling(subprocess_env, tmp_path):
  r = subprocess.run([sys.executable, "-m", "bluediff.main", "--config=tests/tiny_config.py",
                      f"--workdir={tmp_path}", "--mode=evaluate", "--config.eval.metrics=('fid',)",
                      f"--config.eval.inception_weights={tmp_path}/none.safetensors"],
                     capture_output=True, text=True, env=subprocess_env, timeout=120)
  assert r.returncode == 2 and "Traceback" not in r.stderr
  assert "none.safetensors" in r.stderr and "--from_pytorch" in r.stderr
  assert not (tmp_path / "metrics.json").exists()


def test_reference_split_is_the_training_split_for_generation():
  """Generation's FID reference is the training split (LSUN-Church's validation split
  holds 300 images); a restoration compares with the held-out images it restores."""
  from bluediff.evaluate.run import reference_split
  from bluediff.processes import build_process
  from configs import church64_tv, digits, digits_cold_blur
  church = church64_tv.get_config()
  assert church.data.eval_split == "validation"
  assert reference_split(church, conditional=False) == "train"
  gen, cold = digits.get_config(), digits_cold_blur.get_config()
  assert reference_split(gen, build_process(gen).conditional) == "train"
  assert reference_split(cold, build_process(cold).conditional) == "test"
  church.eval.reference_split = cold.eval.reference_split = "validation"   # explicit wins
  assert reference_split(church, False) == reference_split(cold, True) == "validation"


class _PixelFeatures:
  """A stand-in for the Inception: 64-d features, a fixed projection of the pixels."""
  weights_hash = "0" * 64

  def __init__(self, pixels: int):
    self.w = np.random.default_rng(0).normal(size=(pixels, 64)).astype(np.float32)

  def __call__(self, images, desc=""):
    x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return x @ self.w, np.zeros((len(images), 1008), np.float32)


def test_reference_split_and_count_are_recorded_and_a_small_one_warned(
    tiny_config, tmp_path, monkeypatch, capsys):
  """digits' training split holds 1438 images (10000 asked): metrics.json, the report
  and the cache key say so, and one printed line warns."""
  from bluediff.evaluate import run
  from bluediff.experiment import build_experiment
  monkeypatch.setenv("BLUEDIFF_CACHE", str(tmp_path / "cache"))
  fake = _PixelFeatures(16 * 16)
  monkeypatch.setattr(run.EvalContext, "inception", property(lambda self: fake))
  c = tiny_config()
  c.eval.metrics = ("fid", "kid", "precision_recall")
  c.eval.kid_subsets = 10
  exp = build_experiment(c)
  images = np.random.default_rng(1).integers(0, 256, (32, 16, 16, 1), dtype=np.uint8)
  capsys.readouterr()
  run.evaluate_images(c, exp, images, run.protocol(c, False), str(tmp_path), "gen")
  warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning")]
  assert len(warnings) == 1 and "digits/train" in warnings[0] and "1438" in warnings[0]
  stored = json.load(open(tmp_path / "eval" / "gen" / "metrics.json"))
  assert (stored["protocol"]["reference_split"], stored["protocol"]["reference_count"]) == ("train", 1438)
  report = (tmp_path / "eval" / "gen" / "report.md").read_text()
  assert "| reference_split | train |" in report and "| reference_count | 1438 |" in report
  assert "kid_std" in stored["metrics"] and "kid_std_err" not in stored["metrics"]
  # keyed by split and by the count used, so a stale smaller reference is never reused
  assert os.listdir(tmp_path / "cache" / "fid_reference") == [
      "digits-train-16px-n1438-0000000000000000.npz"]
  run.warn_small_reference(10_000, "a/b")
  run.warn_small_reference(9_999, "a/b")
  assert capsys.readouterr().out.count("warning") == 1


@pytest.mark.parametrize("kind", ["txt", "png", "npy"])
def test_samples_that_are_not_an_npz_fail_in_one_line(kind, tiny_config, tmp_path):
  from PIL import Image

  from bluediff.config import ConfigError
  from bluediff.evaluate import run
  path = tmp_path / f"samples.{kind}"
  if kind == "txt":
    path.write_text("not an archive\n")
  elif kind == "png":
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(path)
  else:
    np.save(path, np.zeros((2, 16, 16, 1), np.uint8))
  with pytest.raises(ConfigError) as e:
    run.run_evaluate(tiny_config(), str(tmp_path), samples_path=str(path))
  msg = str(e.value)
  assert "\n" not in msg and "pickle" not in msg
  assert msg.startswith(f"--samples={path} is not an .npz file")


def test_band_settling_and_settle_time_on_synthetic_trajectories():
  """Frames that approach the sample uniformly settle together at t = 0.5; frames whose
  low frequencies arrive twice as fast settle there at t = 0.25."""
  from scipy.fft import dctn, idctn

  from bluediff.evaluate.spectra import band_settling, settle_time
  rng = np.random.default_rng(0)
  final, start = rng.normal(size=(4, 16, 16, 1)), rng.normal(size=(4, 16, 16, 1))
  t = np.linspace(0, 1, 17)[:, None, None, None, None]
  uniform = final + (1 - t) * (start - final)
  assert [round(settle_time(d), 6) for d in band_settling(uniform)] == [0.5, 0.5, 0.5]
  radius = np.hypot(*np.meshgrid(np.arange(16) / 16, np.arange(16) / 16, indexing="ij"))
  low = (radius < radius.max() / 3)[None, None, :, :, None]
  gap = dctn(start - final, axes=(1, 2), norm="ortho")[None]
  remaining = np.where(low, np.clip(1 - 2 * t, 0, 1), 1 - t) * gap
  frames = final + idctn(remaining, axes=(2, 3), norm="ortho")
  settle = [settle_time(d) for d in band_settling(frames)]
  np.testing.assert_allclose(settle, [0.25, 0.5, 0.5], atol=1e-6)
