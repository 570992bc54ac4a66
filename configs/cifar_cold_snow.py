"""Cold diffusion de-snowing on CIFAR-10: procedural ImageNet-C-style snow, T = 200.

  python -m bluediff.main --config=configs/cifar_cold_snow.py --workdir=runs/cifar_cold_snow
"""
from configs import cifar_cold_blur


def get_config():
  c = cifar_cold_blur.get_config()
  c.degradation.kind = "snow"
  c.degradation.num_steps = 200
  return c
