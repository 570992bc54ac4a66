"""Inception features over the device mesh, and cached reference statistics.

Reference features are cached per (dataset, split, resolution, image count,
weights hash) in the user cache, so a sweep of evaluations extracts them once. They
are stored as features (not only mean/covariance) because KID and
precision/recall need the points.
"""
from __future__ import annotations

import jax
import numpy as np
from tqdm.auto import tqdm

from bluediff import sharding, storage
from bluediff.cache import cache_dir
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


def reference_indices(size: int, num: int) -> np.ndarray:
  """Indices [M] into a split of `size` images: the fixed random subset the reference
  uses (num = 0 or >= size: all of it, in order)."""
  if num and num < size:
    return np.random.default_rng(REFERENCE_SEED).permutation(size)[:num]
  return np.arange(size)


def reference_count(size: int, num: int) -> int:
  """How many images the reference of a split of `size` images holds."""
  return min(num, size) if num else size


def load_reference_images(dataset: str, split: str, image_size: int, num: int = 0,
                          data_dir: str = "", limit: int | None = None,
                          chunk: int = 1000) -> np.ndarray:
  """uint8 [M, S, S, C]: the reference subset of a split (its first `limit` images).

  Reads only the chosen records, `chunk` at a time: a 10k reference from a training
  split (LSUN-Bedroom's has 3M images) never decodes the whole split.
  """
  from bluediff.data.sources import dataset_spec, open_source, to_model_range, to_uint8
  source = open_source(dataset, split, data_dir)
  idx = reference_indices(len(source), num)[:limit]
  crop = dataset_spec(dataset).center_crop
  parts = []
  for i in range(0, len(idx), chunk):
    records = source.__getitems__([int(j) for j in idx[i:i + chunk]])
    # a list, not a stack: LSUN's images differ in size before the crop and resize
    parts.append(to_uint8(to_model_range([r["image"] for r in records], image_size, crop)))
  return np.concatenate(parts)


def reference_cache_path(dataset: str, split: str, image_size: int, count: int,
                         weights_hash: str) -> str:
  """The cache file of a reference: keyed by split and by the number of images it
  holds (not the number asked for), so a 300-image validation set is never reused
  as a 10k one."""
  return cache_dir("fid_reference", f"{dataset}-{split}-{image_size}px-n{count}-"
                   f"{weights_hash[:16]}.npz")


def reference_features(extract: InceptionFeatures, dataset: str, split: str, image_size: int,
                       num: int = 0, data_dir: str = "") -> np.ndarray:
  """Inception features [M, 2048] of a dataset split (num > 0: a fixed random subset)."""
  from bluediff.data.sources import open_source
  count = reference_count(len(open_source(dataset, split, data_dir)), num)
  path = reference_cache_path(dataset, split, image_size, count, extract.weights_hash)
  if storage.exists(path):
    try:
      feats = storage.load_npz(path)["features"]
      if feats.shape == (count, FEATURE_DIM) and np.isfinite(feats).all():
        return feats
      print(f"warning: reference cache {path} holds the wrong array; rebuilding it")
    except Exception as e:  # a damaged cache is rebuilt, never trusted
      print(f"warning: reference cache {path} is unreadable ({e}); rebuilding it")
  images = load_reference_images(dataset, split, image_size, num, data_dir)
  feats, _ = extract(images, desc=f"reference {dataset}/{split}")
  if jax.process_index() == 0:
    storage.save_npz(path, features=feats)
  return feats
