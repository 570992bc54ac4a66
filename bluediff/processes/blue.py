"""Blue-noise diffusion (Huang et al. 2024): IADB with time-varying noise, methods.md §2.

Noise operator L_t = g_t I + (1 - g_t) L_b (the same eps feeds both parts;
`blend="vp"` divides by the per-pixel std so every pixel keeps variance 1).
Forward: x_t = a_t L_t eps + (1 - a_t) x0 with a_t = t, t in [0, 1]
(t = 1: x_1 = L_1 eps, white only when g_1 = 1; samplers start there).

Two heads (2C output channels):
  f1 ~ x0 - L_t eps                                  (both parametrisations)
  f2 ~ (L_b - I) eps          "grid_free" (default)  sampler multiplies by a_{k-1}
  f2 ~ a_{k-1} (L_b - I) eps  "paper"                tied to the training grid T
Loss: |f1 - .|^2 + w_k |f2 - .|^2 with w_k = (g_k - g_{k-1}) / (a_k - a_{k-1}),
times a_{k-1}^2 in the grid-free form (means over pixels and batch; see
BUILD_NOTES for the scale). Euler (Eq. 7) on a uniform grid of n steps:
  x_{k-1} = x_k + (a_k - a_{k-1}) f1 + (g_k - g_{k-1}) a_{k-1} f2   (grid-free)
which is exact for the linear blend with the exact oracle, at any n. Heun
integrates dx/dt = -f1 - g'(t) t f2. One head (`heads=1`): the network
predicts x0 - L_k eps + a_{k-1} (L_b - I) eps (exact when g = a).
`loss` is `loss_from_draws(net, x0, draws(key, x0))`: the draws (k, eps and the pairing
permutation) apart from a pure function of them (numpy oracles: tests/test_oracles.py).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from bluediff.noise import NoiseOperator
from bluediff.processes import pairing as pairing_lib
from bluediff.processes.base import (Net, Process, mean_squared, per_example,
                                     with_condition)
from bluediff.processes.iadb import heun_step, integrate_ode, uniform_grid
from bluediff.processes.schedules import Gamma

PARAMETRISATIONS = ("grid_free", "paper")
BLENDS = ("linear", "vp")


@struct.dataclass
class BlueNoiseDiffusion(Process):
  samplers = ("euler", "heun")
  noise: NoiseOperator                       # L_b
  gamma: Gamma
  blend: str = struct.field(pytree_node=False, default="linear")
  parametrisation: str = struct.field(pytree_node=False, default="grid_free")
  heads: int = struct.field(pytree_node=False, default=2)
  train_steps: int = struct.field(pytree_node=False, default=1000)
  antithetic: bool = struct.field(pytree_node=False, default=True)
  pairing: str = struct.field(pytree_node=False, default="none")
  pairing_groups: int = struct.field(pytree_node=False, default=1)   # > 1: per device shard
  time_scale: float = struct.field(pytree_node=False, default=1.0)
  sr_factor: int = struct.field(pytree_node=False, default=0)   # > 0: super-resolution
  learn_gamma: bool = struct.field(pytree_node=False, default=False)


  # learnable (st, en, tau): trained jointly with the network (methods.md §2.2)
  def init_process_params(self):
    return {"gamma": self.gamma.learnable_params()} if self.learn_gamma else {}

  def bind(self, process_params):
    if not self.learn_gamma or not process_params:
      return self
    return self.replace(gamma=self.gamma.with_params(process_params["gamma"]))

  def project(self, process_params):
    if not self.learn_gamma:
      return process_params
    return {"gamma": Gamma.clamp(process_params["gamma"])}


  @property
  def noise_digest(self) -> str:
    return f"{self.noise.root}:{self.noise.digest}"

  def output_channels(self, data_channels: int) -> int:
    return data_channels * self.heads

  # --- the noise operator L_t -------------------------------------------------
  def mixed(self, eps: jax.Array, blue: jax.Array, g: jax.Array) -> jax.Array:
    """L_t eps from eps, L_b eps and g [B] (per example)."""
    g = per_example(g)
    n = g * eps + (1.0 - g) * blue
    if self.blend == "vp":
      n = n / jnp.sqrt(self.mixed_variance(g, eps.shape))
    return n

  def mixed_variance(self, g: jax.Array, shape) -> jax.Array:
    """Per-pixel variance of the linear blend, [B, H, W, 1]: (1-g)^2 + g^2 + 2 g (1-g) diag(L_b)
    (the blue part has unit variance; diag varies per pixel for the Cholesky root)."""
    diag = self.noise.diagonal(shape[1], shape[2])[None, :, :, None]
    return (1.0 - g) ** 2 + g ** 2 + 2.0 * g * (1.0 - g) * diag

  def direction(self, eps: jax.Array, blue: jax.Array, g: jax.Array) -> jax.Array:
    """Head 2's (grid-free) target -dL_t/dg eps: (L_b - I) eps for the linear blend; for the
    VP blend, L = (g I + (1-g) L_b) / sqrt(V) gives (L_b - I) eps / sqrt(V) + L_t eps V' / 2V."""
    if self.blend != "vp":
      return blue - eps
    g = per_example(g)
    v = self.mixed_variance(g, eps.shape)
    d = self.noise.diagonal(eps.shape[1], eps.shape[2])[None, :, :, None]
    dv = -2.0 * (1.0 - g) + 2.0 * g + 2.0 * d * (1.0 - 2.0 * g)
    n = (g * eps + (1.0 - g) * blue) / jnp.sqrt(v)
    return (blue - eps) / jnp.sqrt(v) + n * dv / (2.0 * v)

  # --- training -----------------------------------------------------------------
  def _timesteps(self, key, batch: int) -> jax.Array:
    """k in {1..T} [B]; antithetic: the second half is T + 1 - k of the first."""
    t = self.train_steps
    if not self.antithetic:
      return jax.random.randint(key, (batch,), 1, t + 1)
    half = jax.random.randint(key, ((batch + 1) // 2,), 1, t + 1)
    return jnp.concatenate([half, t + 1 - half])[:batch]

  def targets(self, x0, eps, blue, k):
    """(network input x_t, time fed to the net, target [B,H,W,heads*C], head-2 weight [B])."""
    t_steps = self.train_steps
    a_k, a_prev = k / t_steps, (k - 1) / t_steps
    g_k, g_prev = self.gamma(a_k), self.gamma(a_prev)
    n_k = self.mixed(eps, blue, g_k)
    x_t = per_example(a_k) * n_k + (1.0 - per_example(a_k)) * x0
    direction = self.direction(eps, blue, g_k)              # (L_b - I) eps when linear
    w = (g_k - g_prev) / (a_k - a_prev)
    if self.heads == 1:
      return x_t, a_k, x0 - n_k + per_example(a_prev) * direction, w
    if self.parametrisation == "paper":
      head2 = per_example(a_prev) * direction
    else:
      head2, w = direction, w * a_prev ** 2
    return x_t, a_k, jnp.concatenate([x0 - n_k, head2], axis=-1), w

  def draws(self, key, x0) -> dict:
    """The loss's randomness for clean images x0 [B, H, W, C]: k [B] (float, in {1..T}),
    white eps [B, H, W, C], and perm [B] (noise i is paired with image perm[i]; the
    identity without pairing). perm depends on x0 and the other draws, not on the net."""
    k_t, k_eps = jax.random.split(key)
    b = x0.shape[0]
    k = self._timesteps(k_t, b).astype(jnp.float32)
    eps = jax.random.normal(k_eps, x0.shape, x0.dtype)
    if self.pairing == "none":
      perm = jnp.arange(b)
    else:   # pair the time-mixed noise L_t eps, each keeping its own t (methods.md §2.4)
      noise_t = self.mixed(eps, self.noise.apply(eps), self.gamma(k / self.train_steps))
      perm = pairing_lib.pair(self.pairing, noise_t, x0, self.pairing_groups)
    return {"k": k, "eps": eps, "perm": perm}

  def loss_from_draws(self, net: Net, x0, draws):
    """Eq. 8 for the given draws (a pure function of net, x0 and draws): (loss, aux)."""
    k, eps, perm = draws["k"], draws["eps"], draws["perm"]
    c = x0.shape[-1]
    blue = self.noise.apply(eps)
    aux = {}
    if self.pairing != "none":
      noise_t = self.mixed(eps, blue, self.gamma(k / self.train_steps))
      # mean unsquared distance saved per example (noise i was paired with image i before)
      before = jnp.sqrt(jnp.sum(jnp.square(noise_t - x0), axis=(1, 2, 3)))
      after = jnp.sqrt(jnp.sum(jnp.square(noise_t - x0[perm]), axis=(1, 2, 3)))
      aux["pairing_gain"] = jnp.mean(before - after)
    x0 = x0[perm]
    x_t, t, target, w = self.targets(x0, eps, blue, k)
    pred = with_condition(net, self.observe(x0))(x_t, t * self.time_scale)
    if self.heads == 1:
      return mean_squared(pred - target), aux
    l1 = mean_squared(pred[..., :c] - target[..., :c])
    l2 = jnp.mean(per_example(w) * jnp.square(pred[..., c:] - target[..., c:]))
    return l1 + l2, {"loss_x0": l1, "loss_direction": l2, **aux}

  def loss(self, net: Net, x0, key):
    return self.loss_from_draws(net, x0, self.draws(key, x0))

  # --- sampling -----------------------------------------------------------------
  def noise_fields(self, key, shape):
    eps = jax.random.normal(key, shape)
    blue = self.noise.apply(eps)
    return {f"noise t={u:g}": self.mixed(eps, blue, jnp.full((shape[0],), self.gamma(u)))
            for u in (1.0, 0.5, 0.1)}

  def start_state(self, key, shape) -> jax.Array:
    """x_1 = L_1 eps [B, H, W, C]: the training law at t = 1 (blue where g(1) < 1, e.g.
    gamma="constant" with value 0), never plain white noise."""
    eps = jax.random.normal(key, shape)
    return self.mixed(eps, self.noise.apply(eps), jnp.full((shape[0],), self.gamma(1.0)))

  def velocity(self, net: Net):
    """dx/dt = -f1 - g'(t) t f2 (grid-free two heads; t [B]), the ODE Heun integrates."""
    self._check_heun()

    def velocity(x, t):
      c = x.shape[-1]
      f = net(x, t * self.time_scale)
      return -f[..., :c] - per_example(self.gamma.derivative(t) * t) * f[..., c:]
    return velocity

  def _check_heun(self):
    if self.heads != 2 or self.parametrisation != "grid_free":
      raise ValueError("the heun sampler needs the grid-free two-head parametrisation")

  def euler_step(self, net: Net, x, a_k, a_prev):
    """Eq. 7 from a_k to a_prev < a_k (scalars), x [B, H, W, C]."""
    c = x.shape[-1]
    f = net(x, jnp.full((x.shape[0],), a_k) * self.time_scale)
    if self.heads == 1:
      return x + (a_k - a_prev) * f
    dg = self.gamma(a_k) - self.gamma(a_prev)
    scale = a_prev if self.parametrisation == "grid_free" else 1.0
    return x + (a_k - a_prev) * f[..., :c] + dg * scale * f[..., c:]

  def step(self, net: Net, x, a, a_prev, method="euler"):
    """One sampler step from a to a_prev < a (scalars), x [B, H, W, C]."""
    self.check_sampler(method)
    if method == "heun":
      return heun_step(self.velocity(net), x, a, a_prev)
    return self.euler_step(net, x, a, a_prev)

  def sample(self, net: Net, key, shape, *, method="euler", num_steps=250, cond=None):
    self.check_sampler(method)
    self.check_condition(cond)
    net = with_condition(net, cond)
    x = self.start_state(key, shape)
    grid = uniform_grid(num_steps)
    if method == "heun":
      return integrate_ode(self.velocity(net), x, grid, "heun")

    def euler(i, x):
      return self.euler_step(net, x, grid[num_steps - i], grid[num_steps - i - 1])
    return jax.lax.fori_loop(0, num_steps, euler, x)


# --- from a config (bluediff.processes.build_process) -----------------------------------
READS_NOISE = True
GAMMA_FIELDS = ("gamma", "gamma_start", "gamma_end", "gamma_tau", "gamma_value", "learn_gamma")


def meaning_fields(config) -> tuple[str, ...]:
  """The config fields that change what a blue-noise network sees or predicts."""
  return tuple(f"process.{f}" for f in ("time_scale", "sr_factor", "blend", "parametrisation",
                                        "heads", "train_steps") + GAMMA_FIELDS)


def from_config(config, noise: NoiseOperator, num_shards: int = 1) -> BlueNoiseDiffusion:
  """num_shards: device shards of the batch (pairing_scope="shard" pairs within each)."""
  from bluediff.processes.base import choice
  from bluediff.processes.schedules import gamma_from_config
  p = config.process
  scope = choice(p.pairing_scope, ("global", "shard"), "pairing_scope")
  return BlueNoiseDiffusion(
      noise, gamma_from_config(p),
      blend=choice(p.blend, BLENDS, "blend"),
      parametrisation=choice(p.parametrisation, PARAMETRISATIONS, "parametrisation"),
      heads=choice(p.heads, (1, 2), "heads"), train_steps=p.train_steps,
      antithetic=p.antithetic, pairing=choice(p.pairing, pairing_lib.PAIRINGS, "pairing"),
      pairing_groups=num_shards if scope == "shard" else 1,
      time_scale=p.time_scale, sr_factor=p.sr_factor, learn_gamma=p.learn_gamma)
