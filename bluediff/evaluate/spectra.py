"""Radially averaged power spectra: the methods' claims are about frequencies."""
from __future__ import annotations

import numpy as np


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
  fig.savefig(path)
  plt.close(fig)
  return path
