"""The embedded default: IADB with white noise on scikit-learn digits (16x16).

Data ships inside scikit-learn, so this trains anywhere with no download:

  python -m bluediff.main --config=configs/digits.py --workdir=runs/digits
  python -m bluediff.main --config=configs/digits.py --workdir=runs/digits --mode=evaluate
"""
from configs import base


def get_config():
  c = base.get_config()
  c.data.dataset = "digits"
  c.data.image_size = 16
  # Narrow at 16x16, wide at 4x4: ~0.7M parameters at ~340 images/s on 2 CPU
  # cores (XLA:CPU convolutions are slow at few channels; BUILD_NOTES.md).
  c.model.channels = 16
  c.model.channel_mult = (1, 2, 4)
  c.model.num_res_blocks = 1
  c.model.attn_resolutions = (4,)
  c.model.norm_groups = 8
  c.process.name = "iadb"
  # the network sees alpha x 1000 (BUILD_NOTES "Time input study": judged by v2 it wins
  # by > 1 seed std for IADB, the time-varying process and blur diffusion)
  c.process.time_scale = 1000.0
  # training alpha ~ sigmoid(N(0, 1)), not IADB's U(0, 1): the only lever that passes every
  # target on seeds 0 and 1 and both judges (BUILD_NOTES "Levers of the digits default")
  c.process.alpha_sampling = "logit_normal"
  c.noise.kind = "white"
  c.optim.lr = 2e-3
  c.optim.warmup_steps = 100
  c.optim.ema_decay = 0.999
  c.training.batch_size = 64
  # 3600 steps fit the 8-minute budget on 2 cores (BUILD_NOTES "Levers of the digits default")
  c.training.num_steps = 3600
  c.training.checkpoint_every = 500
  c.training.log_every = 100
  # Heun 32 (63 network calls) beats Euler 64 and 128 on the same checkpoints (levers table)
  c.sampling.method = "heun"
  c.sampling.num_steps = 32
  c.sampling.batch_size = 500
  c.eval.metrics = ("digits", "spectra")
  return c
