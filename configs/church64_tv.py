"""Time-varying white->blue noise diffusion on LSUN-Church 64 (the paper's settings).

Sigmoid gamma with tau = 1000 (~linear). Paper FID at 250 steps: DDIM 16.46,
IADB 13.12, time-varying 10.16.

  tfds build lsun/church_outdoor --file_format=array_record    # once
  python -m bluediff.main --config=configs/church64_tv.py --workdir=runs/church64_tv
"""
from configs import celeba64_tv


def get_config():
  c = celeba64_tv.get_config()
  c.data.dataset = "lsun_church"
  c.data.eval_split = "validation"
  c.process.gamma = "sigmoid"
  c.process.gamma_start, c.process.gamma_end, c.process.gamma_tau = 0.0, 3.0, 1000.0
  return c
