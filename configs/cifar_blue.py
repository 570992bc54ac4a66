"""Blue noise only (the paper's ablation): IADB with Gaussian blue noise on CIFAR-10.

  python -m bluediff.main --config=configs/cifar_blue.py --workdir=runs/cifar_blue
"""
from configs import cifar_iadb


def get_config():
  c = cifar_iadb.get_config()
  c.noise.kind = "blue"
  c.noise.root = "fft"
  c.sampling.num_steps = 250
  return c
