"""Blur diffusion on CIFAR-10 32x32: the DDPM CIFAR UNet with the paper's quartic blur
schedule (s0 = 0.4 px, s_max = 0.15 px, f(N) = 0.14), N = 1000, exact ancestral sampling.
DDPM twin: --config.process.blur_schedule=none
Hoogeboom & Salimans' blurring diffusion (their CIFAR-10 FID 3.17): --config.process.blur_schedule=hoogeboom
(s_max = process.hoogeboom_s_max = 20 px, isotropic noise, their clipped cosine alphas; betas and s0 unused)

  python -m bluediff.main --config=configs/cifar_blur.py --workdir=runs/cifar_blur
"""
from configs import cifar_iadb


def get_config():
  c = cifar_iadb.get_config()
  c.process.name = "blur_diffusion"
  c.process.train_steps = 1000
  c.process.basis = "dct"
  c.process.blur_schedule = "quartic"
  c.process.blur_s0, c.process.blur_s_max = 0.4, 0.15
  c.sampling.method = "ancestral"
  c.sampling.num_steps = 1000
  return c
