"""Cold diffusion inpainting on CIFAR-10: Gaussian masks, T = 50, std 0.1, initial 11,
a random centre per image. Paper FID sampled (direct): 8.92 (9.97).

Training as cifar_cold_blur (the reference defading-diffusion-pytorch/cifar10_train.py
has the same lr, batch, steps and EMA). Remaining differences: their `--discrete`
run rounds x_t to 8 bits (here x_t stays float); the mask centre is uniform in
[0, 32)^2 (theirs: integer, -1..31); augmentation is a flip only (theirs: random
crop with 4 px padding, flip); the network sees t / T, not t - 1.

  python -m bluediff.main --config=configs/cifar_cold_inpaint.py --workdir=runs/cifar_cold_inpaint
"""
from configs import cifar_cold_blur


def get_config():
  c = cifar_cold_blur.get_config()
  c.degradation.kind = "inpaint"
  c.degradation.num_steps = 50
  c.degradation.mask_std, c.degradation.mask_initial = 0.1, 11.0
  return c
