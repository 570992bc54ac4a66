"""Pure builders of the jitted functions the loop calls: init, train step, sampler.

Everything method-specific comes in through `process` (loss and sampler), so
these are the same for every method. Randomness: one base key; step s uses
fold_in(base, s), and every random array is drawn at the GLOBAL batch shape
inside jit, so its values do not depend on the device count.
"""
from __future__ import annotations


import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from bluediff import sharding
from bluediff.processes import Process
from bluediff.state import TrainState


def learning_rate(optim_config, num_steps: int):
  """The lr at each step: a linear warmup over `warmup_steps` to `lr`, then constant
  (`schedule="constant"`) or a half cosine down to `lr * final_lr_factor` at step
  `num_steps` (`schedule="cosine"`), constant after it. A float when nothing varies."""
  oc = optim_config
  if oc.schedule == "constant":
    return oc.lr if oc.warmup_steps <= 0 else optax.linear_schedule(0.0, oc.lr, oc.warmup_steps)
  warmup = max(int(oc.warmup_steps), 0)
  return optax.warmup_cosine_decay_schedule(
      0.0 if warmup else oc.lr, oc.lr, warmup, max(int(num_steps), warmup + 1),
      end_value=oc.lr * oc.final_lr_factor)


def make_optimizer(optim_config, num_steps: int) -> optax.GradientTransformation:
  """AdamW with global-norm clipping and the lr of `learning_rate` (num_steps: the
  run's training.num_steps, where a cosine schedule ends)."""
  oc = optim_config
  lr = learning_rate(oc, num_steps)
  parts = [optax.clip_by_global_norm(oc.grad_clip)] if oc.grad_clip > 0 else []
  parts.append(optax.adamw(lr, b1=oc.b1, b2=oc.b2, weight_decay=oc.weight_decay))
  return optax.chain(*parts)


def init_state(model: nn.Module, optimizer, key: jax.Array, image_shape,
               process: Process | None = None, process_optimizer=None) -> TrainState:
  """A fresh state. image_shape: [B, H, W, C_in] of the network input.

  Learnable process parameters (if the process has any) get their own optimizer.
  """
  x = jnp.zeros(image_shape, jnp.float32)
  t = jnp.zeros(image_shape[:1], jnp.float32)
  params = model.init({"params": key}, x, t)["params"]
  pparams = process.init_process_params() if process is not None else {}
  popt = process_optimizer.init(pparams) if pparams else {}
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=optimizer.init(params), ema_params=params,
                    process_params=pparams, process_opt_state=popt)


def ema_update(ema, params, step, decay: float):
  """EMA with the usual warm-up: decay_s = min(decay, (1 + s) / (10 + s))."""
  d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
  return jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, ema, params)


def ema_step(ema, params, step, decay: float, every: int = 1, start: int = 0):
  """The EMA after update number `step` (0-based, counted before the increment) gave `params`.

  start == 0: ema_update (with its warm-up) on every step s with s % every == 0.
  start > 0: the cold-diffusion reference's Trainer (step_ema / reset_parameters):
  on steps s with s % every == 0, ema = params while s < start, else
  ema = decay * ema + (1 - decay) * params (constant decay: the reset replaces the
  warm-up); other steps keep ema. decay <= 0: ema = params.
  """
  if decay <= 0:
    return params
  if start == 0:
    new = ema_update(ema, params, step, decay)
  else:
    new = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)
    new = jax.tree.map(lambda n, p: jnp.where(step < start, p, n), new, params)
  if every > 1:
    new = jax.tree.map(lambda n, e: jnp.where(step % every == 0, n, e), new, ema)
  return new


def make_train_step(model: nn.Module, optimizer, ema_decay: float, process_optimizer=None,
                    skip_nonfinite: bool = False, ema_every: int = 1, ema_start: int = 0):
  """(process, state, images [B,H,W,C], base_key) -> (state, metrics). Pure; jit it.

  skip_nonfinite: a step whose loss or gradients are not finite leaves the state
  as it was (only the step counter advances) and reports `skipped` = 1.
  ema_every, ema_start: see `ema_step` (defaults: every step from step 0).
  """
  if ema_every < 1 or ema_start < 0:
    raise ValueError(f"ema_every={ema_every} must be >= 1 and ema_start={ema_start} >= 0")

  def train_step(process: Process, state: TrainState, images: jax.Array, base_key: jax.Array):
    key = jax.random.fold_in(base_key, state.step)
    k_process, k_dropout = jax.random.split(key)

    def loss_fn(params, process_params):
      net = lambda x, t: model.apply({"params": params}, x, t, train=True,
                                     rngs={"dropout": k_dropout})
      return process.bind(process_params).loss(net, images, k_process)

    (loss, aux), (grads, pgrads) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
        state.params, state.process_params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = ema_step(state.ema_params, params, state.step, ema_decay, ema_every, ema_start)
    metrics = {"loss": loss, "grad_norm": optax.global_norm(grads), **aux}
    pparams, popt = state.process_params, state.process_opt_state
    if jax.tree.leaves(pparams):           # learnable process parameters, if any
      pupd, popt = process_optimizer.update(pgrads, popt, pparams)
      pparams = process.project(optax.apply_updates(pparams, pupd))
      metrics.update({f"process/{'/'.join(str(getattr(k, 'key', k)) for k in path)}": v
                      for path, v in jax.tree_util.tree_leaves_with_path(pparams)})
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              ema_params=ema, process_params=pparams, process_opt_state=popt)
    if skip_nonfinite:
      ok = jnp.isfinite(loss) & jnp.isfinite(optax.global_norm(grads))
      kept = state.replace(step=state.step + 1)
      new_state = jax.tree.map(lambda new, old: jnp.where(ok, new, old), new_state, kept)
      metrics["skipped"] = 1.0 - ok.astype(jnp.float32)
    return new_state, metrics

  return train_step


def jit_train_step(train_step, mesh, state_sharding):
  """The train step jitted over the mesh: batch on 'data', process and state
  replicated, state donated."""
  repl = sharding.replicated(mesh)
  return jax.jit(train_step,
                 in_shardings=(repl, state_sharding, sharding.batch_sharding(mesh), repl),
                 out_shardings=(state_sharding, repl),
                 donate_argnums=(1,))


def make_sampler(model: nn.Module, process: Process, mesh, shape, *, method: str,
                 num_steps: int):
  """jitted (process, params, key, cond=None) -> images [shape] sharded over 'data'.

  cond: the observation [shape] a conditional process restores from (sharded
  like the output), or None.
  """
  process.check_sampler(method)
  batch_sh = sharding.batch_sharding(mesh)

  def sample(process, params, key, cond=None):
    def net(x, t):
      x = jax.lax.with_sharding_constraint(x, batch_sh)
      return model.apply({"params": params}, x, t)
    return process.sample(net, key, shape, method=method, num_steps=num_steps, cond=cond)

  repl = sharding.replicated(mesh)
  return jax.jit(sample, in_shardings=(repl, repl, repl, batch_sh), out_shardings=batch_sh)
