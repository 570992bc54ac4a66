"""The Frechet distance between Gaussians fitted to two feature sets."""
from __future__ import annotations

import numpy as np


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
  w, v = np.linalg.eigh((a + a.T) / 2)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
  """||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2), in float64.

  The symmetric form keeps the matrix square root real and stable.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
  s1 = _sqrtm_psd(cov1)
  middle = np.linalg.eigvalsh(s1 @ cov2 @ s1)
  tr_sqrt = np.sum(np.sqrt(np.clip(middle, 0, None)))
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * tr_sqrt)


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean [D] and unbiased covariance [D, D] of features [N, D]."""
  f = np.asarray(features, np.float64)
  return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance_of(features_a: np.ndarray, features_b: np.ndarray) -> float:
  return frechet_distance(*feature_stats(features_a), *feature_stats(features_b))
