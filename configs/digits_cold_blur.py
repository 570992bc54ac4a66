"""Cold diffusion deblurring on digits 16x16 (CPU, no download): the paper's MNIST blur.

T = 20 steps of an 11x11 Gaussian with std 7 (reflect padding), a restoration
network trained with L1, Algorithm 2 (TACoS). Evaluate reports degraded /
direct / sampled PSNR, SSIM, RMSE and the digits judge's Frechet distance.

Differs from the reference (deblurring-diffusion-pytorch/mnist_train.py, README
`--blur_routine 'Constant'`) to fit the CPU budget: 16x16 digits (theirs: MNIST at
32 px), the small digits UNet (theirs: ConvNeXt UNet, dim 64, (1, 2, 4, 8)), lr 2e-3
with 100 warm-up steps, 2400 steps, grad_clip 1, EMA 0.999 every step from step 0
(theirs: lr 2e-5, batch 32 x 2, 700k steps, no clipping, EMA 0.995 every 10 steps
from step 2000: cifar_cold_blur). Also: reflect padding, while their `Constant`
routine pads circularly (`get_conv`'s default); the network sees t / T, not t - 1.

  python -m bluediff.main --config=configs/digits_cold_blur.py --workdir=runs/digits_cold_blur
  python -m bluediff.main --config=configs/digits_cold_blur.py --workdir=runs/digits_cold_blur --mode=evaluate
"""
from configs import digits


def get_config():
  c = digits.get_shared_config()
  c.training.num_steps = 2400   # this preset's measured budget (digits.py moved to 3600)
  c.process.name = "cold"
  c.process.time_scale = 1.0        # t / T (BUILD_NOTES "Time input study", cold arm)
  c.process.loss = "l1"
  c.degradation.kind = "blur"
  c.degradation.num_steps = 20
  c.degradation.blur_schedule = "linear"
  c.degradation.blur_std, c.degradation.blur_std_step = 7.0, 0.0
  c.degradation.kernel_size = 11
  c.sampling.method = "alg2"
  c.eval.metrics = ("restoration",)
  c.eval.num_samples = 359            # the whole held-out split
  return c
