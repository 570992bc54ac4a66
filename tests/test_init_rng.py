"""The initialisation key (bluediff.init_rng): reproducible, well mixed, the weights' law.

Oracles: the uniform law of 32-bit words (a chi-square over 64 bins, each bit's
frequency), zero correlation between neighbouring counters and between sibling keys,
and Flax's lecun_normal law (std 1/sqrt(fan_in), truncated at two std) for a kernel.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from bluediff.init_rng import init_key

N = 1 << 16


def _words(key, n=N) -> np.ndarray:
  return np.asarray(jax.random.bits(key, (n,), jnp.uint32)).astype(np.uint64)


def test_words_are_uniform_bit_by_bit_and_uncorrelated():
  w = _words(init_key(0))
  counts = np.bincount((w >> 26).astype(np.int64), minlength=64)   # the top 6 bits
  assert stats.chisquare(counts).pvalue > 1e-3
  bits = (w[:, None] >> np.arange(32, dtype=np.uint64)) & 1
  assert np.all(np.abs(bits.mean(0) - 0.5) < 4.5 * 0.5 / np.sqrt(N))   # every bit fair
  u = w / 2.0 ** 32
  assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 4.5 / np.sqrt(N)       # counters i, i+1
  assert abs(u.mean() - 0.5) < 4.5 * np.sqrt(1 / 12 / N)


def test_seeds_splits_and_fold_ins_give_independent_streams():
  keys = [init_key(0), init_key(1), *jax.random.split(init_key(0), 3),
          jax.random.fold_in(init_key(0), 1), jax.random.fold_in(init_key(0), 2)]
  streams = np.stack([_words(k, 4096) / 2.0 ** 32 for k in keys])
  corr = np.corrcoef(streams)
  off = corr[~np.eye(len(keys), dtype=bool)]
  assert np.all(np.abs(off) < 4.5 / np.sqrt(4096)), np.round(corr, 3)
  data = np.asarray(jax.random.key_data(jax.random.split(init_key(3), 1000))).reshape(1000, 2)
  assert len({tuple(r) for r in data}) == 1000                          # no two splits alike
  np.testing.assert_array_equal(_words(init_key(5), 64), _words(init_key(5), 64))


def test_a_kernel_follows_lecun_normal_and_the_seed_decides_it():
  import flax.linen as nn
  fan_in, out = 9 * 64, 256
  draw = lambda seed: np.asarray(nn.initializers.lecun_normal()(init_key(seed), (3, 3, 64, out)))
  k = draw(0).ravel()
  assert k.std() == pytest.approx(1 / np.sqrt(fan_in), rel=0.02)
  assert np.abs(k).max() <= 2 / np.sqrt(fan_in) / 0.87962566 + 1e-6     # truncated at 2 std
  law = stats.truncnorm(-2, 2, scale=1 / np.sqrt(fan_in) / 0.87962566)  # Flax's, from scipy
  assert stats.kstest(k, law.cdf).pvalue > 1e-3
  np.testing.assert_array_equal(draw(0), draw(0))
  assert not np.allclose(draw(0), draw(1))


def test_the_train_state_is_drawn_from_the_seed(tiny_config):
  from bluediff.experiment import build_experiment
  exp = build_experiment(tiny_config())
  a, b, c = (exp.init_state(s).params for s in (0, 0, 1))
  for x, y, z in zip(*(jax.tree.leaves(p) for p in (a, b, c))):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    if np.asarray(x).std() > 0:                                         # not a zero/one init
      assert not np.allclose(np.asarray(x), np.asarray(z))
