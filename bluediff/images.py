"""Sample grids as PNG."""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from bluediff import storage
from bluediff.data.sources import to_uint8


def make_grid(images: np.ndarray, ncol: int | None = None, pad: int = 1) -> np.ndarray:
  """[N, H, W, C] (uint8, or float in [-1, 1]) -> one uint8 image [H', W', C]."""
  images = np.asarray(images)
  if images.dtype != np.uint8:
    images = to_uint8(images)
  n, h, w, c = images.shape
  ncol = ncol or int(math.ceil(math.sqrt(n)))
  nrow = int(math.ceil(n / ncol))
  grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), 255, np.uint8)
  for i in range(n):
    r, q = divmod(i, ncol)
    grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + q * (w + pad):pad + q * (w + pad) + w] = images[i]
  return grid


def save_grid(images: np.ndarray, path: str, ncol: int | None = None, scale: int = 0) -> str:
  """Writes a grid PNG (a local or gs:// path); small images are upscaled (nearest)
  to ~512 px wide."""
  grid = make_grid(images, ncol)
  if scale <= 0:
    scale = max(1, 512 // grid.shape[1])
  img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
  if scale > 1:
    img = img.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
  buf = io.BytesIO()
  img.save(buf, format="PNG")
  storage.write_bytes(path, buf.getvalue())
  return path
