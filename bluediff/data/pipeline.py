"""The Grain input pipeline: a global order independent of the process count.

Global batch s holds positions [s*B, (s+1)*B) of one seeded, reshuffled-each-
epoch stream of example indices; process p reads the contiguous block
[p*B/P, (p+1)*B/P) of it. So 1 process and N processes see the same global
batches, and the iterator's state (a JSON dict) resumes training exactly.
"""
from __future__ import annotations

import dataclasses

import grain
import numpy as np

from bluediff.data.sources import dataset_spec, open_source, to_model_range


@dataclasses.dataclass(frozen=True)
class _ReadBatch:
  """Reads examples by index and converts them to model range."""
  source: object
  image_size: int
  center_crop: bool

  def __call__(self, indices: np.ndarray) -> dict:
    records = self.source.__getitems__([int(i) for i in indices])
    images = np.stack([r["image"] for r in records])
    return {"image": to_model_range(images, self.image_size, self.center_crop)}


def _flip(batch: dict, rng: np.random.Generator) -> dict:
  flip = rng.random(batch["image"].shape[0]) < 0.5
  images = np.where(flip[:, None, None, None], batch["image"][:, :, ::-1], batch["image"])
  return {"image": images}


def train_dataset(data_config, global_batch: int, seed: int,
                  process_index: int = 0, process_count: int = 1) -> grain.MapDataset:
  """This process's slice of the global training batches, as a MapDataset.

  Element s is {"image": float32 [B / P, S, S, C] in [-1, 1]}.
  """
  if global_batch % process_count:
    raise ValueError(f"training.batch_size={global_batch} does not divide over "
                     f"{process_count} processes")
  spec = dataset_spec(data_config.dataset)
  source = open_source(data_config.dataset, data_config.train_split, data_config.data_dir)
  per_host = global_batch // process_count
  lo = process_index * per_host
  ds = (grain.MapDataset.range(len(source))
        .shuffle(seed=seed)
        .repeat(None)
        .batch(global_batch, drop_remainder=True)
        .map(lambda ids: ids[lo:lo + per_host])
        .map(_ReadBatch(source, data_config.image_size, spec.center_crop)))
  if data_config.random_flip:
    ds = ds.random_map(_flip, seed=seed + 1)
  return ds


def train_iterator(data_config, global_batch: int, seed: int,
                   process_index: int = 0, process_count: int = 1):
  """A checkpointable iterator (`get_state()` / `set_state()`) with prefetch."""
  ds = train_dataset(data_config, global_batch, seed, process_index, process_count)
  read = grain.ReadOptions(num_threads=data_config.num_threads,
                           prefetch_buffer_size=data_config.prefetch)
  return iter(ds.to_iter_dataset(read))
