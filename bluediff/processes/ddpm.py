"""DDPM training with DDIM sampling (the baseline), and its blue-noise form (methods.md §2.3).

Discrete time k = 1..T, linear betas, abar_k = prod (1 - beta). Forward:
  x_k = sqrt(abar_k) x0 + sqrt(1 - abar_k) n_k,   n_k = L_k eps
with L_k = I (white; the plain DDPM baseline) or the time-varying
L_k = g_k I + (1 - g_k) L_b, g_k = gamma(k / T), when `noise` is blue.

Heads: f1 ~ L_k eps (eps-prediction); with time-varying noise a second head
f2 ~ (L_b - I) eps (grid-free form of the supplement's sqrt(1 - abar_{k-1})
(L_b - I) eps; the sampler multiplies by sqrt(1 - abar_prev) of its own grid).
DDIM step from k to j < k (eta = 0 deterministic; eta > 0 adds noise):
  x0_hat = (x_k - sqrt(1 - abar_k) f1) / sqrt(abar_k)
  n_j    = f1 + (g_k - g_j) f2                        (L_j eps; = f1 for white)
  x_j    = sqrt(abar_j) x0_hat + sqrt(1 - abar_j - s^2) n_j + s L_j z,
  s      = eta sqrt((1 - abar_j) / (1 - abar_k)) sqrt(1 - abar_k / abar_j).
Head-2 loss weight: see `_weight` (ours; the supplement gives none). `loss` is
`loss_from_draws(net, x0, draws(key, x0))` and `ddim_step` is `ddim_update` of a white z.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bluediff.noise import NoiseOperator
from bluediff.processes.base import Net, Process, mean_squared, per_example
from bluediff.processes.schedules import Gamma


def linear_alpha_bar(num_steps: int = 1000, beta_start: float = 1e-4,
                     beta_end: float = 0.02) -> np.ndarray:
  """abar [T + 1] with abar[0] = 1 (the data) and abar[k] = prod_{i<=k} (1 - beta_i)."""
  betas = np.linspace(beta_start, beta_end, num_steps, dtype=np.float64)
  return np.concatenate([[1.0], np.cumprod(1.0 - betas)])


@struct.dataclass
class DDPM(Process):
  samplers = ("ddim",)
  noise: NoiseOperator                     # L_b (WhiteNoise for the plain baseline)
  gamma: Gamma
  alpha_bar: jax.Array                     # [T + 1], float32
  eta: float = struct.field(pytree_node=False, default=0.0)
  time_varying: bool = struct.field(pytree_node=False, default=False)
  time_scale: float = struct.field(pytree_node=False, default=1.0)

  @property
  def train_steps(self) -> int:
    return self.alpha_bar.shape[0] - 1

  @property
  def noise_digest(self) -> str:
    return f"{self.noise.root}:{self.noise.digest}"

  def output_channels(self, data_channels: int) -> int:
    return data_channels * (2 if self.time_varying else 1)

  def _g(self, k):
    return self.gamma(k / self.train_steps) if self.time_varying else jnp.ones_like(k)

  def mixed(self, eps, blue, k):
    g = per_example(self._g(k))
    return g * eps + (1.0 - g) * blue

  def coloured(self, eps, k):
    """L_k eps for white eps [B, H, W, C] and times k [B]: the noise law at step k (the
    start state at k = T, DDIM's fresh noise at eta > 0)."""
    return self.mixed(eps, self.noise.apply(eps), k) if self.time_varying else self.noise.apply(eps)

  def forward(self, x0, eps, k):
    """x_k for integer-valued k [B] (float), and the noise L_k eps."""
    n = self.coloured(eps, k)
    ab = per_example(self.alpha_bar[k.astype(jnp.int32)])
    return jnp.sqrt(ab) * x0 + jnp.sqrt(1.0 - ab) * n, n

  def draws(self, key, x0) -> dict:
    """The loss's randomness for x0 [B, H, W, C]: k [B] (float, uniform in {1..T}) and white
    eps [B, H, W, C]."""
    k_t, k_eps = jax.random.split(key)
    k = jax.random.randint(k_t, (x0.shape[0],), 1, self.train_steps + 1).astype(jnp.float32)
    return {"k": k, "eps": jax.random.normal(k_eps, x0.shape, x0.dtype)}

  def loss_from_draws(self, net: Net, x0, draws):
    """eps-prediction MSE (+ the weighted head-2 MSE) for the given draws: (loss, aux)."""
    k, eps = draws["k"], draws["eps"]
    c = x0.shape[-1]
    x_k, n = self.forward(x0, eps, k)
    pred = net(x_k, k / self.train_steps * self.time_scale)
    if not self.time_varying:
      return mean_squared(pred - n), {}
    l1 = mean_squared(pred[..., :c] - n)
    direction = self.noise.apply(eps) - eps
    w = self._weight(k)
    l2 = jnp.mean(per_example(w) * jnp.square(pred[..., c:] - direction))
    return l1 + l2, {"loss_eps": l1, "loss_direction": l2}

  def loss(self, net: Net, x0, key):
    return self.loss_from_draws(net, x0, self.draws(key, x0))

  def _weight(self, k):
    """Head 2 enters the step as (g_k - g_{k-1}) sqrt(1 - abar_{k-1}) f2: weight its error by
    the square of that factor per unit of u = k / T, (g_k - g_{k-1})^2 (1 - abar_{k-1}) T
    = (dg/du)^2 (1 - abar_{k-1}) / T, [B] (ours; the supplement gives no weight)."""
    dg = (self._g(k) - self._g(k - 1)) * self.train_steps
    return dg ** 2 * (1.0 - self.alpha_bar[(k - 1).astype(jnp.int32)]) / self.train_steps

  def noise_fields(self, key, shape):
    eps = jax.random.normal(key, shape)
    if not self.time_varying:
      return {"noise": self.noise.apply(eps)}
    blue = self.noise.apply(eps)
    t = self.train_steps
    return {f"noise t={u:g}": self.mixed(eps, blue, jnp.full((shape[0],), u * t))
            for u in (1.0, 0.5, 0.1)}

  def ddim_step(self, net: Net, x, k, j, key):
    """One DDIM step from integer time k to j < k (scalars), x [B, H, W, C]."""
    # eta is static: at eta = 0 no draw, and no noise operator applied only to be scaled by 0
    z = jax.random.normal(key, x.shape) if self.eta > 0 else None
    return self.ddim_update(net, x, k, j, z)

  def ddim_update(self, net: Net, x, k, j, z):
    """`ddim_step` for its white draw z [B, H, W, C] (pure; z = 0 or None gives the
    deterministic part, and the fresh noise is s L_j z)."""
    c = x.shape[-1]
    ab_k, ab_j = self.alpha_bar[k], self.alpha_bar[j]
    f = net(x, jnp.full((x.shape[0],), k / self.train_steps * self.time_scale))
    f1 = f[..., :c]
    x0_hat = (x - jnp.sqrt(1.0 - ab_k) * f1) / jnp.sqrt(ab_k)
    n_j = f1
    if self.time_varying:
      dg = self._g(jnp.asarray(k, jnp.float32)) - self._g(jnp.asarray(j, jnp.float32))
      n_j = f1 + dg * f[..., c:]
    s = self.eta * jnp.sqrt((1.0 - ab_j) / (1.0 - ab_k)) * jnp.sqrt(1.0 - ab_k / ab_j)
    out = jnp.sqrt(ab_j) * x0_hat + jnp.sqrt(jnp.maximum(1.0 - ab_j - s ** 2, 0.0)) * n_j
    if z is None:
      return out
    z = self.coloured(z, jnp.full((x.shape[0],), j, jnp.float32))
    return out + s * z

  def sample(self, net: Net, key, shape, *, method="ddim", num_steps=50, cond=None):
    self.check_sampler(method)
    self.check_condition(cond)
    t = self.train_steps
    grid = jnp.round(jnp.linspace(0, t, num_steps + 1)).astype(jnp.int32)   # 0 = k_0 < ... < k_n = T
    k_init, k_loop = jax.random.split(key)
    # x_T ~ L_T eps, the training law at k = T (blue where g(1) < 1), not white noise
    x = self.coloured(jax.random.normal(k_init, shape), jnp.full((shape[0],), t, jnp.float32))

    def body(i, x):
      return self.ddim_step(net, x, grid[num_steps - i], grid[num_steps - i - 1],
                            jax.random.fold_in(k_loop, i))
    return jax.lax.fori_loop(0, num_steps, body, x)


# --- from a config (bluediff.processes.build_process) -----------------------------------
READS_NOISE = True


def meaning_fields(config) -> tuple[str, ...]:
  """The config fields that change what a DDPM network sees or predicts (the
  time-varying variant also reads gamma; DDPM learns no gamma)."""
  from bluediff.processes.blue import GAMMA_FIELDS
  fields = ("time_scale", "train_steps", "beta_start", "beta_end", "ddpm_time_varying")
  if config.process.ddpm_time_varying:
    fields += GAMMA_FIELDS[:-1]
  return tuple(f"process.{f}" for f in fields)


def from_config(config, noise: NoiseOperator, num_shards: int = 1) -> DDPM:
  from bluediff.processes.schedules import gamma_from_config
  p = config.process
  abar = jnp.asarray(linear_alpha_bar(p.train_steps, p.beta_start, p.beta_end), jnp.float32)
  return DDPM(noise, gamma_from_config(p), abar, eta=p.ddim_eta,
              time_varying=p.ddpm_time_varying, time_scale=p.time_scale)
