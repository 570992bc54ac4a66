"""Gaussian blue-noise statistics, built once per size and generator setting, cached.

From void-and-cluster rank masks (mapped to Gaussian marginals through the
normal quantile of their ranks, then to zero mean and unit variance):
  spectrum [S, S]    mean power E|FFT2(m)|^2 / d. Masks are toroidal, so this
                     IS the shift-averaged covariance (a circulant matrix is
                     diagonalised by the FFT): every mask counts S^2 times.
  cholesky [d, d]    lower factor of that circulant covariance (sizes <= 64).
Both are regularised the same way (jitter delta added to every eigenvalue,
then rescaled to unit per-pixel variance), so the FFT and Cholesky samplers
share one covariance.

Cache: <cache>/blue_noise/<key>/{spectrum.npy, cholesky.npy, manifest.json};
the manifest holds each file's sha256 and is checked on load; a damaged entry
is rebuilt with a warning. Prebuild:
    python -m bluediff.noise.statistics --sizes=8,16,32,64
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import time

import numpy as np
from scipy.special import ndtri

from bluediff import storage
from bluediff.cache import cache_dir
from bluediff.noise.void_and_cluster import void_and_cluster

VERSION = 1
MAX_CHOLESKY = 64     # 64^2 = 4096: a 67 MB float32 factor; beyond that, tiles (or the FFT)


@dataclasses.dataclass(frozen=True)
class BlueNoiseSpec:
  size: int
  sigma: float = 1.5          # void-and-cluster energy filter width (px)
  num_masks: int = 0          # 0: auto, about 2^18 mask pixels in all
  jitter: float = 1e-4        # delta added to every eigenvalue before the Cholesky
  seed: int = 0

  @property
  def masks(self) -> int:
    return self.num_masks or int(np.clip(2 ** 18 // self.size ** 2, 4, 4096))

  @property
  def key(self) -> str:
    return (f"v{VERSION}-{self.size}px-sigma{self.sigma:g}-m{self.masks}-j{self.jitter:g}"
            f"-seed{self.seed}")


@dataclasses.dataclass
class BlueNoiseStats:
  spec: BlueNoiseSpec
  spectrum: np.ndarray              # [S, S] float64, mean 1
  cholesky: np.ndarray | None       # [S^2, S^2] float32, or None above MAX_CHOLESKY
  digest: str                       # sha256 of the spectrum file: identifies the law


def gaussianize(masks: np.ndarray) -> np.ndarray:
  """Rank masks [N, S, S] -> Gaussian-marginal fields with zero mean, unit variance."""
  d = masks.shape[1] * masks.shape[2]
  z = ndtri((masks.astype(np.float64) + 0.5) / d)
  z -= z.mean(axis=(1, 2), keepdims=True)
  return z / z.std(axis=(1, 2), keepdims=True)


def mean_power_spectrum(fields: np.ndarray) -> np.ndarray:
  """E |FFT2(m)|^2 / d over fields [N, S, S]: the spectrum of the shift-averaged covariance."""
  d = fields.shape[1] * fields.shape[2]
  return (np.abs(np.fft.fft2(fields)) ** 2).mean(0) / d


def regularize(spectrum: np.ndarray, jitter: float) -> np.ndarray:
  """Adds delta to every eigenvalue (DC is exactly 0 for rank masks) and rescales to mean 1."""
  s = spectrum + jitter
  return s / s.mean()


def circulant_covariance(spectrum: np.ndarray) -> np.ndarray:
  """The [d, d] (raster order) covariance of the stationary field with this spectrum."""
  h, w = spectrum.shape
  c = np.real(np.fft.ifft2(spectrum))             # autocovariance c(dy, dx); c(0) = mean S
  y, x = np.divmod(np.arange(h * w), w)
  return c[(y[:, None] - y[None, :]) % h, (x[:, None] - x[None, :]) % w]


def build(spec: BlueNoiseSpec, progress: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
  """(regularised spectrum, Cholesky factor or None) for one spec."""
  masks = void_and_cluster(spec.masks, spec.size, spec.sigma, spec.seed, progress=progress)
  spectrum = regularize(mean_power_spectrum(gaussianize(masks)), spec.jitter)
  chol = None
  if spec.size <= MAX_CHOLESKY:
    chol = np.linalg.cholesky(circulant_covariance(spectrum)).astype(np.float32)
  return spectrum, chol


def _entry_dir(spec: BlueNoiseSpec) -> str:
  return cache_dir("blue_noise", spec.key)


def _npy_bytes(a: np.ndarray) -> bytes:
  buf = io.BytesIO()
  np.save(buf, a)
  return buf.getvalue()


def _load(path: str, spec: BlueNoiseSpec) -> BlueNoiseStats:
  manifest = storage.read_json(storage.join(path, "manifest.json"))
  blobs = {}
  for name, digest in manifest["sha256"].items():
    blobs[name] = storage.read_bytes(storage.join(path, name))
    if hashlib.sha256(blobs[name]).hexdigest() != digest:
      raise ValueError(f"{name} does not match its manifest hash")
  spectrum = np.load(io.BytesIO(blobs["spectrum.npy"]), allow_pickle=False)
  chol = (np.load(io.BytesIO(blobs["cholesky.npy"]), allow_pickle=False)
          if "cholesky.npy" in blobs else None)
  return BlueNoiseStats(spec, spectrum, chol, manifest["sha256"]["spectrum.npy"])


def _save(path: str, spec: BlueNoiseSpec, spectrum, chol, seconds: float) -> None:
  """The arrays first, the manifest (their hashes) last: an entry without a matching
  manifest is rebuilt, never trusted, so a killed write is harmless (also on gs://)."""
  blobs = {"spectrum.npy": _npy_bytes(spectrum)}
  if chol is not None:
    blobs["cholesky.npy"] = _npy_bytes(chol)
  manifest = {"spec": dataclasses.asdict(spec), "masks": spec.masks, "build_seconds": seconds,
              "sha256": {n: hashlib.sha256(b).hexdigest() for n, b in blobs.items()}}
  storage.remove(storage.join(path, "manifest.json"))
  for name, data in blobs.items():
    storage.write_bytes(storage.join(path, name), data)
  storage.write_json(storage.join(path, "manifest.json"), manifest)


def get_stats(spec: BlueNoiseSpec, progress: bool = True) -> BlueNoiseStats:
  """Cached statistics for `spec`, built (with a progress bar) on first use."""
  path = _entry_dir(spec)
  if storage.exists(storage.join(path, "manifest.json")):
    try:
      return _load(path, spec)
    except Exception as e:   # a damaged entry is rebuilt, never trusted
      print(f"warning: blue-noise statistics in {path} are damaged ({e}); rebuilding them")
  print(f"building blue-noise statistics {spec.key} (once; cached in {path})")
  t0 = time.perf_counter()
  spectrum, chol = build(spec, progress)
  _save(path, spec, spectrum, chol, time.perf_counter() - t0)
  return _load(path, spec)


def main(argv=None):
  ap = argparse.ArgumentParser(description="Prebuild the blue-noise statistics cache.")
  ap.add_argument("--sizes", default="8,16,32,64")
  ap.add_argument("--sigma", type=float, default=1.5)
  ap.add_argument("--num_masks", type=int, default=0)
  ap.add_argument("--jitter", type=float, default=1e-4)
  ap.add_argument("--seed", type=int, default=0)
  args = ap.parse_args(argv)
  for size in map(int, args.sizes.split(",")):
    t0 = time.perf_counter()
    stats = get_stats(BlueNoiseSpec(size, args.sigma, args.num_masks, args.jitter, args.seed))
    print(f"{stats.spec.key}: {time.perf_counter() - t0:.1f} s, digest {stats.digest[:12]}, "
          f"cholesky {'yes' if stats.cholesky is not None else 'no (FFT only)'}")


if __name__ == "__main__":
  main()
