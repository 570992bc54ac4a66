"""The jitted step over a mesh: device-count independence, no retrace, EMA."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bluediff import sharding, step as step_lib
from bluediff.experiment import build_experiment


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
  opt = step_lib.make_optimizer(oc, num_steps=1000)
  p = {"w": jnp.zeros(4)}
  s = opt.init(p)
  upd, s = opt.update({"w": jnp.full(4, 100.0)}, s, p)
  np.testing.assert_allclose(upd["w"], 0.0)        # lr is 0 at warm-up step 0
  upd, s = opt.update({"w": jnp.full(4, 100.0)}, s, p)
  assert float(jnp.abs(upd["w"]).max()) == pytest.approx(0.1, rel=1e-3)  # Adam step * lr 1/10


@pytest.mark.parametrize("warmup", [0, 10])
def test_cosine_schedule_warms_up_then_follows_the_half_cosine(tiny_config, warmup):
  """Oracle: lr_s = lr s / W during warm-up, then lr (f + (1 - f) (1 + cos(pi u)) / 2),
  u = (s - W) / (N - W), and lr f from step N on."""
  oc = tiny_config().optim
  oc.lr, oc.warmup_steps, oc.schedule, oc.final_lr_factor = 2e-3, warmup, "cosine", 0.1
  n = 100
  sched = step_lib.learning_rate(oc, n)
  for s in [0, 3, warmup, 37, 64, 99, n, 150]:
    if s < warmup:
      want = 2e-3 * s / warmup
    else:
      u = min((s - warmup) / (n - warmup), 1.0)
      want = 2e-3 * (0.1 + 0.9 * (1 + np.cos(np.pi * u)) / 2)
    assert float(sched(s)) == pytest.approx(want, rel=1e-5, abs=1e-12), s
  oc.schedule = "constant"
  constant = step_lib.learning_rate(oc, n)
  if warmup:
    assert float(constant(n)) == pytest.approx(2e-3)
  else:
    assert constant == 2e-3


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


def _adamw_np(grads, p0, lr, b1, b2, weight_decay=0.0, clip=0.0, eps=1e-8):
  """Params after AdamW steps on `grads` (dicts of float64 arrays), each step's
  gradient first clipped to global norm `clip` (0: none): g <- g min(1, clip / |g|),
  m, v the bias-corrected moments, p <- p - lr (m_hat / (sqrt(v_hat) + eps) + wd p)."""
  p = {k: np.asarray(v, np.float64) for k, v in p0.items()}
  m = {k: np.zeros_like(v) for k, v in p.items()}
  v = {k: np.zeros_like(x) for k, x in p.items()}
  for t, g in enumerate(grads, 1):
    g = {k: np.asarray(x, np.float64) for k, x in g.items()}
    if clip > 0:
      norm = np.sqrt(sum(np.sum(x ** 2) for x in g.values()))
      g = {k: x * min(1.0, clip / norm) for k, x in g.items()}
    for k in p:
      m[k] = b1 * m[k] + (1 - b1) * g[k]
      v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
      m_hat, v_hat = m[k] / (1 - b1 ** t), v[k] / (1 - b2 ** t)
      p[k] = p[k] - lr * (m_hat / (np.sqrt(v_hat) + eps) + weight_decay * p[k])
  return p


def _run_optimizer(oc, p0, grads):
  import optax
  opt = step_lib.make_optimizer(oc, num_steps=1000)
  p = {k: jnp.asarray(v, jnp.float32) for k, v in p0.items()}
  s = opt.init(p)
  for g in grads:
    upd, s = opt.update({k: jnp.asarray(v, jnp.float32) for k, v in g.items()}, s, p)
    p = optax.apply_updates(p, upd)
  return {k: np.asarray(v, np.float64) for k, v in p.items()}


# Two leaves (the norm is global, not per leaf); a large gradient (norm ~ 50, clipped to
# 1), a small one (norm ~ 0.05, unclipped), a large one. Adam's first step alone is
# scale-free, so only the mix of clipped and unclipped steps shows the clip.
_P0 = {"a": np.array([0.5, -1.0, 2.0]), "b": np.array([[0.3, 0.0], [-0.7, 1.5]])}
_GRADS = [{"a": np.array([30.0, -20.0, 10.0]), "b": np.array([[25.0, 5.0], [-15.0, 20.0]])},
          {"a": np.array([0.01, 0.03, -0.02]), "b": np.array([[-0.02, 0.01], [0.02, -0.01]])},
          {"a": np.array([-40.0, 10.0, 5.0]), "b": np.array([[10.0, -30.0], [5.0, 20.0]])}]


def test_gradient_clipping_is_global_norm_clipping_before_adam(tiny_config):
  oc = tiny_config().optim
  oc.grad_clip, oc.warmup_steps, oc.lr, oc.weight_decay = 1.0, 0, 0.1, 0.0
  got = _run_optimizer(oc, _P0, _GRADS)
  want = _adamw_np(_GRADS, _P0, 0.1, oc.b1, oc.b2, clip=1.0)
  unclipped = _adamw_np(_GRADS, _P0, 0.1, oc.b1, oc.b2)
  for k in _P0:
    np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5)
    # the clip is not a no-op here: unclipped Adam ends elsewhere (100x the tolerance)
    assert np.abs(unclipped[k] - want[k]).max() > 1e-3
  oc.grad_clip = 0.0                                    # 0 disables it
  got = _run_optimizer(oc, _P0, _GRADS)
  for k in _P0:
    np.testing.assert_allclose(got[k], unclipped[k], rtol=1e-5, atol=1e-5)


def test_weight_decay_is_decoupled_adamw(tiny_config):
  """optim.weight_decay: p <- p - lr (adam direction + wd p), the decay outside Adam's
  normalisation (AdamW, not an L2 term added to the gradient)."""
  oc = tiny_config().optim
  oc.grad_clip, oc.warmup_steps, oc.lr, oc.weight_decay = 0.0, 0, 0.01, 0.1
  got = _run_optimizer(oc, _P0, _GRADS[1:2])
  oc.weight_decay = 0.0
  plain = _run_optimizer(oc, _P0, _GRADS[1:2])
  for k in _P0:
    # one step from p0: the decay term is exactly -lr wd p0
    np.testing.assert_allclose(got[k] - plain[k], -0.01 * 0.1 * _P0[k], rtol=1e-3, atol=1e-6)
  oc.weight_decay = 0.1
  got = _run_optimizer(oc, _P0, _GRADS)
  want = _adamw_np(_GRADS, _P0, 0.01, oc.b1, oc.b2, weight_decay=0.1)
  for k in _P0:
    np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-7)


# The official code's clamps for the learned sigmoid gamma (st, en, tau), hard-coded.
GAMMA_BOUNDS = {"start": (-3.0, -0.01), "end": (0.01, 3.0), "tau": (0.01, 10.0)}


def _learned_gamma_process(**gamma):
  from bluediff.noise import SpectralNoise, red_spectrum
  from bluediff.processes.blue import BlueNoiseDiffusion
  from bluediff.processes.schedules import Gamma
  return BlueNoiseDiffusion(noise=SpectralNoise.from_spectrum(red_spectrum(8, 8)),
                            gamma=Gamma("sigmoid", **gamma), train_steps=10, learn_gamma=True)


def test_learned_gamma_is_projected_into_the_reference_ranges():
  p = _learned_gamma_process(start=-1.0, end=1.0, tau=1.0)
  out = p.project({"gamma": {"start": jnp.float32(5.0), "end": jnp.float32(-5.0),
                             "tau": jnp.float32(1e4)}})["gamma"]
  assert {k: float(v) for k, v in out.items()} == pytest.approx(
      {"start": -0.01, "end": 0.01, "tau": 10.0}, rel=1e-6)
  out = p.project({"gamma": {"start": jnp.float32(-50.0), "end": jnp.float32(50.0),
                             "tau": jnp.float32(-1.0)}})["gamma"]
  assert {k: float(v) for k, v in out.items()} == pytest.approx(
      {"start": -3.0, "end": 3.0, "tau": 0.01}, rel=1e-6)
  inside = {"start": jnp.float32(-1.5), "end": jnp.float32(0.7), "tau": jnp.float32(2.0)}
  out = p.project({"gamma": inside})["gamma"]
  assert {k: float(v) for k, v in out.items()} == {k: float(v) for k, v in inside.items()}


def test_a_huge_gamma_gradient_step_lands_on_the_bounds():
  """Through the real train step: SGD with lr 1e8 throws every learned parameter far past
  its range (each has a nonzero gradient); the step's projection puts it on a bound."""
  import flax.linen as nn
  import optax

  class TwoHeads(nn.Module):
    @nn.compact
    def __call__(self, x, t, train=False):
      w = self.param("w", nn.initializers.constant(0.5), (2,))
      return jnp.concatenate([w[0] * x, w[1] * x + 1.0], axis=-1)

  process = _learned_gamma_process(start=-1.0, end=1.0, tau=1.0)
  model, opt, popt = TwoHeads(), optax.sgd(0.0), optax.sgd(1e8)
  state = step_lib.init_state(model, opt, jax.random.key(0), (4, 8, 8, 1), process, popt)
  assert {k: float(v) for k, v in state.process_params["gamma"].items()} == {
      "start": -1.0, "end": 1.0, "tau": 1.0}
  step = jax.jit(step_lib.make_train_step(model, opt, 0.0, popt))
  x = jax.random.uniform(jax.random.key(1), (4, 8, 8, 1), minval=-1, maxval=1)
  new, metrics = step(process, state, x, jax.random.key(2))
  for name, (lo, hi) in GAMMA_BOUNDS.items():
    v = float(new.process_params["gamma"][name])
    assert v == pytest.approx(lo, rel=1e-6) or v == pytest.approx(hi, rel=1e-6), (name, v)
    assert float(metrics[f"process/gamma/{name}"]) == v
