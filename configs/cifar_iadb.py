"""IADB with white noise on CIFAR-10 32x32 (the blue-noise paper's IADB baseline).

Needs CIFAR-10 prepared once as ArrayRecord (TensorFlow is needed to build it):
  pip install tensorflow-cpu && tfds build cifar10 --file_format=array_record

  python -m bluediff.main --config=configs/cifar_iadb.py --workdir=runs/cifar_iadb
"""
from configs import base


def get_config():
  c = base.get_config()
  c.data.dataset = "cifar10"
  c.data.image_size = 32
  c.data.random_flip = True
  # DDPM's CIFAR UNet (35.7M parameters).
  c.model.channels = 128
  c.model.channel_mult = (1, 2, 2, 2)
  c.model.num_res_blocks = 2
  c.model.attn_resolutions = (16,)
  c.model.dropout = 0.1
  c.process.name = "iadb"
  # the network sees alpha x 1000 (BUILD_NOTES "Time input study": judged by v2 it wins
  # by > 1 seed std for IADB, the time-varying process and blur diffusion)
  c.process.time_scale = 1000.0
  c.noise.kind = "white"
  c.optim.lr = 1e-4
  c.optim.warmup_steps = 1000
  c.optim.ema_decay = 0.9999
  c.training.batch_size = 128
  c.training.num_steps = 400_000
  c.training.checkpoint_every = 5000
  c.training.sample_every = 10_000
  c.sampling.method = "euler"
  c.sampling.num_steps = 128
  c.sampling.batch_size = 256
  c.eval.metrics = ("fid", "kid", "precision_recall", "inception_score", "spectra")
  c.eval.num_samples = 10_000
  return c
