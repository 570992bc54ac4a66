"""Blue noise only on digits 16x16: IADB with Gaussian blue noise (CPU, no download).

  python -m bluediff.main --config=configs/digits_blue.py --workdir=runs/digits_blue
"""
from configs import digits


def get_config():
  c = digits.get_shared_config()
  c.noise.kind = "blue"
  c.noise.root = "fft"
  return c
