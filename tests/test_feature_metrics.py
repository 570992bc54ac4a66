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
  mean, std = fm.kid(rng.normal(size=(300, 4)), rng.normal(0.5, 1, size=(300, 4)),
                     num_subsets=20, subset_size=200)
  assert mean > 3 * std > 0


def test_kid_spread_is_the_std_over_subsets_not_its_standard_error():
  """An independent oracle: the same subsets (rng.choice of a, then of b, per subset),
  MMD^2 from masked kernel means, and their std (ddof 0, as torch-fidelity)."""
  rng = np.random.default_rng(5)
  a, b = rng.normal(size=(120, 64)), rng.normal(0.3, 1, size=(150, 64))
  mean, std = fm.kid(a, b, num_subsets=25, subset_size=50, seed=7)
  draw = np.random.default_rng(7)
  off = ~np.eye(50, dtype=bool)
  vals = []
  for _ in range(25):
    x, y = a[draw.choice(120, 50, replace=False)], b[draw.choice(150, 50, replace=False)]
    kxx, kyy = (np.einsum("id,jd->ij", x, x) / 64 + 1) ** 3, (np.einsum("id,jd->ij", y, y) / 64 + 1) ** 3
    kxy = (np.einsum("id,jd->ij", x, y) / 64 + 1) ** 3
    vals.append(kxx[off].mean() + kyy[off].mean() - 2 * kxy.mean())
  assert mean == pytest.approx(np.mean(vals), rel=1e-9)
  assert std == pytest.approx(np.std(vals), rel=1e-9)
  assert std > 3 * np.std(vals, ddof=1) / np.sqrt(25)   # not the old standard error


def test_precision_recall_on_known_supports():
  rng = np.random.default_rng(2)
  real = rng.normal(size=(500, 2))
  assert fm.precision_recall(real, real.copy()) == (1.0, 1.0)
  far = rng.normal(size=(500, 2)) + 50.0
  assert fm.precision_recall(real, far) == (0.0, 0.0)
  # Fakes collapsed onto one half of the real support: precise, half the recall
  # (the reals are subsampled to the fakes' ~250, so a few fakes fall between balls).
  half = real[real[:, 0] > 0]
  p, r = fm.precision_recall(real, half)
  assert p > 0.95 and 0.4 < r < 0.65


def test_precision_recall_subsamples_the_larger_set():
  """Points on a line in 64-d, the fakes 0.03 off it: a k-NN ball of 100 points on the
  line is ~0.07 wide, of 2000 points ~0.004. Against 2000 reals the fakes would fall
  outside the reals' thin balls (precision ~0); at equal sizes they are inside."""
  rng = np.random.default_rng(6)

  def line(n, off):   # [n, 64]: N(0, 1) along axis 0, `off` along axis 1, zeros elsewhere
    return np.pad(np.stack([rng.normal(size=n), np.full(n, off)], 1), ((0, 0), (0, 62)))
  real, fake = line(100, 0.0), line(100, 0.03)
  p_equal, r_equal = fm.precision_recall(real, fake)
  assert p_equal > 0.6 and r_equal > 0.6
  p, r = fm.precision_recall(line(2000, 0.0), fake)        # larger real set
  assert abs(p - p_equal) < 0.25 and abs(r - r_equal) < 0.25
  p, r = fm.precision_recall(real, line(2000, 0.03))       # larger fake set
  assert abs(p - p_equal) < 0.25 and abs(r - r_equal) < 0.25
  big = line(2000, 0.0)
  assert fm.precision_recall(big, fake, seed=3) == fm.precision_recall(big, fake, seed=3)


def test_inception_score_closed_forms():
  n = 1000
  confident_uniform = np.full((n, 10), -1e4)
  confident_uniform[np.arange(n), np.arange(n) % 10] = 0.0
  assert fm.inception_score(confident_uniform)[0] == pytest.approx(10.0, rel=1e-6)
  assert fm.inception_score(np.zeros((n, 10)))[0] == pytest.approx(1.0, rel=1e-9)
