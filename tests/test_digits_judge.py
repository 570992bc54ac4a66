"""The digits metric: accuracy, Frechet closed forms, and the negative controls."""
import numpy as np
import pytest
from scipy import ndimage

from bluediff.evaluate import digits_judge as dj
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


@pytest.fixture(scope="module")
def judge():
  return dj.get_judge(16)


def test_judge_accuracy_and_feature_width(judge, digits16):
  params, acc = judge
  assert acc >= 0.97
  logits, feats = dj.classify(params, digits16[2][:10])
  assert logits.shape == (10, 10) and feats.shape[1] >= 64


def test_real_digits_pass(digits16):
  x_tr = digits16[0]
  report = dj.evaluate_digits(x_tr[-400:], 16, seed=1)
  assert report.passes, report.summary()


def test_negative_controls_fail(digits16):
  x_tr, y_tr = digits16[0], digits16[1]
  rng = np.random.default_rng(0)
  idx = rng.permutation(len(x_tr))[:600]
  blurred = ndimage.gaussian_filter(x_tr[idx], sigma=(0, 1.5, 1.5, 0))
  r_blur = dj.evaluate_digits(blurred, 16)
  assert not r_blur.passes and r_blur.frechet_ratio > 3, r_blur.summary()
  two = x_tr[np.isin(y_tr, [3, 7])]
  r_two = dj.evaluate_digits(two, 16)
  assert not r_two.passes and max(r_two.class_shares) > 0.15, r_two.summary()
  noise = np.clip(rng.normal(size=(600, 16, 16, 1)), -1, 1).astype(np.float32)
  r_noise = dj.evaluate_digits(noise, 16)
  assert not r_noise.passes and r_noise.frechet_ratio > 10, r_noise.summary()


def test_wrong_shape_is_rejected():
  with pytest.raises(ValueError, match=r"\[N, 16, 16, 1\]"):
    dj.evaluate_digits(np.zeros((4, 8, 8, 1), np.float32), 16)
