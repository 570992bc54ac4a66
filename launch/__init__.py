"""Launchers: Cloud TPU VM slices (`tpu.py`) and sweeps over config overrides (`sweep.py`)."""
