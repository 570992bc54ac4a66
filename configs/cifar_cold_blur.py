"""Cold diffusion deblurring on CIFAR-10 (the paper's setting).

T = 50, 11x11 kernels with std 0.35 + i / 100, reflect padding (exact O(1) here);
the DDPM CIFAR UNet; Adam lr 2e-5, batch 64, EMA 0.995; L1; Algorithm 2.
Paper FID sampled (direct): 80.08 (83.69).

  python -m bluediff.main --config=configs/cifar_cold_blur.py --workdir=runs/cifar_cold_blur
"""
from configs import cifar_iadb


def get_config():
  c = cifar_iadb.get_config()
  c.process.name = "cold"
  c.process.loss = "l1"
  c.degradation.kind = "blur"
  c.degradation.num_steps = 50
  c.degradation.blur_schedule = "linear"
  c.degradation.blur_std, c.degradation.blur_std_step = 0.35, 0.01
  c.degradation.kernel_size = 11
  c.degradation.padding = "reflect"
  c.optim.lr = 2e-5
  c.optim.warmup_steps = 0
  c.optim.ema_decay = 0.995
  c.training.batch_size = 64
  c.training.num_steps = 700_000
  c.sampling.method = "alg2"
  c.eval.metrics = ("restoration", "fid")
  return c
