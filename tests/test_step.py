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
