"""Cold diffusion de-snowing on CIFAR-10: procedural ImageNet-C-style snow, T = 200.

Training as cifar_cold_blur (the reference snowification/train.py has the same lr,
batch 32 x 2, steps and EMA). Remaining differences: the DDPM UNet (theirs by
default: the ConvNeXt UNet, dim 64, mults (1, 2, 4, 8)); the snow is procedural
(no ImageMagick motion blur); augmentation is a flip; the network sees t / T.

  python -m bluediff.main --config=configs/cifar_cold_snow.py --workdir=runs/cifar_cold_snow
"""
from configs import cifar_cold_blur


def get_config():
  c = cifar_cold_blur.get_config()
  c.degradation.kind = "snow"
  c.degradation.num_steps = 200
  return c
