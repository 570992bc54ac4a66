"""Noise samplers: pure functions `(key, shape) -> array`, usable on their own.

`build_noise(noise_config)` returns the sampler a config names; processes call
it with the GLOBAL batch shape inside jit, so the values do not depend on how
the batch is sharded (JAX's partitionable threefry).
"""
from bluediff.noise.white import white_noise

NOISES = {"white": white_noise}


def build_noise(noise_config):
  if noise_config.kind not in NOISES:
    raise ValueError(f"config.noise.kind={noise_config.kind!r} is unknown; "
                     f"choose one of {sorted(NOISES)}")
  return NOISES[noise_config.kind]
