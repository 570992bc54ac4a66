"""The embedded default: IADB with white noise on scikit-learn digits (16x16).

Data ships inside scikit-learn, so this trains anywhere with no download:

  python -m bluediff.main --config=configs/digits.py --workdir=runs/digits
  python -m bluediff.main --config=configs/digits.py --workdir=runs/digits --mode=evaluate
"""
from configs import base


def get_shared_config():
  """What every digits preset shares: the data, the 16 px UNet (no patches, 16-32-64
  channels at 16, 8 and 4 px, ~0.7M parameters), the optimiser, 3600 steps, uniform alpha
  and the sampler: the digits default before session 12. The presets (blue, time-varying,
  SR, blur, cold, DDIM) start here, so their published tables stay reproducible."""
  c = base.get_config()
  c.data.dataset = "digits"
  c.data.image_size = 16
  # Narrow at 16x16, wide at 4x4 (XLA:CPU convolutions are slow at few channels;
  # BUILD_NOTES "Why the digits UNet is narrow at 16x16")
  c.model.channels = 16
  c.model.channel_mult = (1, 2, 4)
  c.model.num_res_blocks = 1
  c.model.attn_resolutions = (4,)
  c.model.norm_groups = 8
  c.process.name = "iadb"
  # the network sees alpha x 1000 (BUILD_NOTES "Time input study": judged by v2 it wins
  # by > 1 seed std for IADB, the time-varying process and blur diffusion)
  c.process.time_scale = 1000.0
  c.noise.kind = "white"
  c.optim.lr = 2e-3
  c.optim.warmup_steps = 100
  c.optim.ema_decay = 0.999
  c.training.batch_size = 64
  c.training.num_steps = 3600
  c.training.checkpoint_every = 500
  c.training.log_every = 100
  # Heun 32 (63 network calls) beats Euler 64 and 128 on the same checkpoints (levers table)
  c.sampling.method = "heun"
  c.sampling.num_steps = 32
  c.sampling.batch_size = 500
  c.eval.metrics = ("digits", "spectra")
  return c


def get_config():
  """The embedded default: the shared recipe with IADB's two levers of session 12."""
  c = get_shared_config()
  # 2x2 patches folded into channels: the UNet runs at 8x8 (32 ch) and 4x4 (64 ch,
  # attention), ~1.4x the step rate of the 16 px UNet on 2 CPU cores, so its 4500 steps
  # take ~0.82x the wall time of that UNet's 3600 (~420 s on session 10's machine) and
  # pass every target (BUILD_NOTES "Levers of the digits default", session 12)
  c.model.patch_size = 2
  c.model.channels = 32
  c.model.channel_mult = (1, 2)
  c.training.num_steps = 4500
  # training alpha ~ sigmoid(N(0, 1)), not IADB's U(0, 1): the lever that passes every
  # target on seeds 0 and 1 and both judges (same table)
  c.process.alpha_sampling = "logit_normal"
  return c
