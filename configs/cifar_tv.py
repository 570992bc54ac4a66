"""Time-varying white->blue noise diffusion on CIFAR-10 32x32 (methods.md §2).

The paper's recipe on the DDPM CIFAR UNet: L_t = g_t I + (1 - g_t) L_b with the
sigmoid gamma (tau = 1000, ~linear), two heads in the grid-free
parametrisation, antithetic timesteps, greedy in-batch pairing over the global
batch, 250 Euler steps. Blue-noise statistics for 32x32 are built on first use
(seconds) and cached; prebuild with `python -m bluediff.noise.statistics --sizes=32`.

  python -m bluediff.main --config=configs/cifar_tv.py --workdir=runs/cifar_tv
Paper-faithful variant: --config.noise.root=cholesky --config.process.parametrisation=paper
"""
from configs import base, cifar_iadb


def get_config():
  c = base.use_time_varying_blue(cifar_iadb.get_config())
  c.sampling.num_steps = 250
  return c
