"""DDPM training + DDIM sampling on CIFAR-10 32x32 (the blue-noise paper's DDIM baseline).

  python -m bluediff.main --config=configs/cifar_ddim.py --workdir=runs/cifar_ddim
Blue-noise DDIM (supplement eq. 9): --config.process.ddpm_time_varying=True --config.noise.kind=blue
"""
from configs import cifar_iadb


def get_config():
  c = cifar_iadb.get_config()
  c.process.name = "ddpm"
  c.process.train_steps = 1000
  c.process.ddim_eta = 0.0
  c.process.time_scale = 1000.0     # the integer step k, as DDPM/ADM (digits: BUILD_NOTES "Time input study")
  c.sampling.method = "ddim"
  c.sampling.num_steps = 250
  return c
