"""IADB on the shared digits recipe: the 16 px UNet, uniform alpha, 3600 steps.

This was the digits default before session 12. The blue-noise and time-input studies
were published with it, and their IADB arms train it so those tables stay comparable
(`benchmarks/digits_study.py`). The embedded default is `configs/digits.py`.

  python -m bluediff.main --config=configs/digits_iadb_shared.py --workdir=runs/iadb16
"""
from configs import digits


def get_config():
  return digits.get_shared_config()
