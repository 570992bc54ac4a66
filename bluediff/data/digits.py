"""scikit-learn's handwritten digits as a TFDS dataset (no download, no TensorFlow).

The 1797 8x8 images ship inside the scikit-learn wheel. This builder writes
them to ArrayRecord with `Tensor` features, which TFDS can prepare and read
without TensorFlow. Pixels are stored at their native 8x8 (0..16 scaled to
0..255 uint8); the input pipeline resizes to `config.data.image_size`.
A fixed, class-stratified 20 % of the images is held out as the "test" split.
"""
from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

HELD_OUT_FRACTION = 0.2
SPLIT_SEED = 0


def digits_splits() -> dict[str, np.ndarray]:
  """Indices of the train / test splits into `load_digits()` (stratified, fixed)."""
  from sklearn.datasets import load_digits
  labels = load_digits().target
  rng = np.random.default_rng(SPLIT_SEED)
  test = []
  for c in range(10):
    idx = np.flatnonzero(labels == c)
    test.extend(rng.permutation(idx)[: int(round(HELD_OUT_FRACTION * len(idx)))])
  test = np.sort(np.asarray(test))
  train = np.setdiff1d(np.arange(len(labels)), test)
  return {"train": train, "test": test}


class Digits(tfds.core.GeneratorBasedBuilder):
  """scikit-learn digits, 8x8x1 uint8, labels 0..9."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "8x8 digits from scikit-learn, stratified 80/20 split."}

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description="scikit-learn's load_digits (UCI optical digits), 8x8 grayscale.",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
            "label": tfds.features.Scalar(dtype=np.int64),
        }),
        supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download: the data is inside scikit-learn
    return {name: self._generate_examples(idx) for name, idx in digits_splits().items()}

  def _generate_examples(self, indices):
    from sklearn.datasets import load_digits
    d = load_digits()
    for i in indices:
      img = np.round(d.images[i] * (255.0 / 16.0)).astype(np.uint8)[..., None]
      yield int(i), {"image": img, "label": int(d.target[i])}
