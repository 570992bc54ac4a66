"""The digits metric: a small classifier the project trains itself.

A CNN trained on the digits *training* split (never downloaded; cached in the
user cache directory) judges samples by
  (a) the share classified with confidence >= 0.9 and the share of each class,
  (b) the Frechet distance between its 64-d penultimate features of the
      samples and of the held-out split, beside the floor: the same distance
      between an equal-sized subset of the training split and the held-out split.
A set passes when >= 80 % are confident, every class holds 5-15 % of the
samples, and the distance is at most 3x the floor.

Build or rebuild the weights: `python -m bluediff.evaluate.digits_judge --image_size=16`.
"""
from __future__ import annotations

import dataclasses
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from bluediff.cache import cache_dir, save_npz_atomic
from bluediff.data.sources import load_split
from bluediff.evaluate.frechet import frechet_distance_of

FEATURE_DIM = 64
CONFIDENCE = 0.9
JUDGE_VERSION = 1


class DigitsClassifier(nn.Module):
  """x [B, S, S, 1] in [-1, 1] -> (logits [B, 10], features [B, 64])."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    for ch in (32, 64):
      x = nn.relu(nn.Conv(ch, (3, 3))(x))
      x = nn.relu(nn.Conv(ch, (3, 3))(x))
      x = nn.max_pool(x, (2, 2), (2, 2))
    x = x.reshape(x.shape[0], -1)
    x = nn.Dropout(0.3, deterministic=not train)(x)
    feats = nn.relu(nn.Dense(FEATURE_DIM)(x))
    return nn.Dense(10)(feats), feats


def weights_path(image_size: int) -> str:
  return os.path.join(cache_dir(), f"digits_judge_v{JUDGE_VERSION}_{image_size}px.npz")


def _augment(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
  """Random shifts of up to 1 px (digits are centred; keeps the judge robust)."""
  out = np.empty_like(x)
  for i, img in enumerate(x):
    dy, dx = rng.integers(-1, 2, size=2)
    out[i] = np.roll(img, (dy, dx), axis=(0, 1))
  return out


def train_judge(image_size: int, data_dir: str = "", steps: int = 600, seed: int = 0,
                verbose: bool = True) -> tuple[dict, float]:
  """Trains the classifier on the train split. Returns (params, held-out accuracy)."""
  x_tr, y_tr = load_split("digits", "train", image_size, data_dir)
  x_te, y_te = load_split("digits", "test", image_size, data_dir)
  model = DigitsClassifier()
  key = jax.random.key(seed)
  params = model.init(key, x_tr[:1])["params"]
  opt = optax.adam(optax.cosine_decay_schedule(2e-3, steps))
  opt_state = opt.init(params)

  @jax.jit
  def step(params, opt_state, x, y, key):
    def loss_fn(p):
      logits, _ = model.apply({"params": p}, x, train=True, rngs={"dropout": key})
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    loss, g = jax.value_and_grad(loss_fn)(params)
    upd, opt_state = opt.update(g, opt_state, params)
    return optax.apply_updates(params, upd), opt_state, loss

  rng = np.random.default_rng(seed)
  for i in range(steps):
    idx = rng.integers(0, len(x_tr), 64)
    params, opt_state, loss = step(params, opt_state, _augment(rng, x_tr[idx]), y_tr[idx],
                                   jax.random.fold_in(key, i))
  logits, _ = classify(params, x_te)
  acc = float(np.mean(np.argmax(logits, -1) == y_te))
  if verbose:
    print(f"digits judge: held-out accuracy {acc:.4f} ({len(y_te)} images, {image_size}px)")
  return params, acc


@jax.jit
def _apply(params, x):
  return DigitsClassifier().apply({"params": params}, x)


def classify(params, images: np.ndarray, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
  """images [N, S, S, 1] in [-1, 1] -> (logits [N, 10], features [N, 64])."""
  outs = [_apply(params, jnp.asarray(images[i:i + batch], jnp.float32))
          for i in range(0, len(images), batch)]
  return (np.concatenate([np.asarray(o[0]) for o in outs]),
          np.concatenate([np.asarray(o[1]) for o in outs]))


def save_params(params, accuracy: float, path: str) -> None:
  flat = {"/".join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(params).items()}
  save_npz_atomic(path, __accuracy__=np.float64(accuracy), **flat)


def load_params(path: str) -> tuple[dict, float]:
  with np.load(path, allow_pickle=False) as f:
    acc = float(f["__accuracy__"])
    flat = {tuple(k.split("/")): jnp.asarray(f[k]) for k in f.files if k != "__accuracy__"}
  return traverse_util.unflatten_dict(flat), acc


def get_judge(image_size: int, data_dir: str = "") -> tuple[dict, float]:
  """Cached classifier params (trained here on first use) and their held-out accuracy."""
  path = weights_path(image_size)
  if os.path.exists(path):
    try:
      return load_params(path)
    except Exception as e:  # a damaged cache file is rebuilt, never trusted
      print(f"warning: digits judge cache {path} is unreadable ({e}); retraining")
  print(f"training the digits judge once ({image_size}px); cached at {path}")
  params, acc = train_judge(image_size, data_dir)
  save_params(params, acc, path)
  return params, acc


@dataclasses.dataclass
class DigitsReport:
  num_samples: int
  confident_share: float          # max softmax >= 0.9
  class_shares: list[float]       # predicted-class histogram, sums to 1
  frechet: float                  # samples vs held-out
  frechet_floor: float            # train subset (same size) vs held-out
  judge_accuracy: float           # the classifier's held-out accuracy

  @property
  def frechet_ratio(self) -> float:
    return self.frechet / self.frechet_floor

  @property
  def passes(self) -> bool:
    return (self.confident_share >= 0.8
            and min(self.class_shares) >= 0.05 and max(self.class_shares) <= 0.15
            and self.frechet_ratio <= 3.0)

  def as_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d.update(frechet_ratio=self.frechet_ratio, passes=self.passes)
    return d

  def summary(self) -> str:
    shares = " ".join(f"{s:.2f}" for s in self.class_shares)
    return (f"digits: {self.confident_share:.1%} confident (>= {CONFIDENCE}), class shares "
            f"[{shares}], Frechet {self.frechet:.3f} vs floor {self.frechet_floor:.3f} "
            f"({self.frechet_ratio:.2f}x) -> {'PASS' if self.passes else 'FAIL'}")


def evaluate_digits(samples: np.ndarray, image_size: int, data_dir: str = "",
                    seed: int = 0) -> DigitsReport:
  """Scores samples [N, S, S, 1] in [-1, 1] (or uint8) with the digits judge."""
  samples = np.asarray(samples)
  if samples.dtype == np.uint8:
    samples = samples.astype(np.float32) / 127.5 - 1.0
  if samples.ndim != 4 or samples.shape[1:] != (image_size, image_size, 1):
    raise ValueError(f"digits samples must be [N, {image_size}, {image_size}, 1]; "
                     f"got {samples.shape}")
  params, acc = get_judge(image_size, data_dir)
  x_tr, _ = load_split("digits", "train", image_size, data_dir)
  x_te, _ = load_split("digits", "test", image_size, data_dir)
  logits, feats = classify(params, samples)
  probs = np.asarray(jax.nn.softmax(logits, -1))
  pred = probs.argmax(-1)
  _, f_te = classify(params, x_te)
  subset = np.random.default_rng(seed).permutation(len(x_tr))[:min(len(samples), len(x_tr))]
  _, f_tr = classify(params, x_tr[subset])
  return DigitsReport(
      num_samples=len(samples),
      confident_share=float(np.mean(probs.max(-1) >= CONFIDENCE)),
      class_shares=[float(np.mean(pred == c)) for c in range(10)],
      frechet=frechet_distance_of(feats, f_te),
      frechet_floor=frechet_distance_of(f_tr, f_te),
      judge_accuracy=acc)


def main(argv=None):
  import argparse
  ap = argparse.ArgumentParser(description="Train (or retrain) and cache the digits judge.")
  ap.add_argument("--image_size", type=int, default=16)
  ap.add_argument("--data_dir", default="")
  args = ap.parse_args(argv)
  params, acc = train_judge(args.image_size, args.data_dir)
  save_params(params, acc, weights_path(args.image_size))
  print(json.dumps({"path": weights_path(args.image_size), "held_out_accuracy": acc}))


if __name__ == "__main__":
  main()
