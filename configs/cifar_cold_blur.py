"""Cold diffusion deblurring on CIFAR-10 (the paper's setting).

T = 50, 11x11 kernels with std 0.35 + i / 100, reflect padding (exact O(1) here);
the DDPM CIFAR UNet; L1; Algorithm 2. Training as the reference
(deblurring-diffusion-pytorch/cifar10_train.py and its Trainer): Adam lr 2e-5,
batch 64 (theirs: 32 x 2 accumulated), 700k steps, no warm-up, no gradient
clipping, EMA 0.995 updated every 10 steps and reset to the weights before
step 2000 (`step_ema`). The cold CIFAR/CelebA configs inherit all of this.
Remaining differences: data augmentation is a horizontal flip only (theirs:
resize to 1.12x, random crop, flip); the network sees t / T, not the
integer t - 1.
Paper FID sampled (direct): 80.08 (83.69).

  python -m bluediff.main --config=configs/cifar_cold_blur.py --workdir=runs/cifar_cold_blur
"""
from configs import cifar_iadb


def get_config():
  c = cifar_iadb.get_config()
  c.process.time_scale = 1.0        # t / T (BUILD_NOTES "Time input study", cold arm)
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
  c.optim.ema_every, c.optim.ema_start = 10, 2000
  c.optim.grad_clip = 0.0
  c.training.batch_size = 64
  c.training.num_steps = 700_000
  c.sampling.method = "alg2"
  c.eval.metrics = ("restoration", "fid")
  return c
