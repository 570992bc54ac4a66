"""Radially averaged power spectra: the methods' claims are about frequencies."""
from __future__ import annotations

import numpy as np

from bluediff import storage


def radial_power_spectrum(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean power per integer radial frequency.

  images: [B, H, W, C] (any range; each image/channel's mean is removed).
  Returns (radius [R] in cycles per image, power [R]), power normalised so that
  white noise of variance v has power v at every radius (|FFT|^2 / (H W)).
  """
  x = np.asarray(images, np.float64)
  x = x - x.mean(axis=(1, 2), keepdims=True)
  _, h, w, _ = x.shape
  power = (np.abs(np.fft.fft2(x, axes=(1, 2))) ** 2 / (h * w)).mean(axis=(0, 3))
  fy, fx = np.fft.fftfreq(h) * h, np.fft.fftfreq(w) * w
  r = np.rint(np.hypot(*np.meshgrid(fy, fx, indexing="ij"))).astype(int)
  counts = np.bincount(r.ravel())
  sums = np.bincount(r.ravel(), power.ravel())
  keep = (counts > 0) & (np.arange(len(counts)) > 0)   # DC is zero after centring
  return np.arange(len(counts))[keep], sums[keep] / counts[keep]


def spectral_log_error(samples: np.ndarray, reference: np.ndarray) -> float:
  """Mean |log10| ratio of two image sets' radial power spectra (uint8 [N, H, W, C] or
  floats in [-1, 1]; the scale cancels only when both are given the same way)."""
  to_float = lambda x: (np.asarray(x, np.float64) / 127.5 - 1.0   # noqa: E731
                        if np.issubdtype(np.asarray(x).dtype, np.integer) else np.asarray(x))
  _, p_samples = radial_power_spectrum(to_float(samples))
  _, p_data = radial_power_spectrum(to_float(reference))
  return float(np.mean(np.abs(np.log10(p_samples / p_data))))


def plot_spectra(named_images: dict, path: str, title: str = "radially averaged power spectrum") -> str:
  """Log-log plot of the spectra of several image sets ({label: [B, H, W, C]})."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
  for label, images in named_images.items():
    r, p = radial_power_spectrum(images)
    ax.loglog(r, p, marker=".", label=label)
  ax.set_xlabel("frequency (cycles / image)")
  ax.set_ylabel("power")
  ax.set_title(title)
  ax.grid(True, which="both", alpha=0.3)
  ax.legend()
  fig.tight_layout()
  storage.save_figure(fig, path)
  plt.close(fig)
  return path


BANDS = ("low", "mid", "high")


def band_settling(frames: np.ndarray) -> np.ndarray:
  """How far each frequency band of a sampling trajectory still is from the sample.

  frames [K, B, H, W, C]: the starting noise, then iterates ending at the sample.
  Returns d [3, K] for the low / mid / high thirds of the DCT-II frequency radius:
  d_b(k) = ||P_b(x_k - x_K)|| / ||P_b(x_0 - x_K)|| over the batch, 1 at the start
  and 0 at the end. Coarse-to-fine sampling brings the low band down first.
  """
  from scipy.fft import dctn
  _, _, h, w, _ = frames.shape
  coeffs = dctn(np.asarray(frames, np.float64), axes=(2, 3), norm="ortho")
  radius = np.hypot(*np.meshgrid(np.arange(h) / h, np.arange(w) / w, indexing="ij"))
  band = np.minimum((radius / radius.max() * len(BANDS)).astype(int), len(BANDS) - 1)
  rest = coeffs - coeffs[-1]
  d = []
  for b in range(len(BANDS)):
    dist = np.sqrt(np.sum(rest[:, :, band == b] ** 2, axis=(1, 2, 3)))     # [K]
    d.append(dist / dist[0])
  return np.stack(d)


def settle_time(d: np.ndarray, level: float = 0.5) -> float:
  """The fraction of the trajectory (frames evenly spaced, 0 = noise, 1 = sample)
  at which a band's distance d [K] first drops below level (linear interpolation)."""
  t = np.linspace(0.0, 1.0, len(d))
  k = int(np.argmax(d < level))
  if k == 0:
    return 0.0
  return float(t[k - 1] + (t[k] - t[k - 1]) * (d[k - 1] - level) / (d[k - 1] - d[k]))


def plot_band_settling(d: np.ndarray, path: str) -> str:
  """d [3, K] from `band_settling` against the fraction of sampling done."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
  t = np.linspace(0.0, 1.0, d.shape[1])
  for name, curve in zip(BANDS, d):
    ax.plot(t, curve, marker=".", label=f"{name} frequencies")
  ax.axhline(0.5, color="grey", lw=0.8, ls="--")
  ax.set_xlabel("fraction of the sampling steps done")
  ax.set_ylabel("distance to the final sample (band)")
  ax.set_title("coarse-to-fine: when each band settles")
  ax.grid(True, alpha=0.3)
  ax.legend()
  fig.tight_layout()
  storage.save_figure(fig, path)
  plt.close(fig)
  return path
