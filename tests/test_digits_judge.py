"""The digits judges: their formulas against independent oracles, and the shipped
(frozen) judge against its positive and negative controls."""
import numpy as np
import pytest

from bluediff.evaluate import digits_judge as dj
from bluediff.evaluate import digits_kernel_judge as kj
from bluediff.evaluate.frechet import frechet_distance, frechet_distance_of


def test_frechet_closed_forms():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(5, 5))
  cov = a @ a.T + np.eye(5)
  mu = rng.normal(size=5)
  assert abs(frechet_distance(mu, cov, mu, cov)) < 1e-8
  # Diagonal covariances: sum (mu1-mu2)^2 + sum (s1 - s2)^2 with s = std.
  v1, v2 = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
  want = np.sum((mu - 1) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
  assert frechet_distance(mu, np.diag(v1), np.ones(5), np.diag(v2)) == pytest.approx(want, rel=1e-9)
  # Commuting (scaled) covariances: Tr(C + k^2 C - 2k C) = (1-k)^2 Tr C.
  assert frechet_distance(mu, cov, mu, 4 * cov) == pytest.approx(np.trace(cov), rel=1e-8)
  f = rng.normal(size=(400, 3))
  assert abs(frechet_distance_of(f, f)) < 1e-8


# ----------------------------------------------------------------- formulas, by hand


def test_expected_calibration_error_by_hand():
  # 4 predictions in bin (0.9, 1.0] with confidence 0.95 (3 right): |0.75 - 0.95| * 4/6;
  # 2 in bin (0.5, 0.6] with confidence 0.55 (both right): |1 - 0.55| * 2/6.
  probs = np.zeros((6, 10))
  probs[:4, 0], probs[:4, 1] = 0.95, 0.05
  probs[4:, 2], probs[4:, 3] = 0.55, 0.45
  labels = np.array([0, 0, 0, 1, 2, 2])
  want = 4 / 6 * 0.20 + 2 / 6 * 0.45
  assert dj.expected_calibration_error(probs, labels) == pytest.approx(want, abs=1e-12)
  # a perfectly calibrated set: confidence 1 and always right
  assert dj.expected_calibration_error(np.eye(10)[[1, 2, 3]], np.array([1, 2, 3])) == 0.0


def test_fit_temperature_recovers_the_true_one():
  rng = np.random.default_rng(1)
  logits = rng.normal(scale=3, size=(1, 2000, 10))
  for t0 in (0.5, 2.0):
    z = logits[0] / t0
    targets = np.exp(z - z.max(-1, keepdims=True))
    targets /= targets.sum(-1, keepdims=True)
    assert dj.fit_temperature(logits, targets) == pytest.approx(t0, rel=2e-3)


def test_ensemble_probs_is_the_mean_of_tempered_softmaxes():
  rng = np.random.default_rng(2)
  logits = rng.normal(size=(3, 5, 10))
  want = np.mean([np.exp(l / 1.7) / np.exp(l / 1.7).sum(-1, keepdims=True) for l in logits], 0)
  np.testing.assert_allclose(dj.ensemble_probs(logits, 1.7), want, rtol=1e-12)


def test_soft_negative_batch_targets(digits16):
  x_tr, y_tr = digits16[0], digits16[1]
  x, y = dj.soft_negative_batch(np.random.default_rng(3), x_tr, y_tr, size=72)
  q = 8
  assert x.shape == (72, 16, 16, 1) and y.shape == (72, 10)
  np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-6)
  assert np.all(y[:6 * q].max(-1) == 1.0)                  # real digits: one-hot
  blends = y[6 * q:7 * q]                                  # two classes, weights in [0.2, 0.8]
  assert np.all((blends > 0).sum(-1) == 2)
  assert np.all((blends.max(-1) >= 0.5 - 1e-6) & (blends.max(-1) <= 0.8 + 1e-6))
  # blur and noise: the label's one-hot weight is 1 - ramp(strength), the rest uniform
  assert np.all(y[7 * q:].min(-1) >= 0) and np.all(y[7 * q:].max(-1) >= 0.1 - 1e-6)
  np.testing.assert_allclose(dj.ramp([0.0, 0.4, 0.7, 1.0, 2.0], (0.4, 1.0)),
                             [0, 0, 0.5, 1, 1], atol=1e-12)


def test_copy_rate_and_nearest_distances(digits16):
  x_tr = digits16[0]
  rng = np.random.default_rng(4)
  a, b = rng.normal(size=(7, 4, 4, 1)), rng.normal(size=(9, 4, 4, 1))
  want = np.sqrt(((a.reshape(7, 1, -1) - b.reshape(1, 9, -1)) ** 2).sum(-1)).min(1)
  np.testing.assert_allclose(dj.nearest_distances(a, b), want, rtol=1e-9)
  # copies of training digits are all copies; the held-out half, ~5 % by construction
  assert dj.evaluate_digits(x_tr[:300], 16).copy_rate == 1.0


def test_area_means_by_hand():
  x = np.arange(2 * 16 * 16, dtype=np.float64).reshape(2, 16, 16, 1)
  want = np.array([[x[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2, 0].mean() for i in range(8)
                    for j in range(8)] for n in range(2)])
  np.testing.assert_allclose(kj.area_means(x), want)


def test_verdict_line_names_each_criterion():
  r = dj.DigitsReport(num_samples=1000, confident_share=0.93, class_shares=[0.1] * 10,
                      frechet=1.4, frechet_floor=1.0, copy_rate=0.06, judge_version=2,
                      judge_ece=0.02, judge_accuracy=0.98)
  line = r.verdict()
  assert "confident 93.0% >= 90% ok" in line and "frechet 1.40x <= 1.5x ok" in line
  assert "copies 6.0% <= 5% FAIL" in line and line.endswith("-> FAIL") and not r.passes
  r.copy_rate = 0.01
  assert r.passes and r.verdict().endswith("-> PASS")
  r.class_shares = [0.14] + [0.86 / 9] * 9
  assert not r.passes and "classes" in r.verdict() and "FAIL" in r.verdict()


# ----------------------------------------------------- the shipped judge and controls


@pytest.fixture(scope="module")
def judge():
  return dj.get_judge(16)


def test_shipped_judge_is_version_2_and_calibrated(judge):
  assert judge.calibration["accuracy"] >= 0.97
  assert judge.calibration["ece"] <= 0.05
  logits, feats = dj._member_outputs(judge.members, np.zeros((2, 16, 16, 1), np.float32))
  assert logits.shape == (dj.ENSEMBLE, 2, 10) and feats.shape == (2, dj.FEATURE_DIM)


def test_committed_controls_match_a_fresh_build():
  with np.load(dj.controls_path(16)) as f:
    committed = {k: f[k] for k in f.files}
  fresh = dj.build_control_sets(16)
  for name, images in fresh.items():
    np.testing.assert_array_equal(committed[name], images, err_msg=name)
  assert committed["model_10pct"].shape == (500, 16, 16, 1)


def test_positive_control_held_out_half():
  sets = dj.control_sets(16)
  r = dj.evaluate_digits(sets["held_out_half"], 16)
  assert r.confident_share >= 0.95, r.summary()
  assert r.frechet_ratio <= 1.2, r.summary()
  assert 0.07 <= min(r.class_shares) and max(r.class_shares) <= 0.13, r.summary()


def test_negative_controls_are_not_confident():
  sets = dj.control_sets(16)
  real = dj.evaluate_digits(sets["held_out_half"], 16).confident_share
  for name in ("blur", "blend", "noise", "model_10pct"):
    r = dj.evaluate_digits(sets[name], 16)
    assert r.confident_share <= real - 0.2, (name, r.summary())
    assert not r.passes, (name, r.summary())


def test_printed_calibration_matches_a_fresh_measurement(judge):
  figures = dj.calibration_figures(judge, 16)
  assert figures["confident"] == pytest.approx(judge.calibration["confident"], abs=1e-9)
  for name, share in figures["controls"].items():
    assert share == pytest.approx(judge.calibration["controls"][name], abs=1e-9), name


def test_negative_controls_move_the_features():
  sets = dj.control_sets(16)
  for name in ("blur", "blend", "noise"):
    r = dj.evaluate_digits(sets[name], 16)
    assert r.frechet_ratio > 3, (name, r.summary())


def test_kernel_judge_reads_real_digits_and_refuses_blends():
  sets = dj.control_sets(16)
  real = kj.evaluate_kernel(sets["held_out_half"], 16)
  assert real["confident"] >= 0.9 and real["frechet_ratio"] <= 1.2, real
  assert kj.evaluate_kernel(sets["blend"], 16)["confident"] <= real["confident"] - 0.5


def test_wrong_shape_is_rejected():
  with pytest.raises(ValueError, match=r"\[N, 16, 16, 1\]"):
    dj.evaluate_digits(np.zeros((4, 8, 8, 1), np.float32), 16)


def test_judge_file_of_another_version_is_refused(tmp_path, judge):
  path = str(tmp_path / "j.npz")
  dj.save_judge(judge, path)
  with np.load(path) as f:
    arrays = {k: f[k] for k in f.files}
  arrays["__version__"] = np.int64(1)
  np.savez(path, **arrays)
  with pytest.raises(ValueError, match="version 1"):
    dj.load_judge(path)


@pytest.mark.slow   # trains the three members anew (~5 min on 2 cores)
def test_the_recipe_rebuilds_a_judge_that_meets_the_controls(tmp_path):
  rebuilt = dj.build_judge(16, verbose=False)
  c = rebuilt.calibration
  assert c["confident"] >= 0.95 and c["ece"] <= 0.05 and c["accuracy"] >= 0.97, c
  for name, share in c["controls"].items():
    assert share <= c["confident"] - 0.2, (name, c)
  shipped = dj.get_judge(16).calibration
  assert abs(c["confident"] - shipped["confident"]) <= 0.02, (c, shipped)
