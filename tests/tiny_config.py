"""The one tiny config every loop / checkpoint / multi-device test shares.

16x16 digits, a 2-level UNet with 8 base channels: compiles in seconds on CPU.
"""
from configs import digits


def get_config():
  # the shared recipe (16 px UNet, uniform alpha): the tests switch process.name freely
  c = digits.get_shared_config()
  c.model.channels = 8
  c.model.channel_mult = (1, 2)
  c.model.num_res_blocks = 1
  c.model.attn_resolutions = (8,)
  c.model.norm_groups = 4
  c.optim.lr = 1e-3
  c.optim.warmup_steps = 2
  c.optim.ema_decay = 0.9
  c.training.batch_size = 8
  c.training.num_steps = 6
  c.training.log_every = 2
  c.training.checkpoint_every = 3
  c.training.grid_size = 8
  c.data.num_threads = 1
  c.data.prefetch = 2
  c.sampling.method = "euler"     # one network call per step: the fewest compilations
  c.sampling.num_steps = 4
  c.sampling.batch_size = 8
  c.sampling.num_samples = 16
  c.eval.num_samples = 16
  return c
