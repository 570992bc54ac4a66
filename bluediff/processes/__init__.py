"""Processes (one per method), chosen by `config.process.name`.

Each process module owns its config reading: `from_config(config, noise, num_shards)`
builds the process, `meaning_fields(config)` names the fields that change what its
network means (bluediff.signature records and compares them), and `READS_NOISE` says
whether `config.noise` is part of it. `MODULES` maps each name to its module, imported
only when that process is built.
"""
import importlib

from bluediff.processes.base import Net, Process, choice
from bluediff.processes.blue import BLENDS, PARAMETRISATIONS, BlueNoiseDiffusion
from bluediff.processes.ddpm import DDPM, linear_alpha_bar
from bluediff.processes.iadb import ALPHA_SAMPLINGS, IADB
from bluediff.processes.pairing import PAIRINGS

__all__ = ["ALPHA_SAMPLINGS", "BLENDS", "IADB", "MODULES", "PAIRINGS", "PARAMETRISATIONS",
           "PROCESSES", "BlueNoiseDiffusion", "DDPM", "Net", "Process", "build_process",
           "linear_alpha_bar", "process_module"]

MODULES = {
    "iadb": "bluediff.processes.iadb",
    "blue_noise": "bluediff.processes.blue",
    "ddpm": "bluediff.processes.ddpm",
    "cold": "bluediff.processes.cold",
    "blur_diffusion": "bluediff.processes.blur_diffusion",
}
PROCESSES = tuple(MODULES)


def process_module(name: str):
  """The module that owns process `name` (from_config, meaning_fields, READS_NOISE)."""
  return importlib.import_module(MODULES[choice(name, PROCESSES, "name")])


def build_process(config, num_shards: int = 1) -> Process:
  """The process a config names, with its noise operator (built or loaded from the cache)
  when it reads config.noise.

  num_shards: how many device shards the batch is split over (per-shard pairing).
  """
  module = process_module(config.process.name)
  noise = None
  if module.READS_NOISE:
    from bluediff.noise import build_noise
    noise = build_noise(config.noise, config.data.image_size)
  return module.from_config(config, noise, num_shards)
