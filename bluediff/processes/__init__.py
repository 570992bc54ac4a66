"""Processes (one per method), chosen by `config.process.name`."""
from bluediff.noise import build_noise
from bluediff.processes.base import Net, Process
from bluediff.processes.iadb import IADB

__all__ = ["IADB", "Net", "PROCESSES", "Process", "build_process"]

PROCESSES = {"iadb": IADB}


def build_process(config) -> Process:
  """The process a config names, with its noise sampler."""
  name = config.process.name
  if name not in PROCESSES:
    raise ValueError(f"config.process.name={name!r} is unknown; choose one of {sorted(PROCESSES)}")
  noise = build_noise(config.noise, config.data.image_size)
  if name == "iadb":
    return IADB(noise, time_scale=config.process.time_scale)
  raise AssertionError(name)
