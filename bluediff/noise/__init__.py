"""Noise: linear operators on white noise, `n = L eps` (see `operators.py`).

`build_noise(noise_config, image_size)` returns the operator a config names:
  white                      L = I
  blue, root="fft"           the symmetric root of the blue-noise covariance
                             (statistics of the image's own size, any size)
  blue, root="cholesky"      its lower Cholesky factor (paper-faithful; images
                             above 64 px are independent 64x64 tiles)
  red                        power ~ 1/|f|^exponent (DC excluded), FFT root
Processes call the operator inside jit with the GLOBAL batch shape, so the
values do not depend on how the batch is sharded (partitionable threefry).
"""
from bluediff.noise.operators import (CholeskyNoise, NoiseOperator, SpectralNoise, WhiteNoise,
                                      red_spectrum)

NOISES = ("white", "blue", "red")
ROOTS = ("fft", "cholesky")

__all__ = ["NOISES", "ROOTS", "CholeskyNoise", "NoiseOperator", "SpectralNoise", "WhiteNoise",
           "build_noise"]


def blue_spec(noise_config, size: int):
  from bluediff.noise.statistics import BlueNoiseSpec
  n = noise_config
  return BlueNoiseSpec(size, n.mask_sigma, n.num_masks, n.jitter, n.stats_seed)


def build_noise(noise_config, image_size: int) -> NoiseOperator:
  n = noise_config
  if n.kind not in NOISES:
    raise ValueError(f"config.noise.kind={n.kind!r} is unknown; choose one of {list(NOISES)}")
  if n.root not in ROOTS:
    raise ValueError(f"config.noise.root={n.root!r} is unknown; choose one of {list(ROOTS)}")
  if n.kind == "white":
    return WhiteNoise()
  if n.kind == "red":
    return SpectralNoise.from_spectrum(red_spectrum(image_size, image_size, n.red_exponent),
                                       digest=f"red{n.red_exponent:g}")
  from bluediff.noise.statistics import MAX_CHOLESKY, get_stats
  if n.root == "fft":
    stats = get_stats(blue_spec(n, image_size))
    return SpectralNoise.from_spectrum(stats.spectrum, digest=stats.digest)
  tile = min(image_size, MAX_CHOLESKY)
  if image_size % tile:
    raise ValueError(f"Cholesky blue noise tiles {tile}x{tile} fields: data.image_size="
                     f"{image_size} must be <= {MAX_CHOLESKY} or a multiple of it (or use "
                     f"noise.root='fft')")
  stats = get_stats(blue_spec(n, tile))
  return CholeskyNoise(stats.cholesky, tile, stats.digest)
