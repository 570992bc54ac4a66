"""Cold diffusion inpainting on CIFAR-10: Gaussian masks, T = 50, std 0.1, initial 11,
a random centre per image. Paper FID sampled (direct): 8.92 (9.97).

  python -m bluediff.main --config=configs/cifar_cold_inpaint.py --workdir=runs/cifar_cold_inpaint
"""
from configs import cifar_cold_blur


def get_config():
  c = cifar_cold_blur.get_config()
  c.degradation.kind = "inpaint"
  c.degradation.num_steps = 50
  c.degradation.mask_std, c.degradation.mask_initial = 0.1, 11.0
  return c
