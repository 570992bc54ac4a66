"""Cold diffusion inpainting on digits 16x16 (CPU): the paper's MNIST Gaussian masks.

x_t = x0 * prod_{i<=t} (1 - exp(-r^2 / (2 s_i^2))), s_i = 0.1 (i + 11), T = 50,
a random centre per image (one per trajectory).

  python -m bluediff.main --config=configs/digits_cold_inpaint.py --workdir=runs/digits_cold_inpaint
"""
from configs import digits_cold_blur


def get_config():
  c = digits_cold_blur.get_config()
  c.degradation.kind = "inpaint"
  c.degradation.num_steps = 50
  c.degradation.mask_std, c.degradation.mask_initial = 0.1, 11.0
  c.degradation.random_centre = True
  return c
