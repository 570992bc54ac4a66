"""Config checks that must fail fast: before any data is read or anything compiles.

Unknown fields and wrong types are already rejected by ml_collections (the
config is locked when loaded); this adds the checks that need context.
"""
from __future__ import annotations

import importlib.util
import os

import ml_collections

from bluediff.data.sources import dataset_spec
from bluediff.degradations import DEGRADATIONS
from bluediff.models import MODELS
from bluediff.models.conv import ALGORITHMS as CONV_ALGORITHMS
from bluediff.noise import NOISES, ROOTS
from bluediff.processes import BLENDS, PAIRINGS, PARAMETRISATIONS, PROCESSES
from bluediff.processes.schedules import GAMMAS, gamma_problem


class ConfigError(ValueError):
  """A config that cannot run, with one line saying why."""


def load_config_file(path: str) -> ml_collections.ConfigDict:
  """`get_config()` of a Python config file, as `--config=path[:arg]` loads it.

  For scripts and notebooks that want a config without absl flags. The result is
  locked like the CLI's (existing fields can be set, new ones cannot be added).
  """
  path, _, arg = path.partition(":")
  if not os.path.isfile(path):   # local: a Python config module is imported from disk
    raise FileNotFoundError(f"config file not found: {path}")
  name = "bluediff_config_" + os.path.splitext(os.path.basename(path))[0]   # local: as above
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(arg) if arg else module.get_config()
  config.lock()
  return config


def validate(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """Raises ConfigError for a config that cannot run on `num_devices` devices."""
  def need(ok, msg):
    if not ok:
      raise ConfigError(msg)

  need(config.process.name in PROCESSES,
       f"config.process.name={config.process.name!r} is unknown; choose one of {sorted(PROCESSES)}")
  need(config.noise.kind in NOISES,
       f"config.noise.kind={config.noise.kind!r} is unknown; choose one of {list(NOISES)}")
  need(config.noise.root in ROOTS,
       f"config.noise.root={config.noise.root!r} is unknown; choose one of {list(ROOTS)}")
  p = config.process
  for field, options in (("gamma", GAMMAS), ("blend", BLENDS), ("parametrisation", PARAMETRISATIONS),
                         ("pairing", PAIRINGS), ("heads", (1, 2)),
                         ("pairing_scope", ("global", "shard"))):
    need(p[field] in options,
         f"config.process.{field}={p[field]!r} is unknown; choose one of {list(options)}")
  if p.name == "blue_noise" or (p.name == "ddpm" and p.ddpm_time_varying):
    problem = gamma_problem(p.gamma, p.gamma_start, p.gamma_end, p.gamma_tau)
    need(problem is None, f"config.process: {problem}")
    need(p.gamma != "constant" or 0.0 <= p.gamma_value <= 1.0,
         f"config.process.gamma_value={p.gamma_value} must be in [0, 1] (1 white, 0 blue)")
    need(not (p.gamma == "cosine" and p.gamma_tau < 0.5 and config.sampling.method == "heun"
              and any(float(e).is_integer() and int(e) % 2 for e in (p.gamma_start, p.gamma_end))),
         f"config.process: the cosine gamma with gamma_tau={p.gamma_tau} < 0.5 has an infinite "
         f"slope at the zero of cos, which the heun sampler reads; use euler or tau >= 0.5")
    need(not p.learn_gamma or (p.gamma == "sigmoid" and p.name == "blue_noise"),
         f"config.process.learn_gamma learns the sigmoid gamma of blue_noise only (a learned "
         f"cosine range could cross a zero of cos and stop being monotone); got gamma={p.gamma!r}")
  need(config.model.name in MODELS,
       f"config.model.name={config.model.name!r} is unknown; choose one of {sorted(MODELS)}")
  need(config.model.conv_algorithm in CONV_ALGORITHMS,
       f"config.model.conv_algorithm={config.model.conv_algorithm!r} is unknown; choose one "
       f"of {list(CONV_ALGORITHMS)}")
  try:
    dataset_spec(config.data.dataset)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  t = config.training
  for name in ("batch_size", "num_steps", "log_every", "checkpoint_every"):
    need(t[name] > 0, f"config.training.{name} must be positive (got {t[name]})")
  for name, b in (("training.batch_size", t.batch_size),
                  ("sampling.batch_size", config.sampling.batch_size)):
    need(b % num_devices == 0,
         f"config.{name}={b} does not divide over the {num_devices} devices of the mesh; "
         f"use a multiple of {num_devices}")
  need(t.on_nan in ("stop", "skip"), f"config.training.on_nan={t.on_nan!r}: use stop or skip")
  need(t.time_budget_s >= 0, f"config.training.time_budget_s={t.time_budget_s}: must be >= 0 (0: no budget)")
  need(config.process.time_scale > 0,
       f"config.process.time_scale={config.process.time_scale} must be positive (the network "
       f"sees t * time_scale)")
  o = config.optim
  need(o.ema_every >= 1 and o.ema_start >= 0,
       f"config.optim.ema_every={o.ema_every} must be >= 1 and ema_start={o.ema_start} >= 0")
  need(o.schedule in ("constant", "cosine"),
       f"config.optim.schedule={o.schedule!r} is unknown; choose constant or cosine")
  need(0.0 <= o.final_lr_factor <= 1.0,
       f"config.optim.final_lr_factor={o.final_lr_factor} must lie in [0, 1]")
  size = config.data.image_size
  patch = config.model.patch_size
  need(patch >= 1 and size % patch == 0,
       f"config.model.patch_size={patch} must be >= 1 and divide data.image_size={size}")
  levels = len(config.model.channel_mult)
  need(size % (patch * 2 ** (levels - 1)) == 0,
       f"config.data.image_size={size} must be divisible by model.patch_size * "
       f"2**(len(model.channel_mult)-1)={patch * 2 ** (levels - 1)}")
  need(config.sampling.num_steps > 0, "config.sampling.num_steps must be positive")
  if config.process.name == "cold":
    g = config.degradation
    need(g.kind in DEGRADATIONS,
         f"config.degradation.kind={g.kind!r} is unknown; choose one of {list(DEGRADATIONS)}")
    need(g.num_steps > 0, "config.degradation.num_steps must be positive")
    need(g.kind != "blur" or g.kernel_size // 2 < size,
         f"config.degradation.kernel_size={g.kernel_size} is too large for {size}px images")
    need(not config.process.generate or g.kind in ("blur", "sr", "noise")
         or (g.kind == "inpaint" and g.colour_fill),
         f"config.process.generate: no prior for degradation {g.kind!r} (blur, sr, noise, "
         f"or inpaint with colour_fill)")
    need(not config.process.generate or g.kind != "blur" or g.mean_at_end,
         "config.process.generate with blur needs config.degradation.mean_at_end=True")
    need(g.kind != "sr" or size % (2 ** g.num_steps) == 0,
         f"config.degradation: {size}px images cannot be halved {g.num_steps} times")
  if config.process.name == "blur_diffusion":
    from bluediff.processes.blur_diffusion import BLUR_SCHEDULES
    need(p.basis in ("dct", "svd"), f"config.process.basis={p.basis!r}: use dct or svd")
    need(p.blur_schedule in BLUR_SCHEDULES + ("hoogeboom",),
         f"config.process.blur_schedule={p.blur_schedule!r} is unknown; choose one of "
         f"{list(BLUR_SCHEDULES) + ['hoogeboom']}")
    need(p.blur_d in ("continuous", "discrete"), "config.process.blur_d: continuous or discrete")
    need(0 <= p.x0_min_abar < 1, f"config.process.x0_min_abar={p.x0_min_abar} must be in [0, 1)")
  sr = config.process.sr_factor
  need(sr >= 0 and (sr == 0 or size % sr == 0),
       f"config.process.sr_factor={sr} must be 0 or divide data.image_size={size}")
  need(sr == 0 or config.process.name in ("iadb", "blue_noise"),
       f"config.process.sr_factor is for iadb and blue_noise, not {config.process.name}")
  from bluediff.processes.iadb import ALPHA_SAMPLINGS
  need(p.alpha_sampling in ALPHA_SAMPLINGS,
       f"config.process.alpha_sampling={p.alpha_sampling!r} is unknown; choose one of "
       f"{list(ALPHA_SAMPLINGS)}")
  need(p.alpha_sampling == "uniform" or p.name == "iadb",
       f"config.process.alpha_sampling={p.alpha_sampling!r} is for iadb, not {p.name}; "
       "add --config.process.alpha_sampling=uniform")


def config_from_dict(saved: dict, overrides: dict | None = None) -> ml_collections.ConfigDict:
  """A saved config (config.json) over today's defaults: fields added since take their
  defaults, fields removed since are dropped; then `overrides` {"process.ddim_eta": 1.0}."""
  from configs import base
  config = base.get_config()

  def merge(node, values):
    for k, v in values.items():
      if k not in node:
        continue
      if isinstance(node[k], ml_collections.ConfigDict) and isinstance(v, dict):
        merge(node[k], v)
      else:
        node[k] = tuple(v) if isinstance(node[k], tuple) and isinstance(v, list) else v
  merge(config, saved)
  for dotted, v in (overrides or {}).items():
    *sections, name = dotted.split(".")
    node = config
    for part in sections:
      node = node[part] if isinstance(node, ml_collections.ConfigDict) and part in node else None
      if node is None:
        break
    if not isinstance(node, ml_collections.ConfigDict) or name not in node:
      raise ConfigError(f"no config field {dotted!r}")
    try:
      node[name] = v
    except TypeError as e:
      raise ConfigError(f"config field {dotted}: {e}") from None
  return config

