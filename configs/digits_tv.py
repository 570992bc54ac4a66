"""Time-varying white->blue noise diffusion on digits 16x16 (CPU, no download).

The digits default's UNet and budget with the blue-noise process: sigmoid
gamma (tau = 1000), two heads (grid-free), antithetic timesteps, greedy pairing.

  python -m bluediff.main --config=configs/digits_tv.py --workdir=runs/digits_tv
Options: --config.noise.root=cholesky, --config.process.blend=vp, --config.process.pairing=exact
"""
from configs import digits


def get_config():
  c = digits.get_config()
  c.process.name = "blue_noise"
  c.process.gamma = "sigmoid"
  c.process.gamma_start, c.process.gamma_end, c.process.gamma_tau = 0.0, 3.0, 1000.0
  c.process.pairing = "greedy"
  c.noise.kind = "blue"
  c.noise.root = "fft"
  return c
