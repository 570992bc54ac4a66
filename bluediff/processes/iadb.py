"""IADB: iterative alpha-(de)blending (Heitz et al. 2023), methods.md §1.

Forward x_a = (1 - a) x0 + a eps with a ~ U[0, 1] (a = noise weight). The
network D(x_a, a) predicts x0 - eps, the direction from noise to data, and
sampling integrates dx/da = -D from a = 1 (noise) down to a = 0 (data).
`loss` is `loss_from_draws(net, x0, draws(key, x0))`: the random draws apart from a
pure function of them (checked against numpy in tests/test_oracles.py).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from bluediff.noise import NoiseOperator
from bluediff.processes.base import (Net, Process, mean_squared, per_example,
                                     with_condition)


ALPHA_SAMPLINGS = ("uniform", "logit_normal")


def sample_alpha(key, n: int, law: str = "uniform") -> jax.Array:
  """n training noise weights [n] in (0, 1): U[0, 1) (IADB) or sigmoid(N(0, 1))
  ("logit_normal": density peaked at 1/2, thin tails towards pure data and pure noise)."""
  if law == "logit_normal":
    return jax.nn.sigmoid(jax.random.normal(key, (n,)))
  return jax.random.uniform(key, (n,))


def uniform_grid(num_steps: int) -> jax.Array:
  """Times a_T = 1 > ... > a_0 = 0 as a [num_steps + 1] array, a_k = k / T."""
  return jnp.linspace(0.0, 1.0, num_steps + 1)


def euler_step(velocity, x: jax.Array, t, t_prev) -> jax.Array:
  """One Euler step of dx/dt = velocity(x, t) from t to t_prev (scalars; x [B, ...])."""
  at = lambda u: jnp.full((x.shape[0],), u)   # noqa: E731
  return x + (t_prev - t) * velocity(x, at(t))


def heun_step(velocity, x: jax.Array, t, t_prev) -> jax.Array:
  """One Heun (RK2 / trapezoidal) step from t to t_prev: the mean of the velocities at both
  ends, the second taken after an Euler predictor (NFE = 2)."""
  at = lambda u: jnp.full((x.shape[0],), u)   # noqa: E731
  dt = t_prev - t                                 # negative: towards the data
  v1 = velocity(x, at(t))
  v2 = velocity(x + dt * v1, at(t_prev))
  return x + dt * 0.5 * (v1 + v2)


def integrate_ode(velocity, x: jax.Array, grid: jax.Array, method: str) -> jax.Array:
  """Integrates dx/dt = velocity(x, t) from t = grid[-1] down to t = grid[0].

  velocity(x, t) takes t as [B]. "euler" is the IADB update (NFE = n);
  "heun" is the 2nd-order (RK2 / trapezoidal) variant, with a plain Euler
  last step as in EDM, since the velocity at t = 0 is undefined for the
  processes here (NFE = 2n - 1). Runs as one `fori_loop`.
  """
  n = grid.shape[0] - 1
  euler = lambda k, x: euler_step(velocity, x, grid[k], grid[k - 1])   # noqa: E731
  heun = lambda k, x: heun_step(velocity, x, grid[k], grid[k - 1])     # noqa: E731
  if method == "euler":
    return jax.lax.fori_loop(0, n, lambda i, x: euler(n - i, x), x)
  x = jax.lax.fori_loop(0, n - 1, lambda i, x: heun(n - i, x), x)
  return euler(1, x)


@struct.dataclass
class IADB(Process):
  """Alpha-blending between data and (any) noise. noise: (key, shape) -> array."""

  samplers = ("euler", "heun")
  noise: NoiseOperator
  time_scale: float = struct.field(pytree_node=False, default=1.0)
  sr_factor: int = struct.field(pytree_node=False, default=0)   # > 0: super-resolution
  alpha_sampling: str = struct.field(pytree_node=False, default="uniform")


  @property
  def noise_digest(self) -> str:
    return self.noise.digest

  def corrupt(self, x0, alpha, eps):
    """x_a = (1 - a) x0 + a eps. alpha: [B]."""
    a = per_example(alpha)
    return (1.0 - a) * x0 + a * eps

  def noise_fields(self, key, shape):
    return {"noise": self.noise(key, shape)}

  # --- training: random draws, then a pure function of them ----------------------
  def draws(self, key, x0) -> dict:
    """The loss's randomness for clean images x0 [B, H, W, C]: alpha [B] ~ U[0, 1) (or
    the law `alpha_sampling` names) and white eps [B, H, W, C] (the noise is L eps)."""
    k_alpha, k_eps = jax.random.split(key)
    return {"alpha": sample_alpha(k_alpha, x0.shape[0], self.alpha_sampling),
            "eps": jax.random.normal(k_eps, x0.shape)}

  def loss_from_draws(self, net: Net, x0, draws):
    """mean |D(x_a, a) - (x0 - L eps)|^2 for the given draws: (loss, aux)."""
    alpha, eps = draws["alpha"], self.noise.apply(draws["eps"])
    net = with_condition(net, self.observe(x0))
    pred = net(self.corrupt(x0, alpha, eps), alpha * self.time_scale)
    return mean_squared(pred - (x0 - eps)), {}

  def loss(self, net: Net, x0, key):
    return self.loss_from_draws(net, x0, self.draws(key, x0))

  # --- sampling -----------------------------------------------------------------
  def velocity(self, net: Net):
    """dx/da = eps - x0 = -D(x, a): the ODE the samplers integrate from a = 1 to 0."""
    return lambda x, a: -net(x, a * self.time_scale)

  def step(self, net: Net, x, a, a_prev, method="euler"):
    """One sampler step from noise weight a to a_prev < a (scalars), x [B, H, W, C]."""
    self.check_sampler(method)
    return (euler_step if method == "euler" else heun_step)(self.velocity(net), x, a, a_prev)

  def sample(self, net: Net, key, shape, *, method="euler", num_steps=128, cond=None):
    self.check_sampler(method)
    self.check_condition(cond)
    net = with_condition(net, cond)
    x = self.noise(key, shape)
    return integrate_ode(self.velocity(net), x, uniform_grid(num_steps), method)


# --- from a config (bluediff.processes.build_process) -----------------------------------
READS_NOISE = True


def meaning_fields(config) -> tuple[str, ...]:
  """The config fields that change what an IADB network sees or predicts."""
  return ("process.time_scale", "process.sr_factor")


def from_config(config, noise: NoiseOperator, num_shards: int = 1) -> IADB:
  from bluediff.processes.base import choice
  p = config.process
  return IADB(noise, time_scale=p.time_scale, sr_factor=p.sr_factor,
              alpha_sampling=choice(p.alpha_sampling, ALPHA_SAMPLINGS, "alpha_sampling"))
