"""Cold diffusion super-resolution on CIFAR-10: T = 3 halvings (32 -> 4 px), bicubic
down, nearest up.

  python -m bluediff.main --config=configs/cifar_cold_sr.py --workdir=runs/cifar_cold_sr
"""
from configs import cifar_cold_blur


def get_config():
  c = cifar_cold_blur.get_config()
  c.degradation.kind = "sr"
  c.degradation.num_steps = 3
  return c
