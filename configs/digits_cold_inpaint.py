"""Cold diffusion inpainting on digits 16x16 (CPU): the paper's MNIST Gaussian masks.

x_t = x0 * prod_{i<t} (1 - exp(-r^2 / (2 s_i^2))), s_i = 0.1 (i + 11), i from 0, T = 50,
a random centre per image (one per trajectory).

Training budget as digits_cold_blur (lr 2e-3, 2400 steps, grad_clip 1, EMA 0.999
every step), not the reference's (defading-diffusion-pytorch/mnist_train.py: lr
2e-5, batch 32 x 2, 700k steps, no clipping, EMA 0.995 every 10 steps from step
2000; MNIST at 32 px, ConvNeXt UNet); x_t is not rounded to 8 bits (their
`--discrete`).

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
