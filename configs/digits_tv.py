"""Time-varying white->blue noise diffusion on digits 16x16 (CPU, no download).

The digits default's UNet and budget with the blue-noise process: sigmoid
gamma (tau = 1000), two heads (grid-free), antithetic timesteps, greedy pairing.

  python -m bluediff.main --config=configs/digits_tv.py --workdir=runs/digits_tv
Options: --config.noise.root=cholesky, --config.process.blend=vp, --config.process.pairing=exact
"""
from configs import base, digits


def get_config():
  c = base.use_time_varying_blue(digits.get_shared_config())
  return c
