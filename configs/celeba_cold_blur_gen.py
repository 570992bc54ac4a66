"""Unconditional generation by cold diffusion from blur on CelebA 64 (the paper's recipe,
at 64 px: T = 300, 27x27 kernels with std exp(0.01 i), the last step the channel mean,
a 10-component GMM prior with broken-symmetry noise, Algorithm 2).
Paper FID (128 px): blur + GMM 49.45.

  python -m bluediff.main --config=configs/celeba_cold_blur_gen.py --workdir=runs/celeba_cold_gen
"""
from configs import cifar_cold_blur


def get_config():
  c = cifar_cold_blur.get_config()
  c.data.dataset = "celeb_a"
  c.data.image_size = 64
  c.model.channel_mult = (1, 2, 2, 2)
  c.process.generate = True
  c.process.prior_components = 10
  c.degradation.num_steps = 300
  c.degradation.blur_schedule = "exp"
  c.degradation.blur_std, c.degradation.blur_std_step = 1.0, 0.01
  c.degradation.kernel_size = 27
  c.degradation.mean_at_end = True
  c.eval.metrics = ("fid", "kid", "precision_recall", "spectra")
  return c
