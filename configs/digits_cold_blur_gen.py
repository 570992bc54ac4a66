"""Unconditional generation by cold diffusion from blur, on digits 16x16 (CPU).

Blur to the per-channel mean at T (mean_at_end), a Gaussian mixture (full
covariance) over the training set's channel means, fitted at the first train
and saved as <workdir>/cold_prior.npz, broken-symmetry noise (std 0.002, drawn
afresh for every sample), then Algorithm 2.

Training budget and padding as digits_cold_blur (reflect; lr 2e-3, 2400 steps,
grad_clip 1, EMA 0.999 every step), not the reference's (circular padding, lr
2e-5, 700k steps, no clipping, EMA 0.995 every 10 steps from step 2000:
celeba_cold_blur_gen).

  python -m bluediff.main --config=configs/digits_cold_blur_gen.py --workdir=runs/digits_cold_gen
  python -m bluediff.main --config=configs/digits_cold_blur_gen.py --workdir=runs/digits_cold_gen --mode=evaluate
"""
from configs import digits_cold_blur


def get_config():
  c = digits_cold_blur.get_config()
  c.process.generate = True
  c.process.prior_components = 10
  c.degradation.num_steps = 20
  c.degradation.mean_at_end = True
  c.eval.metrics = ("digits", "spectra")
  c.eval.num_samples = 1000
  return c
