"""Cold diffusion super-resolution on CIFAR-10: T = 3 halvings (32 -> 4 px), bicubic
down, nearest up.

Training as cifar_cold_blur (the reference resolution-diffusion-pytorch/cifar10_train.py
has the same UNet, lr, batch 32 x 2, steps and EMA). Remaining differences:
augmentation is a flip only (theirs: resize to 1.12x, random crop, flip); the
network sees t / T, not t - 1.

  python -m bluediff.main --config=configs/cifar_cold_sr.py --workdir=runs/cifar_cold_sr
"""
from configs import cifar_cold_blur


def get_config():
  c = cifar_cold_blur.get_config()
  c.degradation.kind = "sr"
  c.degradation.num_steps = 3
  return c
