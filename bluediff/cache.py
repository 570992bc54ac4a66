"""The user cache directory and safe writes into it.

Everything bluediff builds once and reuses (the digits judge, FID reference
statistics, blue-noise statistics) lives under `cache_dir()`:
$BLUEDIFF_CACHE, else $XDG_CACHE_HOME/bluediff, else ~/.cache/bluediff.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np


def cache_dir(*parts: str) -> str:
  root = os.environ.get("BLUEDIFF_CACHE") or os.path.join(
      os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "bluediff")
  return os.path.join(root, *parts)


def sha256_file(path: str, chunk: int = 1 << 22) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    while block := f.read(chunk):
      h.update(block)
  return h.hexdigest()


def save_npz_atomic(path: str, **arrays) -> str:
  """np.savez to a temporary name, then rename: never a half-written file under `path`."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.tmp{os.getpid()}.npz"
  np.savez(tmp, **arrays)
  os.replace(tmp, path)
  return path
