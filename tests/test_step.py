"""The jitted step over a mesh: device-count independence, no retrace, EMA."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bluediff import sharding, step as step_lib
from bluediff.train import build_experiment


def run_steps(config, n_steps, images):
  exp = build_experiment(config)
  state = exp.init_state(config.seed)
  fn = exp.train_step()
  key = jax.device_put(jax.random.key(config.seed), sharding.replicated(exp.mesh))
  losses = []
  for i in range(n_steps):
    batch = sharding.host_to_global(images[i], exp.mesh)
    state, m = fn(state, batch, key)
    losses.append(float(m["loss"]))
  return state, losses, fn


@pytest.fixture(scope="module")
def images(digits16):
  x = digits16[0][:24]
  return x.reshape(3, 8, 16, 16, 1)


def test_sharded_step_equals_single_device(tiny_config, images):
  assert jax.device_count() == 4
  c1, c4 = tiny_config(), tiny_config()
  c1.mesh.data, c4.mesh.data = 1, 4
  s1, l1, _ = run_steps(c1, 3, images)
  s4, l4, _ = run_steps(c4, 3, images)
  # Same noise (drawn at global shape), same data: only reduction order differs.
  np.testing.assert_allclose(l1, l4, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s4.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
  assert int(s4.step) == 3


def test_no_retrace_across_steps(tiny_config, images):
  _, _, fn = run_steps(tiny_config(), 3, images)
  assert fn.func._cache_size() == 1


def test_ema_update_closed_form():
  ema, params = {"w": jnp.zeros(3)}, {"w": jnp.ones(3)}
  out = step_lib.ema_update(ema, params, jnp.asarray(0), 0.999)   # warm-up: d = 1/10
  np.testing.assert_allclose(out["w"], 0.9, rtol=1e-6)
  out = step_lib.ema_update(ema, params, jnp.asarray(10 ** 7), 0.999)  # d = decay
  np.testing.assert_allclose(out["w"], 0.001, rtol=1e-4)


def test_optimizer_clips_and_warms_up(tiny_config):
  oc = tiny_config().optim
  oc.grad_clip, oc.warmup_steps, oc.lr = 1.0, 10, 1.0
  opt = step_lib.make_optimizer(oc)
  p = {"w": jnp.zeros(4)}
  s = opt.init(p)
  upd, s = opt.update({"w": jnp.full(4, 100.0)}, s, p)
  np.testing.assert_allclose(upd["w"], 0.0)        # lr is 0 at warm-up step 0
  upd, s = opt.update({"w": jnp.full(4, 100.0)}, s, p)
  assert float(jnp.abs(upd["w"]).max()) == pytest.approx(0.1, rel=1e-3)  # Adam step * lr 1/10


def _ema_trajectory(n_steps, decay, **ema_kw):
  """Runs the real jitted train step of a 3-weight model; returns the params and EMA
  after every step (float64 numpy), and the initial params."""
  import flax.linen as nn
  import optax
  from flax import struct

  from bluediff.processes.base import Process

  class Scale(nn.Module):
    @nn.compact
    def __call__(self, x, t, train=False):
      return x * self.param("w", nn.initializers.constant(0.5), (3,))

  @struct.dataclass
  class ToOne(Process):
    samplers = ()
    def loss(self, net, x0, key):
      return jnp.mean(jnp.square(net(x0, jnp.zeros(x0.shape[0])) - 2.0)), {}
    def sample(self, *a, **k):
      raise NotImplementedError

  model, opt = Scale(), optax.adam(0.1)
  state = step_lib.init_state(model, opt, jax.random.key(0), (2, 1, 1, 3))
  step = jax.jit(step_lib.make_train_step(model, opt, decay, **ema_kw))
  x = jnp.asarray([[[[1.0, 2.0, 3.0]]], [[[0.5, -1.0, 1.5]]]])
  init = np.asarray(state.params["w"], np.float64)
  params, emas = [], []
  for _ in range(n_steps):
    state, _ = step(ToOne(), state, x, jax.random.key(1))
    params.append(np.asarray(state.params["w"], np.float64))
    emas.append(np.asarray(state.ema_params["w"], np.float64))
  assert int(state.step) == n_steps
  return init, params, emas


@pytest.mark.parametrize("every,start", [(3, 4), (2, 4)])
def test_ema_every_and_start_follow_the_cold_reference_trainer(every, start):
  """The reference Trainer.train: after opt.step(), `if self.step % update_ema_every == 0:
  step_ema()` with self.step the count before `self.step += 1`; step_ema resets the EMA
  to the model while self.step < step_start_ema, else ema = beta ema + (1 - beta) model."""
  decay, n = 0.9, 10
  init, params, emas = _ema_trajectory(n, decay, ema_every=every, ema_start=start)
  ema = init.copy()                                    # deepcopy + reset_parameters at init
  for s in range(n):
    if s % every == 0:
      ema = params[s].copy() if s < start else decay * ema + (1 - decay) * params[s]
    np.testing.assert_allclose(emas[s], ema, rtol=1e-6, atol=1e-7, err_msg=f"step {s}")
  assert not np.allclose(emas[-1], params[-1])         # it did average, not only copy


def test_ema_defaults_are_every_step_with_warm_up():
  """ema_every=1, ema_start=0 (the defaults): today's EMA, min(decay, (1+s)/(10+s))."""
  decay, n = 0.9, 5
  init, params, emas = _ema_trajectory(n, decay)
  ema = init.copy()
  for s in range(n):
    d = min(decay, (1.0 + s) / (10.0 + s))
    ema = d * ema + (1 - d) * params[s]
    np.testing.assert_allclose(emas[s], ema, rtol=1e-6, atol=1e-7)
