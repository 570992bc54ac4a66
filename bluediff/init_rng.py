"""The random key that initialises a network: a counter hash that compiles at once.

XLA:CPU compiles each threefry draw on its own (about 0.15 s per draw on this
machine), and a Flax `init` makes two per parameter (a `fold_in` for its name, then
its values): the digits UNet's init took 36 s to compile, longer than a thousand of
its train steps, and every distinct model in the test suite paid it again. The
parameters only need a reproducible, well-mixed draw, so the init key uses this
implementation instead: each output word is a 32-bit integer hash (Wellons'
"lowbias32", two rounds) of its counter and the key. The init compiles in a few
seconds (BUILD_NOTES.md, "Test suite"); everything after it (noise, timesteps,
pairing, sampling) keeps JAX's default threefry keys.

Key data: uint32[2]. Splits and fold-ins rehash the key with the counter, so keys
derived from one seed are distinct and independent in practice (tests/test_init_rng.py
checks the bits' uniformity, their lag correlation and the initialised weights' law).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.extend.random import define_prng_impl


def _mix(x: jax.Array) -> jax.Array:
  """lowbias32: an invertible uint32 -> uint32 hash with full avalanche."""
  x = x ^ (x >> 16)
  x = x * jnp.uint32(0x7FEB352D)
  x = x ^ (x >> 15)
  x = x * jnp.uint32(0x846CA68B)
  return x ^ (x >> 16)


def _words(key: jax.Array, counter: jax.Array) -> jax.Array:
  """One well-mixed uint32 per counter, under `key` (uint32[2])."""
  return _mix(_mix(counter ^ key[0]) + key[1])


def _seed(seed: jax.Array) -> jax.Array:
  s = jnp.asarray(seed)
  lo = jax.lax.convert_element_type(s, jnp.uint32)
  hi = (jax.lax.convert_element_type(s >> 32, jnp.uint32) if s.dtype.itemsize == 8
        else jnp.uint32(0))
  k0 = _mix(lo ^ jnp.uint32(0x9E3779B9))
  return jnp.stack([k0, _mix(hi ^ k0 ^ jnp.uint32(0x85EBCA6B))])


def _split(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  i = jax.lax.iota(jnp.uint32, math.prod(shape))
  pairs = jnp.stack([_words(key, 2 * i), _words(key, 2 * i + 1)], axis=-1)
  return pairs.reshape(*shape, 2)


def _fold_in(key: jax.Array, data: jax.Array) -> jax.Array:
  d = _mix(jax.lax.convert_element_type(data, jnp.uint32) + jnp.uint32(0x632BE5AB))
  k0 = _mix(key[0] ^ d)
  return jnp.stack([k0, _mix(key[1] + k0)])


def _random_bits(key: jax.Array, bit_width: int, shape: tuple[int, ...]) -> jax.Array:
  n = math.prod(shape)
  if bit_width == 64:
    w = _words(key, jax.lax.iota(jnp.uint32, 2 * n)).reshape(2, n).astype(jnp.uint64)
    return ((w[0] << 32) | w[1]).reshape(shape)
  w = _words(key, jax.lax.iota(jnp.uint32, n)).reshape(shape)
  if bit_width == 32:
    return w
  return (w >> (32 - bit_width)).astype({8: jnp.uint8, 16: jnp.uint16}[bit_width])


HASH_IMPL = define_prng_impl(key_shape=(2,), seed=_seed, split=_split,
                             random_bits=_random_bits, fold_in=_fold_in,
                             name="bluediff_counter_hash")


def init_key(seed: int) -> jax.Array:
  """The key for `model.init` (and anything else drawn once at initialisation)."""
  return jax.random.key(seed, impl=HASH_IMPL)
