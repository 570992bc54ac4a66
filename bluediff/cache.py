"""The user cache directory.

Everything bluediff builds once and reuses (the digits judge, FID reference
statistics, blue-noise statistics) lives under `cache_dir()`:
$BLUEDIFF_CACHE, else $XDG_CACHE_HOME/bluediff, else ~/.cache/bluediff.
$BLUEDIFF_CACHE may be gs:// (one cache shared by every host of a slice); reads
and writes go through bluediff.storage (whole-object writes: never half a file).
"""
from __future__ import annotations

import os

from bluediff import storage


def cache_dir(*parts: str, environ=None) -> str:
  environ = os.environ if environ is None else environ
  root = environ.get("BLUEDIFF_CACHE") or storage.join(
      environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "bluediff")
  return storage.join(root, *parts)

