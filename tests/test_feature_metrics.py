import numpy as np
import pytest

from bluediff.evaluate import feature_metrics as fm


def test_mmd_unbiased_matches_a_brute_force_u_statistic():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(7, 3)), rng.normal(1, 1, size=(5, 3))
  k = lambda a, b: (a @ b / 3 + 1) ** 3
  xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / 42
  yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
  xy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / 35
  assert fm.mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_kid_is_unbiased_on_identical_distributions_and_positive_on_different_ones():
  rng = np.random.default_rng(1)
  draws = [(rng.normal(size=(20, 4)), rng.normal(size=(20, 4))) for _ in range(400)]
  vals = [fm.mmd2_unbiased(x, y) for x, y in draws]
  se = np.std(vals) / np.sqrt(len(vals))
  assert abs(np.mean(vals)) < 4 * se
  # The biased V-statistic (diagonal kept) is clearly positive on the same draws,
  # so the check above tells the two estimators apart.
  k = fm.polynomial_kernel
  biased = [k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean() for x, y in draws]
  assert np.mean(biased) > 10 * se
  mean, err = fm.kid(rng.normal(size=(300, 4)), rng.normal(0.5, 1, size=(300, 4)),
                     num_subsets=20, subset_size=200)
  assert mean > 10 * err > 0


def test_precision_recall_on_known_supports():
  rng = np.random.default_rng(2)
  real = rng.normal(size=(500, 2))
  assert fm.precision_recall(real, real.copy()) == (1.0, 1.0)
  far = rng.normal(size=(500, 2)) + 50.0
  assert fm.precision_recall(real, far) == (0.0, 0.0)
  # Fakes collapsed onto one half of the real support: precise, half the recall.
  half = real[real[:, 0] > 0]
  p, r = fm.precision_recall(real, half)
  assert p == 1.0 and 0.4 < r < 0.65


def test_inception_score_closed_forms():
  n = 1000
  confident_uniform = np.full((n, 10), -1e4)
  confident_uniform[np.arange(n), np.arange(n) % 10] = 0.0
  assert fm.inception_score(confident_uniform)[0] == pytest.approx(10.0, rel=1e-6)
  assert fm.inception_score(np.zeros((n, 10)))[0] == pytest.approx(1.0, rel=1e-9)
