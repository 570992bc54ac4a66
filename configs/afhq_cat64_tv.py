"""Time-varying white->blue noise diffusion on AFHQ-Cat 64 (the paper's settings).

Sigmoid gamma with tau = 1000. Paper FID at 250 steps: DDIM 9.82, IADB 9.18,
time-varying 7.95. AFHQ is not in TFDS: running this says so in one line.

  python -m bluediff.main --config=configs/afhq_cat64_tv.py --workdir=runs/afhq_cat64_tv
"""
from configs import church64_tv


def get_config():
  c = church64_tv.get_config()
  c.data.dataset = "afhq_cat"
  c.data.eval_split = "test"
  return c
