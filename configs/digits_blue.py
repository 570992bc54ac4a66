"""Blue noise only on digits 16x16: IADB with Gaussian blue noise (CPU, no download).

  python -m bluediff.main --config=configs/digits_blue.py --workdir=runs/digits_blue
"""
from configs import digits


def get_config():
  c = digits.use_16px_unet(digits.get_config())
  c.noise.kind = "blue"
  c.noise.root = "fft"
  # IADB's own uniform alpha, as the time-varying preset: the blue study's arms differ in noise only
  c.process.alpha_sampling = "uniform"
  return c
