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
    st, en, tau = self.start, self.end, self.tau
    v = st * (1.0 - u) + en * u
    if self.kind == "sigmoid":
      # g = (s(v) - s(st)) / (s(en) - s(st)) through s(a) - s(b) = s(a) s(-b) (-expm1(b - a)):
      # g = s(v) / s(en) * expm1((st - v) / tau) / expm1((st - en) / tau), exact to float32
      # at both ends (plain sigmoid differences lose 1e-4 of g at tau = 1000 and all of it
      # in the tails; `gamma_problem` keeps st < en, so no exp overflows).
      ratio = jnp.exp(jax.nn.log_sigmoid(v / tau) - jax.nn.log_sigmoid(en / tau))
      return ratio * jnp.expm1((st - v) / tau) / jnp.expm1((st - en) / tau)
    if self.kind == "cosine":
      lo, hi = self._cosine(st), self._cosine(en)
      return (self._cosine(v) - lo) / (hi - lo)
    raise ValueError(f"gamma schedule {self.kind!r} is unknown; choose one of {list(GAMMAS)}")

  def _cosine(self, v):
    """The reference's |cos(v pi / 2)|^(2 tau), written as (+-sin((m - v) pi / 2))^(2 tau)
    with m the odd endpoint of the [k, k + 1] holding [st, en] (`gamma_problem`): the base
    is >= 0 on the interval and exactly 0 at m. (float32 cos(pi / 2) is -4e-8: a negative
    base to a non-integer power is NaN, and its slope there has the wrong sign.)"""
    v = jnp.asarray(v, jnp.float32)
    lo = jnp.minimum(self.start, self.end)
    k = jnp.floor(lo)
    m = jnp.where(jnp.mod(k, 2.0) == 1.0, k, k + 1.0)
    sign = jnp.where(m > lo, 1.0, -1.0)
    return (sign * jnp.sin((m - v) * (jnp.pi / 2))) ** (2.0 * self.tau)

  def derivative(self, u: jax.Array) -> jax.Array:
    return jax.vmap(jax.grad(lambda v: self(v)))(jnp.asarray(u, jnp.float32))


def gamma_problem(kind: str, start: float, end: float, tau: float) -> str | None:
  """Why (st, en, tau) gives no finite, monotone g with g(0) = 0, g(1) = 1 (None: it does).

  sigmoid: st < en, tau > 0, and s(st), s(en) different in float32 (the reference's
  normaliser; equal, it divides 0 by 0); cosine: tau > 0 and [st, en] inside one
  interval [k, k + 1] of integers, where cos^2(v pi / 2) is monotone (en = 3 passes its
  zero at 1), with |cos| different at the two ends in float32.
  """
  import math
  if kind not in ("sigmoid", "cosine"):
    return None
  if not tau > 0:
    return f"gamma_tau={tau} must be positive"
  if kind == "sigmoid" and not start < end:
    return f"the sigmoid gamma needs gamma_start < gamma_end (got {start}, {end})"
  if kind == "cosine":
    lo_v, hi_v = min(start, end), max(start, end)
    if math.floor(lo_v) != math.floor(hi_v) and hi_v != math.floor(lo_v) + 1:
      return (f"the cosine gamma is not monotone on [gamma_start, gamma_end]=[{start}, {end}]: "
              f"keep both inside one [k, k+1], e.g. [0, 1]")
  if kind == "sigmoid":
    f = lambda v: float(jax.nn.sigmoid(jnp.float32(v) / jnp.float32(tau)))   # noqa: E731
  else:
    f = lambda v: float(Gamma(kind, start, end, tau)._cosine(v))   # noqa: E731
  if f(start) == f(end):
    return (f"the {kind} gamma is flat in float32 over [gamma_start, gamma_end]=[{start}, {end}] "
            f"with tau={tau} (g = 0/0): widen the range or lower tau")
  return None


def gamma_from_config(process_config) -> Gamma:
  p = process_config
  if p.gamma not in GAMMAS:
    raise ValueError(f"config.process.gamma={p.gamma!r} is unknown; choose one of {list(GAMMAS)}")
  return Gamma(p.gamma, p.gamma_start, p.gamma_end, p.gamma_tau, p.gamma_value)
