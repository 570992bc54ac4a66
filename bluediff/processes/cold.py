"""Cold diffusion (Bansal et al. 2023): restoration of any degradation, methods.md §3.

A restoration network R(x_t, t) ~ x0 is trained with |R(D(x0, t), t) - x0|
(L1 by default), t uniform in 1..T. Samplers from an observation x_T:
  alg1    x_{s-1} = D(R(x_s, s), s - 1)                       (naive)
  alg2    x_{s-1} = x_s - D(x0_hat, s) + D(x0_hat, s - 1)      (TACoS, default)
  direct  x0_hat = R(x_T, T)                                   (one shot)
  estimated_noise  (x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) e: noise, blend) alg2 with e
          re-estimated at every step, e_hat = (x_s - sqrt(abar_s) x0_hat) / sqrt(1 - abar_s):
          x_{s-1} = x_s - mix(x0_hat, e_hat, s) + mix(x0_hat, e_hat, s - 1) (DDIM, eta = 0;
          the reference's `sampling_routine='ddim'`, denoising-diffusion-pytorch `gen_sample`)
With `generate=True` the process is unconditional: x_T is drawn from a prior
fitted to what fully degraded training images keep (`cold_prior.py`).
Random degradations use one key per image for the whole trajectory; the
sampler derives those keys from its key exactly as `observe` does, so an
observation and its restoration see the same mask.

The network always sees t / T * time_scale. T comes from the degradation
(`sampling.num_steps` does not apply: every step is taken).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from bluediff import degradations as dg
from bluediff.processes.base import Net, Process

LOSSES = ("l1", "l2")


def per_image_keys(key: jax.Array, batch: int) -> jax.Array:
  """The per-image degradation keys of a batch: observe and sample agree on them."""
  return jax.random.split(key, batch)


@struct.dataclass
class ColdDiffusion(Process):
  samplers = ("alg2", "alg1", "direct", "estimated_noise")
  degradation: Any
  prior: Any = None                      # a MixturePrior when generating (cold_prior.py)
  loss_kind: str = struct.field(pytree_node=False, default="l1")
  time_scale: float = struct.field(pytree_node=False, default=1.0)
  generate: bool = struct.field(pytree_node=False, default=False)

  @property
  def conditional(self) -> bool:
    """Restoration restores observations; generation starts from the prior instead."""
    return not self.generate

  @property
  def num_steps(self) -> int:
    return self.degradation.num_steps

  def check_sampler(self, method: str) -> None:
    super().check_sampler(method)
    if method == "estimated_noise" and not isinstance(self.degradation, dg.AlphaBarMix):
      raise ValueError(f"sampler 'estimated_noise' re-estimates the e of x_t = sqrt(abar_t) x0 + "
                       f"sqrt(1 - abar_t) e: only degradations noise and blend have one, not "
                       f"{type(self.degradation).__name__}")

  def _time(self, s, batch):
    return jnp.broadcast_to(jnp.asarray(s, jnp.float32), (batch,)) / self.num_steps * self.time_scale

  def draws(self, key, x0) -> dict:
    """The loss's randomness: steps t [B] uniform in 1..T, one degradation key per image."""
    k_t, k_d = jax.random.split(key)
    b = x0.shape[0]
    return {"t": jax.random.randint(k_t, (b,), 1, self.num_steps + 1),
            "keys": per_image_keys(k_d, b)}

  def loss_from_draws(self, net: Net, x0, draws):
    """|R(D(x0, t), t) - x0| (mean; squared for loss="l2")."""
    t = draws["t"]
    err = net(self.degradation(x0, t, draws["keys"]), self._time(t, x0.shape[0])) - x0
    return (jnp.mean(jnp.abs(err)) if self.loss_kind == "l1" else jnp.mean(jnp.square(err))), {}

  def loss(self, net: Net, x0, key):
    return self.loss_from_draws(net, x0, self.draws(key, x0))

  def observe(self, x0, key):
    """The fully degraded x_T the samplers start from."""
    b = x0.shape[0]
    return self.degradation(x0, jnp.full((b,), self.num_steps), per_image_keys(key, b))

  def step(self, net: Net, x, s, keys, method: str):
    """x_s -> x_{s-1} for integer s >= 1 (scalar)."""
    b = x.shape[0]
    x0_hat = net(x, self._time(s, b))
    at = lambda u: jnp.full((b,), u, jnp.int32)   # noqa: E731
    if method == "alg1":
      return self.degradation(x0_hat, at(s - 1), keys)
    if method == "estimated_noise":
      d = self.degradation
      e_hat = d.estimate_other(x, x0_hat, at(s))
      return x - d.mix(x0_hat, e_hat, at(s)) + d.mix(x0_hat, e_hat, at(s - 1))
    return x - self.degradation(x0_hat, at(s), keys) + self.degradation(x0_hat, at(s - 1), keys)

  def sample(self, net: Net, key, shape, *, method="alg2", num_steps=0, cond=None):
    self.check_sampler(method)
    self.check_condition(cond)
    b = shape[0]
    if self.generate:
      if self.prior is None:
        raise ValueError("cold generation needs its prior (cold_prior.load_or_fit)")
      key, k_prior = jax.random.split(key)
      if self.prior.kind == "from_degradation":
        cond = self.degradation(jnp.zeros(shape), jnp.full((b,), self.num_steps),
                                per_image_keys(key, b))
      else:
        cond = self.prior.sample(k_prior, shape)
    if method == "direct":
      return net(cond, self._time(self.num_steps, b))
    keys = per_image_keys(key, b)
    t = self.num_steps
    return jax.lax.fori_loop(0, t, lambda i, x: self.step(net, x, t - i, keys, method), cond)


# --- from a config (bluediff.processes.build_process) -----------------------------------
READS_NOISE = False          # the corruption is config.degradation's, not config.noise


def meaning_fields(config) -> tuple[str, ...]:
  """The time input and the degradation's own fields (those its kind reads)."""
  from bluediff.signature import DEGRADATION_FIELDS
  kind = config.degradation.kind
  return ("process.time_scale", "degradation.kind") + tuple(
      f"degradation.{f}" for f in DEGRADATION_FIELDS.get(kind, ()))


def from_config(config, noise=None, num_shards: int = 1) -> ColdDiffusion:
  from bluediff.processes.base import choice
  p, g, size = config.process, config.degradation, config.data.image_size
  targets = None
  if g.kind == "blend":          # the second dataset is data: read here, not by the degradation
    from bluediff.data.sources import load_split
    targets, _ = load_split(g.blend_dataset, g.blend_split, size, g.blend_data_dir)
  return ColdDiffusion(dg.build_degradation(g, size, blend_targets=targets),
                       loss_kind=choice(p.loss, LOSSES, "loss"), time_scale=p.time_scale,
                       generate=p.generate)
