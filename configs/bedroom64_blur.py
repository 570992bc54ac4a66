"""Blur diffusion on LSUN-Bedroom 64 with the paper's settings (see church64_blur.py:
the reference's sampled sigma-0.4 px blur, process.blur_d=discrete; the continuous Neumann
blur is --config.process.blur_d=continuous).
Paper FID: DDPM 9.24 -> blur 7.86. DDPM twin: --config.process.blur_schedule=none

  tfds build lsun/bedroom --file_format=array_record    # once
  python -m bluediff.main --config=configs/bedroom64_blur.py --workdir=runs/bedroom64_blur
"""
from configs import church64_blur


def get_config():
  c = church64_blur.get_config()
  c.data.dataset = "lsun_bedroom"
  return c
