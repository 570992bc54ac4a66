"""Inception features over the device mesh, and cached reference statistics.

Reference features are cached per (dataset, split, resolution, count, weights
hash) in the user cache, so a sweep of evaluations extracts them once. They
are stored as features (not only mean/covariance) because KID and
precision/recall need the points.
"""
from __future__ import annotations

import os

import jax
import numpy as np
from tqdm.auto import tqdm

from bluediff import sharding
from bluediff.cache import cache_dir, save_npz_atomic
from bluediff.evaluate.inception import FEATURE_DIM, NUM_CLASSES, inception_outputs

REFERENCE_SEED = 0   # which subset of a split the reference uses, when not all of it


class InceptionFeatures:
  """uint8 images [N, H, W, C] -> (features [N, 2048], logits [N, 1008]) as float32 numpy.

  Batches of `batch_size` (rounded up to a multiple of the mesh size) are
  split over the 'data' axis; the last batch is zero-padded and trimmed.
  """

  def __init__(self, params, weights_hash: str, mesh, batch_size: int = 100):
    n = mesh.devices.size
    self.batch_size = -(-batch_size // n) * n
    self.mesh, self.weights_hash = mesh, weights_hash
    self.params = sharding.replicate(params, mesh)

  def __call__(self, images: np.ndarray, desc: str = "inception") -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
      raise ValueError(f"Inception features need uint8 [N, H, W, 1|3]; got {images.dtype} "
                       f"{list(images.shape)}")
    bs = self.batch_size
    feats = np.empty((len(images), FEATURE_DIM), np.float32)
    logits = np.empty((len(images), NUM_CLASSES), np.float32)
    for i in tqdm(range(0, len(images), bs), desc=desc, unit="batch",
                  disable=jax.process_index() != 0, leave=False):
      chunk = images[i:i + bs]
      k = len(chunk)
      if k < bs:
        chunk = np.concatenate([chunk, np.zeros((bs - k,) + chunk.shape[1:], np.uint8)])
      f, lg = inception_outputs(self.params, sharding.shard_replicated_batch(chunk, self.mesh))
      feats[i:i + k] = sharding.to_host(f)[:k]
      logits[i:i + k] = sharding.to_host(lg)[:k]
    return feats, logits


def reference_subset(images: np.ndarray, num: int) -> np.ndarray:
  """The fixed subset of a split the reference uses (num = 0 or >= len: all of it)."""
  if num and num < len(images):
    return images[np.random.default_rng(REFERENCE_SEED).permutation(len(images))[:num]]
  return images


def reference_cache_path(dataset: str, split: str, image_size: int, num: int,
                         weights_hash: str) -> str:
  return cache_dir("fid_reference", f"{dataset}-{split}-{image_size}px-n{num or 'all'}-"
                   f"{weights_hash[:16]}.npz")


def reference_features(extract: InceptionFeatures, dataset: str, split: str, image_size: int,
                       num: int = 0, data_dir: str = "") -> np.ndarray:
  """Inception features [M, 2048] of a dataset split (num > 0: a fixed random subset)."""
  path = reference_cache_path(dataset, split, image_size, num, extract.weights_hash)
  if os.path.exists(path):
    try:
      with np.load(path, allow_pickle=False) as f:
        feats = f["features"]
      if feats.ndim == 2 and feats.shape[1] == FEATURE_DIM and np.isfinite(feats).all():
        return feats
      print(f"warning: reference cache {path} holds the wrong array; rebuilding it")
    except Exception as e:  # a damaged cache is rebuilt, never trusted
      print(f"warning: reference cache {path} is unreadable ({e}); rebuilding it")
  from bluediff.data.sources import load_split, to_uint8
  images, _ = load_split(dataset, split, image_size, data_dir)
  feats, _ = extract(to_uint8(reference_subset(images, num)), desc=f"reference {dataset}/{split}")
  if jax.process_index() == 0:
    save_npz_atomic(path, features=feats)
  return feats
