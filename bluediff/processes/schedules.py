"""gamma(u): the white fraction of time-varying noise, 0 at the data end, 1 at the noise end.

methods.md §2.2. Every schedule is normalised to gamma(0) = 0, gamma(1) = 1
(except "constant"), is a pure jnp function of u in [0, 1], and its
derivative (for the 2nd-order sampler) comes from `jax.grad`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

GAMMAS = ("sigmoid", "linear", "cosine", "constant")


@struct.dataclass
class Gamma:
  """kind is static; start/end/tau/value are leaves, so they can be learned (traced)."""
  kind: str = struct.field(pytree_node=False, default="sigmoid")
  start: float = 0.0        # st
  end: float = 3.0          # en
  tau: float = 1000.0
  value: float = 1.0        # "constant": 1 white, 0 blue

  # The official code's clamps for learned (st, en, tau).
  LEARN_RANGES = {"start": (-3.0, -0.01), "end": (0.01, 3.0), "tau": (0.01, 10.0)}

  def learnable_params(self) -> dict:
    return {k: jnp.clip(jnp.asarray(getattr(self, k), jnp.float32), *r)
            for k, r in self.LEARN_RANGES.items()}

  def with_params(self, params: dict) -> "Gamma":
    return self.replace(**params)

  @classmethod
  def clamp(cls, params: dict) -> dict:
    return {k: jnp.clip(v, *cls.LEARN_RANGES[k]) for k, v in params.items()}

  def __call__(self, u: jax.Array) -> jax.Array:
    u = jnp.asarray(u, jnp.float32)
    if self.kind == "linear":
      return u
    if self.kind == "constant":
      return jnp.full_like(u, self.value)
    if self.kind == "sigmoid":
      s = lambda v: jax.nn.sigmoid(v / self.tau)          # noqa: E731
      lo, hi = s(self.start), s(self.end)
      return (s(self.start + (self.end - self.start) * u) - lo) / (hi - lo)
    if self.kind == "cosine":
      c = lambda v: jnp.cos(v * jnp.pi / 2) ** (2 * self.tau)   # noqa: E731
      lo, hi = c(self.start), c(self.end)
      return (c(self.start + (self.end - self.start) * u) - lo) / (hi - lo)
    raise ValueError(f"gamma schedule {self.kind!r} is unknown; choose one of {list(GAMMAS)}")

  def derivative(self, u: jax.Array) -> jax.Array:
    return jax.vmap(jax.grad(lambda v: self(v)))(jnp.asarray(u, jnp.float32))


def gamma_from_config(process_config) -> Gamma:
  p = process_config
  if p.gamma not in GAMMAS:
    raise ValueError(f"config.process.gamma={p.gamma!r} is unknown; choose one of {list(GAMMAS)}")
  return Gamma(p.gamma, p.gamma_start, p.gamma_end, p.gamma_tau, p.gamma_value)
