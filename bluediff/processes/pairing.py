"""In-context stratification: re-pair noises and images inside a batch (methods.md §2.4).

Costs are unsquared pixel L2 distances between each (time-mixed) noise and
each image, as in the reference. `greedy` walks the noises in batch order and
gives each the nearest image not yet taken (the reference's rule; it can cost
more than the identity pairing); `exact` solves the assignment problem
(scipy's Jonker-Volgenant on the host through `jax.pure_callback`). Both
return `perm` with noise i paired to image perm[i].
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

PAIRINGS = ("none", "greedy", "exact")


def pairwise_l2(noise: jax.Array, images: jax.Array) -> jax.Array:
  """[B, ...] x [B, ...] -> unsquared L2 distances [B, B] (float32, clipped at 0)."""
  a = noise.reshape(noise.shape[0], -1).astype(jnp.float32)
  b = images.reshape(images.shape[0], -1).astype(jnp.float32)
  sq = (jnp.sum(a * a, 1)[:, None] + jnp.sum(b * b, 1)[None, :]
        - 2.0 * jnp.dot(a, b.T, precision=jax.lax.Precision.HIGHEST))
  return jnp.sqrt(jnp.maximum(sq, 0.0))


def greedy_assignment(cost: jax.Array) -> jax.Array:
  """perm [B]: noise i (in order) takes the cheapest image still free."""
  b = cost.shape[0]

  def take(i, carry):
    perm, free = carry
    j = jnp.argmin(jnp.where(free, cost[i], jnp.inf))
    return perm.at[i].set(j), free.at[j].set(False)

  perm, _ = jax.lax.fori_loop(0, b, take, (jnp.zeros(b, jnp.int32), jnp.ones(b, bool)))
  return perm


def _lsa(cost: np.ndarray) -> np.ndarray:
  from scipy.optimize import linear_sum_assignment
  rows, cols = linear_sum_assignment(np.asarray(cost, np.float64))
  perm = np.empty(len(rows), np.int32)
  perm[rows] = cols
  return perm


def exact_assignment(cost: jax.Array) -> jax.Array:
  """perm [B] minimising sum_i cost[i, perm[i]] (host callback)."""
  out = jax.ShapeDtypeStruct((cost.shape[0],), jnp.int32)
  return jax.pure_callback(_lsa, out, cost, vmap_method="sequential")


def _pair_one(method: str, noise: jax.Array, images: jax.Array) -> jax.Array:
  cost = pairwise_l2(noise, images)
  if method == "greedy":
    return greedy_assignment(cost)
  if method == "exact":
    return exact_assignment(cost)
  raise ValueError(f"pairing {method!r} is unknown; choose one of {list(PAIRINGS)}")


def pair(method: str, noise: jax.Array, images: jax.Array, groups: int = 1) -> jax.Array:
  """perm [B] for `method` in PAIRINGS ("none": the identity).

  groups > 1 pairs within each of `groups` contiguous blocks of the batch
  (one block per device shard: no cross-device traffic); perm stays global.
  """
  b = images.shape[0]
  if method == "none":
    return jnp.arange(b)
  if groups == 1:
    return _pair_one(method, noise, images)
  if b % groups:
    raise ValueError(f"batch {b} does not split into {groups} pairing groups")
  split = lambda x: x.reshape((groups, b // groups) + x.shape[1:])   # noqa: E731
  local = jax.vmap(lambda n, x: _pair_one(method, n, x))(split(noise), split(images))
  return (local + (jnp.arange(groups) * (b // groups))[:, None]).reshape(b)
