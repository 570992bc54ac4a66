import numpy as np
import pytest

from bluediff.data import pipeline
from bluediff.data.digits import digits_splits
from bluediff.data.sources import DatasetNotPreparedError, check_prepared, load_split


def test_digits_splits_are_disjoint_stratified_and_complete():
  from sklearn.datasets import load_digits
  y = load_digits().target
  s = digits_splits()
  assert len(np.intersect1d(s["train"], s["test"])) == 0
  assert len(s["train"]) + len(s["test"]) == len(y) == 1797
  share = np.bincount(y[s["test"]], minlength=10) / np.bincount(y, minlength=10)
  np.testing.assert_allclose(share, 0.2, atol=0.01)


def test_load_split_matches_sklearn(digits16):
  from sklearn.datasets import load_digits
  x8, y8 = load_split("digits", "test", 8)
  d = load_digits()
  idx = digits_splits()["test"]
  want = np.round(d.images[idx] * 255 / 16) / 127.5 - 1
  # TFDS stores examples in its own (hashed) order: compare as sorted multisets.
  rows = lambda img, lab: sorted(map(tuple, np.concatenate(
      [img.reshape(len(img), -1), lab[:, None]], 1).round(5)))
  assert rows(x8[..., 0], y8) == rows(want, d.target[idx])
  x16 = digits16[2]
  assert x16.shape == (len(idx), 16, 16, 1) and x16.min() >= -1 and x16.max() <= 1


def test_global_order_is_independent_of_process_count(tiny_config):
  dc = tiny_config().data
  one = pipeline.train_dataset(dc, 8, seed=3)
  halves = [pipeline.train_dataset(dc, 8, seed=3, process_index=p, process_count=2)
            for p in range(2)]
  for s in (0, 1, 200):   # step 200 is past the first epoch (reshuffled)
    whole = one[s]["image"]
    np.testing.assert_array_equal(np.concatenate([h[s]["image"] for h in halves]), whole)
    # the two processes read disjoint examples
    a, b = (h[s]["image"].reshape(4, -1) for h in halves)
    assert not any(np.array_equal(r, q) for r in a for q in b)


def test_epochs_cover_the_data_and_reshuffle(tiny_config):
  dc = tiny_config().data
  ds = pipeline.train_dataset(dc, 8, seed=0)
  n_train = len(digits_splits()["train"])
  per_epoch = n_train // 8
  first = np.concatenate([ds[s]["image"] for s in range(per_epoch)])
  # an epoch is a permutation: no example repeats within it
  assert len(np.unique(first.reshape(len(first), -1), axis=0)) >= len(first) - 5  # dup images exist in digits
  assert not np.array_equal(ds[0]["image"], ds[per_epoch + 1]["image"])


def test_iterator_state_resumes_exactly(tiny_config):
  dc = tiny_config().data
  it = pipeline.train_iterator(dc, 8, seed=1)
  for _ in range(3):
    next(it)
  state = it.get_state()
  want = [next(it)["image"] for _ in range(2)]
  it2 = pipeline.train_iterator(dc, 8, seed=1)
  it2.set_state(state)
  for w in want:
    np.testing.assert_array_equal(next(it2)["image"], w)


def test_unprepared_dataset_says_how_to_prepare(tmp_path):
  with pytest.raises(DatasetNotPreparedError) as e:
    check_prepared("cifar10", str(tmp_path))
  msg = str(e.value)
  assert "tfds build cifar10 --file_format=array_record" in msg and "\n" not in msg


def test_random_flip_mirrors_the_width_axis(tiny_config):
  """data.random_flip: about half of the images come back as x[:, :, ::-1] ([B, H, W, C]:
  left-right), the rest untouched (an upside-down flip fails). Same seed, same images otherwise."""
  dc = tiny_config().data
  plain = pipeline.train_dataset(dc, 8, seed=2)
  dc.random_flip = True
  flipping = pipeline.train_dataset(dc, 8, seed=2)
  flipped = 0
  for s in range(4):
    x, y = plain[s]["image"], flipping[s]["image"]
    assert x.shape == y.shape == (8, 16, 16, 1)
    for i in range(8):
      if np.array_equal(y[i], x[i]):
        continue
      np.testing.assert_array_equal(y[i], x[:, :, ::-1][i])          # width reversed
      flipped += 1
  assert 8 <= flipped <= 24                  # of 32, p = 1/2 (a fixed seed: deterministic)
