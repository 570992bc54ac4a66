"""2x super-resolution on digits 16x16 with time-varying blue noise (CPU, no download).

The network sees concat(x_t, bilinear-up(bilinear-down(x0))); evaluate scores
PSNR / SSIM / RMSE of the restorations and of the bilinear baseline.

  python -m bluediff.main --config=configs/digits_sr.py --workdir=runs/digits_sr
  python -m bluediff.main --config=configs/digits_sr.py --workdir=runs/digits_sr --mode=evaluate
IADB instead: --config.process.name=iadb --config.noise.kind=white
"""
from configs import digits_tv


def get_config():
  c = digits_tv.get_config()
  c.process.sr_factor = 2
  c.process.pairing = "none"          # the condition is computed after pairing, but SR has no use for it
  c.eval.metrics = ("restoration", "digits")
  return c
