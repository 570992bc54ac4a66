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
  x, y, d = dj.soft_negative_draws(np.random.default_rng(3), x_tr, y_tr, size=72)
  q = 8
  assert x.shape == (72, 16, 16, 1) and y.shape == (72, 10)
  onehot = np.eye(10)[y_tr[d["idx"]]]
  np.testing.assert_array_equal(y[:6 * q], onehot[:6 * q])          # real digits: one-hot
  for i in range(6 * q):                                            # ... shifted by <= 1 px
    assert any(np.array_equal(x[i], np.roll(x_tr[d["idx"][i]], (a, b), (0, 1)))
               for a in (-1, 0, 1) for b in (-1, 0, 1))
  b, u, n = slice(6 * q, 7 * q), slice(7 * q, 8 * q), slice(8 * q, 9 * q)
  lam = d["lam"][:, None]
  assert np.all(y_tr[d["partner"]] != y_tr[d["idx"][b]])
  assert np.all((d["lam"] >= 0.2) & (d["lam"] <= 0.8))
  np.testing.assert_allclose(y[b], lam * onehot[b] + (1 - lam) * np.eye(10)[y_tr[d["partner"]]],
                             rtol=1e-6)
  for part, strength, ramp in ((u, d["sigma"], dj.BLUR_RAMP), (n, d["std"], dj.NOISE_RAMP)):
    s = np.clip((strength - ramp[0]) / (ramp[1] - ramp[0]), 0, 1)[:, None]   # by hand
    np.testing.assert_allclose(y[part], (1 - s) * onehot[part] + s / 10, rtol=1e-6)
  # blurred images are smoother than their shifted originals could be: less total variation
  tv = lambda im: np.abs(np.diff(im, axis=0)).sum() + np.abs(np.diff(im, axis=1)).sum()
  strong = np.flatnonzero(d["sigma"] > 0.6)
  assert all(tv(x[7 * q + k]) < tv(x_tr[d["idx"][7 * q + k]]) for k in strong)
  np.testing.assert_allclose(dj.ramp([0.0, 0.4, 0.7, 1.0, 2.0], (0.4, 1.0)),
                             [0, 0, 0.5, 1, 1], atol=1e-12)
  x2, y2 = dj.soft_negative_batch(np.random.default_rng(3), x_tr, y_tr, size=72)
  np.testing.assert_array_equal(x2, x)


def test_copy_rate_and_nearest_distances(digits16):
  x_tr = digits16[0]
  rng = np.random.default_rng(4)
  a, b = rng.normal(size=(7, 4, 4, 1)), rng.normal(size=(9, 4, 4, 1))
  want = np.sqrt(((a.reshape(7, 1, -1) - b.reshape(1, 9, -1)) ** 2).sum(-1)).min(1)
  np.testing.assert_allclose(dj.nearest_distances(a, b), want, rtol=1e-9)
  # copies of training digits are all copies; the held-out half about 5 % (the threshold
  # is the 5th percentile of the other half); blank images none
  assert dj.evaluate_digits(x_tr[:300], 16).copy_rate == 1.0
  assert 0.01 <= dj.evaluate_digits(dj.control_sets(16)["held_out_half"], 16).copy_rate <= 0.15
  assert dj.evaluate_digits(np.full((50, 16, 16, 1), -1.0, np.float32), 16).copy_rate == 0.0


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


def test_references_are_scored_once_per_judge(judge, digits16, monkeypatch):
  """A second score reuses the references' features (only the samples go through the
  judge) and gives the same report; a replaced judge gets its own references."""
  x = dj.control_sets(16)["blur"][:64]
  first = dj.evaluate_digits(x, 16)
  scored, real_score = [], dj.Judge.score

  def counting_score(self, images):
    scored.append(len(images))
    return real_score(self, images)

  monkeypatch.setattr(dj.Judge, "score", counting_score)
  assert dj.evaluate_digits(x, 16) == first
  assert scored == [64]
  other = dj.Judge(judge.members, judge.temperature * 2, judge.calibration)
  monkeypatch.setitem(dj._JUDGES, 16, other)
  scored.clear()
  dj.evaluate_digits(x, 16)
  calibration_half = len(dj.held_out_halves(digits16[3])[0])
  assert sorted(scored) == sorted([64, calibration_half, len(digits16[0])])
  assert dj.digits_reference(16).judge is other


def test_kernel_judge_reads_real_digits_and_refuses_blends():
  sets = dj.control_sets(16)
  real = kj.evaluate_kernel(sets["held_out_half"], 16)
  assert real["confident"] >= 0.9 and real["frechet_ratio"] <= 1.2, real
  assert kj.evaluate_kernel(sets["blend"], 16)["confident"] <= real["confident"] - 0.5


def test_wrong_shape_or_range_is_rejected():
  with pytest.raises(ValueError, match=r"\[N >= 2, 16, 16, 1\]"):
    dj.evaluate_digits(np.zeros((4, 8, 8, 1), np.float32), 16)
  with pytest.raises(ValueError, match=r"\[-1, 1\]"):
    dj.evaluate_digits(np.full((4, 16, 16, 1), 255.0, np.float32), 16)
  np.testing.assert_array_equal(dj.as_model_range(np.full((2, 16, 16, 1), 255, np.int64), 16), 1.0)
  with pytest.raises(ValueError, match="multiple of 8"):
    kj.area_means(np.zeros((2, 12, 12, 1)))


def test_more_samples_than_the_training_split_keep_the_floor_size_matched():
  """Samples from the pool's own law score about 1x the floor whatever their number;
  the distance of all 1000 against a floor of 100-sample subsets would read ~0.6x."""
  ratios = []
  for i in range(20):
    rng = np.random.default_rng(i)
    pool, ref, feats = rng.normal(size=(100, 5)), rng.normal(size=(60, 5)), rng.normal(size=(1000, 5))
    dist, floor = dj.size_matched_frechet(feats, ref, pool, np.random.default_rng(0))
    ratios.append(dist / floor)
  assert 0.8 < np.mean(ratios) < 1.1, np.mean(ratios)
