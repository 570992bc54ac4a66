"""Datasets bluediff knows, read as random-access TFDS ArrayRecord sources.

TFDS reads ArrayRecord without TensorFlow. The embedded digits set is
prepared on first use (its data ships in scikit-learn); every other dataset
must be prepared once by the user (image features need TensorFlow to *build*),
and a missing one fails with one line saying how.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np


class DatasetNotPreparedError(RuntimeError):
  """The configured dataset is not in the data dir."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  tfds_name: str
  channels: int
  center_crop: bool = False     # crop to a centred square before resizing
  embedded: bool = False        # prepared automatically (data ships with a package)
  has_labels: bool = False
  unavailable: str = ""         # why TFDS cannot provide it, and what to do instead


DATASETS = {
    "digits": DatasetSpec("digits", channels=1, embedded=True, has_labels=True),
    "cifar10": DatasetSpec("cifar10", channels=3, has_labels=True),
    "celeb_a": DatasetSpec("celeb_a", channels=3, center_crop=True),
    "lsun_church": DatasetSpec("lsun/church_outdoor", channels=3, center_crop=True),
    "lsun_bedroom": DatasetSpec("lsun/bedroom", channels=3, center_crop=True),
    "afhq_cat": DatasetSpec("afhq_cat", channels=3, center_crop=True, unavailable=(
        "AFHQ is not in the TFDS catalog, and bluediff ships no builder for it yet; train the "
        "blue-noise paper's AFHQ-Cat settings on celeb_a or lsun_church instead "
        "(--config.data.dataset=celeb_a)")),
}


def dataset_spec(name: str) -> DatasetSpec:
  if name not in DATASETS:
    raise ValueError(f"config.data.dataset={name!r} is unknown; choose one of {sorted(DATASETS)}")
  return DATASETS[name]


def resolve_data_dir(data_dir: str) -> str:
  if "://" in (data_dir or ""):
    # measured (issue 18): TFDS's ArrayRecord source without TensorFlow opens a gs:// dataset
    # and then hangs on the first record; refuse it at once instead
    raise DatasetNotPreparedError(
        f"config.data.data_dir={data_dir} is object storage, which the ArrayRecord reader "
        f"cannot read; copy the prepared dataset to local disk on every host "
        f"(gcloud storage cp -r {data_dir.rstrip('/')}/<dataset> ~/tensorflow_datasets/) "
        f"and leave data_dir empty or point it there")
  # the default is local; a given data_dir is passed to TFDS as is (README: "Object storage")
  return data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")  # local:


def _builder(spec: DatasetSpec, data_dir: str):
  import tensorflow_datasets as tfds
  if spec.tfds_name == "digits":
    from bluediff.data.digits import Digits
    return Digits(data_dir=data_dir, file_format="array_record")
  return tfds.builder(spec.tfds_name, data_dir=data_dir, file_format="array_record")


def prepare_dataset(name: str, data_dir: str = "") -> None:
  """Prepares an embedded dataset (no-op when it is already there)."""
  import tensorflow_datasets as tfds
  spec = dataset_spec(name)
  builder = _builder(spec, resolve_data_dir(data_dir))
  if builder.is_prepared():
    return
  if not spec.embedded:
    raise DatasetNotPreparedError(_not_prepared_message(name, spec, builder.data_dir))
  builder.download_and_prepare(
      file_format="array_record",
      download_config=tfds.download.DownloadConfig(try_download_gcs=False))


def _not_prepared_message(name, spec, where) -> str:
  root = where.split(spec.tfds_name.split("/")[0])[0].rstrip("/") or where
  return (f"dataset {name!r} is not prepared in {root}: run `pip install tensorflow-cpu && "
          f"tfds build {spec.tfds_name} --file_format=array_record --data_dir={root}` once "
          f"(or point config.data.data_dir / $TFDS_DATA_DIR at a prepared copy)")


def check_prepared(name: str, data_dir: str = "") -> None:
  """Raises DatasetNotPreparedError (one line) unless `name` can be read.

  Embedded datasets are prepared here instead.
  """
  spec = dataset_spec(name)
  if spec.unavailable:
    raise DatasetNotPreparedError(f"dataset {name!r}: {spec.unavailable}")
  if spec.embedded:
    prepare_dataset(name, data_dir)
    return
  builder = _builder(spec, resolve_data_dir(data_dir))
  if not builder.is_prepared():
    raise DatasetNotPreparedError(_not_prepared_message(name, spec, builder.data_dir))


def open_source(name: str, split: str, data_dir: str = ""):
  """A random-access source (len, [i], __getitems__) of feature dicts."""
  check_prepared(name, data_dir)
  builder = _builder(dataset_spec(name), resolve_data_dir(data_dir))
  if split not in builder.info.splits:
    raise ValueError(f"dataset {name!r} has no split {split!r}; it has {sorted(builder.info.splits)}")
  return builder.as_data_source(split=split)


def to_model_range(images_u8: np.ndarray, image_size: int, center_crop: bool) -> np.ndarray:
  """uint8 [B, h, w, C] -> float32 [B, S, S, C] in [-1, 1] (bilinear / area resize)."""
  from PIL import Image
  out = []
  for img in images_u8:
    if center_crop:
      h, w = img.shape[:2]
      s = min(h, w)
      img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    if img.shape[0] != image_size or img.shape[1] != image_size:
      squeeze = img.shape[-1] == 1
      pil = Image.fromarray(img[..., 0] if squeeze else img)
      down = image_size < img.shape[0]
      pil = pil.resize((image_size, image_size), Image.BOX if down else Image.BILINEAR)
      img = np.asarray(pil)
      img = img[..., None] if squeeze else img
    out.append(img)
  return np.stack(out).astype(np.float32) / 127.5 - 1.0


def to_uint8(images: np.ndarray) -> np.ndarray:
  """float [-1, 1] -> uint8 [0, 255] (clipped)."""
  return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def load_split(name: str, split: str, image_size: int, data_dir: str = "",
               limit: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
  """A whole split in memory: images float32 [N, S, S, C] in [-1, 1], labels [N] or None."""
  source = open_source(name, split, data_dir)
  spec = dataset_spec(name)
  n = len(source) if limit is None else min(limit, len(source))
  records = source.__getitems__(list(range(n)))
  images = to_model_range(np.stack([r["image"] for r in records]), image_size, spec.center_crop)
  labels = np.asarray([r["label"] for r in records]) if spec.has_labels else None
  return images, labels
