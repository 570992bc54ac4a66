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
  from bluediff.train import build_experiment
  c = tiny_config()
  c.eval.metrics = ("fid", "kid", "precision_recall", "inception_score", "spectra")
  c.eval.inception_weights = random_weights
  c.eval.reference_samples = 64
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
  assert abs(same["kid"]) < 4 * same["kid_std_err"] + 1e-6   # unbiased: 0 within its error
  assert same["spectral_log_error"] < 1e-6


def test_noise_scores_badly(evaluation):
  same, noise, _ = evaluation
  assert noise["fid"] > 1.0 and noise["kid"] > 10 * noise["kid_std_err"]
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
