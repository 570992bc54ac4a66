"""The second digits judge, of another family: kernel ridge regression on 8x8 area means.

No network: the images are averaged to 8x8 (the digits' native resolution), an
RBF kernel regresses soft targets (real digits one-hot, blends of two classes
the blend of their labels: the real and blended parts of
`digits_judge.soft_negative_batch`; its blur and noise vanish at 8x8), and
a temperature fitted on the calibration half turns its outputs into
probabilities. Its Frechet distance is computed on the 64 area means themselves
(pixel statistics, no learned features), against the calibration half, over the
same equal-sized training-subset floor. It builds in seconds, deterministically,
so it is not shipped: a run that meets the targets on both judges is not
exploiting one classifier's blind spots.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from bluediff.data.sources import load_split
from bluediff.evaluate import digits_judge as dj

KERNEL_VERSION = 1
RIDGE = 0.1
NEGATIVE_BATCHES = 40          # 40 batches of 48 shifted real digits and 8 blends


def area_means(images: np.ndarray) -> np.ndarray:
  """[N, S, S, 1] -> [N, 64]: means over (S/8)x(S/8) blocks."""
  n, s = images.shape[0], images.shape[1]
  if s % 8:
    raise ValueError(f"the kernel judge needs a multiple of 8 px; got {s}")
  k = s // 8
  return images[..., 0].reshape(n, 8, k, 8, k).mean((2, 4)).reshape(n, 64)


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  return np.maximum((a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None] - 2 * a @ b.T, 0.0)


def _blends_only(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The real and blended parts of a soft-negative batch: blur and noise of the CNN
  judge's strengths all but vanish in 8x8 area means, so their soft targets would
  only teach this judge to doubt real digits."""
  keep = slice(0, dj.batch_parts(len(x))["blend"].stop)      # real, then blends
  return x[keep], y[keep]


@dataclasses.dataclass
class KernelJudge:
  centres: np.ndarray      # [M, 64]
  weights: np.ndarray      # [M, 10]
  gamma: float
  temperature: float

  def outputs(self, images: np.ndarray) -> np.ndarray:
    f = area_means(images).astype(np.float64)
    return 0.1 + np.concatenate([np.exp(-self.gamma * _sq_dists(f[i:i + 1000], self.centres))
                                 @ self.weights for i in range(0, len(f), 1000)])

  def probs(self, images: np.ndarray) -> np.ndarray:
    return dj.ensemble_probs(self.outputs(images)[None], self.temperature)


def build_kernel_judge(image_size: int, data_dir: str = "") -> KernelJudge:
  x_tr, y_tr = load_split("digits", "train", image_size, data_dir)
  x_te, y_te = load_split("digits", "test", image_size, data_dir)
  rng = np.random.default_rng(0)
  neg = [_blends_only(*dj.soft_negative_batch(rng, x_tr, y_tr)) for _ in range(NEGATIVE_BATCHES)]
  x = np.concatenate([x_tr, *(b[0] for b in neg)])
  y = np.concatenate([np.eye(10)[y_tr], *(b[1] for b in neg)])
  f = area_means(x).astype(np.float64)
  d2 = _sq_dists(f, f)
  gamma = 1.0 / np.median(d2[d2 > 0])
  k = np.exp(-gamma * d2)
  # targets centred on 1/10 so that far from the data the output is uniform
  w = np.linalg.solve(k + RIDGE * np.eye(len(f)), y - 0.1)
  judge = KernelJudge(f, w, float(gamma), 1.0)
  cal, _ = dj.held_out_halves(y_te)
  rng = np.random.default_rng(1234)
  cx, cy = zip(*[_blends_only(*dj.soft_negative_batch(rng, x_te[cal], y_te[cal])) for _ in range(16)])
  cx = np.concatenate([x_te[cal], *cx])
  cy = np.concatenate([np.eye(10)[y_te[cal]], *cy])
  judge.temperature = dj.fit_temperature(judge.outputs(cx)[None], cy)
  return judge


_CACHE: dict[int, KernelJudge] = {}


def get_kernel_judge(image_size: int, data_dir: str = "") -> KernelJudge:
  if image_size not in _CACHE:
    _CACHE[image_size] = build_kernel_judge(image_size, data_dir)
  return _CACHE[image_size]


def evaluate_kernel(samples: np.ndarray, image_size: int, data_dir: str = "",
                    seed: int = 0) -> dict:
  """confident share, class shares and the area-mean Frechet ratio of samples."""
  samples = dj.as_model_range(samples, image_size)
  judge = get_kernel_judge(image_size, data_dir)
  x_tr, _ = load_split("digits", "train", image_size, data_dir)
  x_te, y_te = load_split("digits", "test", image_size, data_dir)
  cal, _ = dj.held_out_halves(y_te)
  probs = judge.probs(samples)
  pred = probs.argmax(-1)
  f_cal, f_tr = area_means(x_te[cal]), area_means(x_tr)
  dist, floor = dj.size_matched_frechet(area_means(samples), f_cal, f_tr,
                                        np.random.default_rng(seed))
  return {"confident": float(np.mean(probs.max(-1) >= dj.CONFIDENCE)),
          "class_shares": [float(np.mean(pred == c)) for c in range(10)],
          "frechet_ratio": dist / floor}
