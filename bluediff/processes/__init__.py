"""Processes (one per method), chosen by `config.process.name`."""
from bluediff.noise import build_noise
from bluediff.processes.base import Net, Process
from bluediff.processes.blue import BLENDS, PARAMETRISATIONS, BlueNoiseDiffusion
from bluediff.processes.ddpm import DDPM, linear_alpha_bar
from bluediff.processes.iadb import ALPHA_SAMPLINGS, IADB
from bluediff.processes.pairing import PAIRINGS
from bluediff.processes.schedules import gamma_from_config

__all__ = ["BLENDS", "IADB", "PAIRINGS", "PARAMETRISATIONS", "PROCESSES", "BlueNoiseDiffusion", "DDPM",
           "Net", "Process", "build_process"]

PROCESSES = ("iadb", "blue_noise", "ddpm", "cold", "blur_diffusion")


def _choice(value, options, field):
  if value not in options:
    raise ValueError(f"config.process.{field}={value!r} is unknown; choose one of {list(options)}")
  return value


def build_process(config, num_shards: int = 1) -> Process:
  """The process a config names, with its noise operator (built or loaded from the cache).

  num_shards: how many device shards the batch is split over (per-shard pairing).
  """
  p = config.process
  _choice(p.name, PROCESSES, "name")
  if p.name == "cold":
    from bluediff.degradations import build_degradation
    from bluediff.processes.cold import LOSSES, ColdDiffusion
    return ColdDiffusion(build_degradation(config.degradation, config.data.image_size),
                         loss_kind=_choice(p.loss, LOSSES, "loss"), time_scale=p.time_scale,
                         generate=p.generate)
  noise = build_noise(config.noise, config.data.image_size)
  if p.name == "iadb":
    return IADB(noise, time_scale=p.time_scale, sr_factor=p.sr_factor,
                alpha_sampling=_choice(p.alpha_sampling, ALPHA_SAMPLINGS, "alpha_sampling"))
  if p.name == "blur_diffusion":
    from bluediff.processes.blur_diffusion import build_blur_diffusion
    return build_blur_diffusion(config, noise)
  if p.name == "ddpm":
    import jax.numpy as jnp
    abar = jnp.asarray(linear_alpha_bar(p.train_steps, p.beta_start, p.beta_end), jnp.float32)
    return DDPM(noise, gamma_from_config(p), abar, eta=p.ddim_eta,
                time_varying=p.ddpm_time_varying, time_scale=p.time_scale)
  return BlueNoiseDiffusion(
      noise, gamma_from_config(p),
      blend=_choice(p.blend, BLENDS, "blend"),
      parametrisation=_choice(p.parametrisation, PARAMETRISATIONS, "parametrisation"),
      heads=_choice(p.heads, (1, 2), "heads"), train_steps=p.train_steps,
      antithetic=p.antithetic, pairing=_choice(p.pairing, PAIRINGS, "pairing"),
      pairing_groups=num_shards if _choice(p.pairing_scope, ("global", "shard"),
                                           "pairing_scope") == "shard" else 1,
      time_scale=p.time_scale, sr_factor=p.sr_factor, learn_gamma=p.learn_gamma)
