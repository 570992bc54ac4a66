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
    # v(u) = st (1 - u) + en u hits st and en exactly at u = 0, 1 (st + (en - st) u may
    # not), so g(0) = 0 and g(1) = 1 hold to the bit. (No clip: jax.grad of a clip at its
    # bound is halved, and Heun reads g'(1).)
    v = self.start * (1.0 - u) + self.end * u
    lo, hi = self._unnormalised(self.start), self._unnormalised(self.end)
    return (self._unnormalised(v) - lo) / (hi - lo)

  def _unnormalised(self, v):
    """The reference's curve up to an affine map (which the normalisation cancels):
    sigmoid(v / tau) = (1 + tanh(v / 2 tau)) / 2, or cos^2(v pi / 2)^tau."""
    v = jnp.asarray(v, jnp.float32)
    if self.kind == "sigmoid":
      # tanh keeps full relative precision near 0, where sigmoid sits at 0.5: at tau = 1000
      # float32 sigmoid differences lose ~1e-4 of g, tanh differences ~1e-7.
      return jnp.tanh(v / (2.0 * self.tau))
    if self.kind == "cosine":
      # (cos^2)^tau, not cos^(2 tau): float32 cos(pi/2) is -4e-8, and a negative base to a
      # non-integer power is NaN. `gamma_problem` keeps [st, en] where cos^2 is monotone.
      return jnp.square(jnp.cos(v * (jnp.pi / 2))) ** self.tau
    raise ValueError(f"gamma schedule {self.kind!r} is unknown; choose one of {list(GAMMAS)}")

  def derivative(self, u: jax.Array) -> jax.Array:
    return jax.vmap(jax.grad(lambda v: self(v)))(jnp.asarray(u, jnp.float32))


def gamma_problem(kind: str, start: float, end: float, tau: float) -> str | None:
  """Why (st, en, tau) gives no finite, monotone g with g(0) = 0, g(1) = 1 (None: it does).

  sigmoid: any st != en with tau > 0 whose s(st), s(en) differ in float32 (the
  normaliser); cosine: tau > 0 and [st, en] inside one interval [k, k + 1] of
  integers, where cos^2(v pi / 2) is monotone (en = 3 passes its zero at 1).
  """
  import math
  if kind not in ("sigmoid", "cosine"):
    return None
  if not tau > 0:
    return f"gamma_tau={tau} must be positive"
  if kind == "cosine":
    lo_v, hi_v = min(start, end), max(start, end)
    if math.floor(lo_v) != math.floor(hi_v) and hi_v != math.floor(lo_v) + 1:
      return (f"the cosine gamma is not monotone on [gamma_start, gamma_end]=[{start}, {end}]: "
              f"keep both inside one [k, k+1], e.g. [0, 1]")
  if kind == "sigmoid":   # the reference's float32 normaliser s(en) - s(st)
    f = lambda v: float(jax.nn.sigmoid(jnp.float32(v) / jnp.float32(tau)))   # noqa: E731
  else:
    f = lambda v: float(Gamma(kind, start, end, tau)._unnormalised(v))   # noqa: E731
  if f(start) == f(end):
    return (f"the {kind} gamma is flat in float32 over [gamma_start, gamma_end]=[{start}, {end}] "
            f"with tau={tau} (g = 0/0): widen the range or lower tau")
  return None


def gamma_from_config(process_config) -> Gamma:
  p = process_config
  if p.gamma not in GAMMAS:
    raise ValueError(f"config.process.gamma={p.gamma!r} is unknown; choose one of {list(GAMMAS)}")
  return Gamma(p.gamma, p.gamma_start, p.gamma_end, p.gamma_tau, p.gamma_value)
