"""Time-varying blue-noise diffusion: schedules, the mixed operator, loss targets,
exact-oracle sampling and in-batch pairing."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bluediff.noise import CholeskyNoise, SpectralNoise
from bluediff.noise import statistics as st
from bluediff.processes import pairing
from bluediff.processes.blue import BlueNoiseDiffusion
from bluediff.processes.schedules import Gamma


@pytest.fixture(scope="module")
def stats8():
  return st.get_stats(st.BlueNoiseSpec(8), progress=False)


@pytest.mark.parametrize("g", [Gamma("sigmoid", 0, 3, 1000), Gamma("sigmoid", 0, 3, 0.2),
                               Gamma("linear"), Gamma("cosine", 0, 1, 1.0)])
def test_gamma_endpoints_and_monotone(g):
  u = jnp.linspace(0, 1, 101)
  v = np.asarray(g(u))
  assert abs(v[0]) < 1e-6 and abs(v[-1] - 1) < 1e-6
  assert np.all(np.diff(v) >= -1e-7)
  np.testing.assert_allclose(np.asarray(g.derivative(u[1:-1])),
                             np.gradient(v, 0.01)[1:-1], atol=0.05 * np.abs(np.gradient(v, 0.01)).max())


def test_sigmoid_tau_02_reference_values():
  g = Gamma("sigmoid", 0, 3, 0.2)
  assert float(g(0.1)) == pytest.approx(0.64, abs=0.01)
  assert float(g(0.2)) == pytest.approx(0.91, abs=0.01)


def _response(process, g, size=8):
  """The matrix of eps -> L_t eps (columns: responses to unit impulses), [d, d]."""
  d = size * size
  eps = jnp.eye(d).reshape(d, size, size, 1)
  out = process.mixed(eps, process.noise.apply(eps), jnp.full((d,), g))
  return np.asarray(out).reshape(d, d).T


@pytest.mark.parametrize("root", ["fft", "cholesky"])
def test_mixed_operator_ends_and_variance(stats8, root):
  noise = (SpectralNoise.from_spectrum(stats8.spectrum) if root == "fft"
           else CholeskyNoise(stats8.cholesky, 8))
  lin = BlueNoiseDiffusion(noise, Gamma("linear"))
  np.testing.assert_allclose(_response(lin, 1.0), np.eye(64), atol=1e-6)       # g = 1: white
  blue = _response(lin, 0.0)
  np.testing.assert_allclose(blue @ blue.T, st.circulant_covariance(stats8.spectrum), atol=1e-4)
  var_half = (_response(lin, 0.5) ** 2).sum(1)          # per-pixel variance of the linear blend
  assert var_half.mean() < 0.99      # dips below 1 between the ends (Cholesky: not at pixel 0)
  vp = BlueNoiseDiffusion(noise, Gamma("linear"), blend="vp")
  for g in (0.0, 0.2, 0.5, 0.8, 1.0):
    np.testing.assert_allclose((_response(vp, g) ** 2).sum(1), 1.0, atol=1e-4)
  if root == "cholesky":                                  # non-stationary mix (methods.md §2.1)
    assert var_half.max() - var_half.min() > 0.05
  else:
    assert var_half.max() - var_half.min() < 1e-4


def test_loss_weights_and_targets(stats8):
  noise = SpectralNoise.from_spectrum(stats8.spectrum)
  x0 = jnp.zeros((4, 8, 8, 1))
  eps = jax.random.normal(jax.random.key(0), x0.shape)
  blue = noise.apply(eps)
  k = jnp.array([1.0, 250.0, 500.0, 1000.0])
  paper = BlueNoiseDiffusion(noise, Gamma("linear"), parametrisation="paper")
  _, t, target, w = paper.targets(x0, eps, blue, k)
  np.testing.assert_allclose(w, 1.0, rtol=1e-4)            # g = a: w_k = 1
  np.testing.assert_allclose(t, k / 1000)
  np.testing.assert_allclose(target[..., 1:], ((k - 1) / 1000)[:, None, None, None] * (blue - eps),
                             rtol=1e-5, atol=1e-6)
  free = BlueNoiseDiffusion(noise, Gamma("linear"))
  _, _, target, w = free.targets(x0, eps, blue, k)
  np.testing.assert_allclose(w, ((k - 1) / 1000) ** 2, rtol=1e-4, atol=1e-9)
  np.testing.assert_allclose(target[..., 1:], blue - eps, atol=1e-6)
  tv = BlueNoiseDiffusion(noise, Gamma("sigmoid", 0, 3, 0.2), parametrisation="paper")
  _, _, _, w = tv.targets(x0, eps, blue, k)
  g = tv.gamma
  np.testing.assert_allclose(w, (g(k / 1000) - g((k - 1) / 1000)) * 1000, rtol=1e-3)


def _oracle(process, x0):
  """The exact network for a one-image training set: invert L_t (FFT root) to get eps."""
  amp = process.noise.amplitude
  w = process.noise.width

  def net(x, t):
    a = t[:, None, None, None]
    g = process.gamma(t)[:, None, None, None]
    y = (x - (1 - a) * x0) / a                                   # L_t eps
    eps = jnp.fft.irfft2(jnp.fft.rfft2(y, axes=(1, 2)) / (g + (1 - g) * amp[None, :, :, None]),
                         s=(x.shape[1], w), axes=(1, 2))
    direction = process.noise.apply(eps) - eps
    if process.parametrisation == "paper":
      direction = (t - 1 / process.train_steps)[:, None, None, None] * direction
    return jnp.concatenate([x0 - y, direction], -1)
  return net


@pytest.mark.parametrize("parametrisation,steps", [("grid_free", 1000), ("grid_free", 250),
                                                   ("grid_free", 50), ("paper", 1000)])
def test_exact_oracle_returns_the_training_image(stats8, parametrisation, steps):
  noise = SpectralNoise.from_spectrum(stats8.spectrum)
  p = BlueNoiseDiffusion(noise, Gamma("sigmoid", 0, 3, 0.2), parametrisation=parametrisation)
  x0 = jax.random.uniform(jax.random.key(1), (2, 8, 8, 1), minval=-1, maxval=1)
  out = jax.jit(lambda k: p.sample(_oracle(p, x0), k, x0.shape, method="euler",
                                   num_steps=steps))(jax.random.key(2))
  np.testing.assert_allclose(np.asarray(out), np.asarray(x0), atol=2e-4)


def test_heun_with_the_oracle_converges(stats8):
  noise = SpectralNoise.from_spectrum(stats8.spectrum)
  p = BlueNoiseDiffusion(noise, Gamma("sigmoid", 0, 3, 1000))
  x0 = jax.random.uniform(jax.random.key(1), (2, 8, 8, 1), minval=-1, maxval=1)
  err = [float(jnp.abs(p.sample(_oracle(p, x0), jax.random.key(2), x0.shape, method="heun",
                                num_steps=n) - x0).max()) for n in (16, 64)]
  assert err[1] < 1e-3 and err[1] <= err[0] + 1e-6


def test_exact_pairing_is_never_worse():
  for seed in range(5):
    k1, k2 = jax.random.split(jax.random.key(seed))
    noise = jax.random.normal(k1, (16, 8, 8, 3))
    images = jax.random.uniform(k2, (16, 8, 8, 3), minval=-1, maxval=1)
    cost = np.asarray(pairing.pairwise_l2(noise, images))
    total = lambda perm: cost[np.arange(16), np.asarray(perm)].sum()   # noqa: E731
    exact = pairing.pair("exact", noise, images)
    greedy = pairing.pair("greedy", noise, images)
    assert sorted(np.asarray(greedy)) == list(range(16)) and sorted(np.asarray(exact)) == list(range(16))
    assert total(exact) <= total(np.arange(16)) + 1e-4
    assert total(exact) <= total(greedy) + 1e-4
  # greedy: noise 0 takes its nearest image
  assert int(greedy[0]) == int(np.argmin(cost[0]))


def test_loss_runs_with_pairing_in_jit(stats8):
  noise = SpectralNoise.from_spectrum(stats8.spectrum)
  x0 = jax.random.uniform(jax.random.key(0), (8, 8, 8, 1), minval=-1, maxval=1)
  for method in ("greedy", "exact"):
    p = BlueNoiseDiffusion(noise, Gamma("linear"), pairing=method)
    net = lambda x, t: jnp.zeros(x.shape[:-1] + (2,))   # noqa: E731
    loss, aux = jax.jit(lambda k: p.loss(net, x0, k))(jax.random.key(3))
    assert np.isfinite(float(loss)) and "pairing_gain" in aux
    if method == "exact":
      assert float(aux["pairing_gain"]) >= -1e-4


def test_trains_in_the_loop_and_checkpoints_pin_the_root(tiny_config, tmp_path):
  """The generic loop runs the blue-noise process (Cholesky root, greedy pairing);
  its checkpoint is refused by a config with the other root."""
  import json
  import os
  from bluediff.checkpoint import CheckpointMismatchError, Checkpointer
  from bluediff.experiment import build_experiment, restore_or_init
  from bluediff.train import train
  c = tiny_config()
  c.process.name, c.process.pairing = "blue_noise", "greedy"
  c.noise.kind, c.noise.root = "blue", "cholesky"
  c.training.num_steps, c.training.checkpoint_every, c.training.log_every = 2, 2, 1
  train(c, str(tmp_path))
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert {"loss_x0", "loss_direction", "pairing_gain"} <= set(rows[-1])
  assert all(np.isfinite(r["loss"]) for r in rows)
  c.noise.root = "fft"
  with Checkpointer(os.path.join(tmp_path, "checkpoints")) as ckpt:
    with pytest.raises(CheckpointMismatchError, match="noise"):
      restore_or_init(build_experiment(c), ckpt)


def test_super_resolution_feeds_the_low_resolution_image(stats8):
  from bluediff.processes.base import low_resolution
  noise = SpectralNoise.from_spectrum(stats8.spectrum)
  p = BlueNoiseDiffusion(noise, Gamma("linear"), sr_factor=2)
  assert p.conditional and p.input_channels(3) == 6 and p.output_channels(3) == 6
  x0 = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1), minval=-1, maxval=1)
  seen = {}

  def net(x, t):
    seen["cond"] = x[..., 1:]
    return jnp.zeros(x.shape[:-1] + (2,))
  p.loss(net, x0, jax.random.key(1))
  np.testing.assert_allclose(np.asarray(seen["cond"]), np.asarray(low_resolution(x0, 2)), atol=1e-6)
  small = np.asarray(low_resolution(jnp.ones((1, 8, 8, 1)) * 0.3, 2))
  np.testing.assert_allclose(small, 0.3, atol=1e-6)             # constants survive down-up
  with pytest.raises(ValueError, match="conditional"):
    p.sample(net, jax.random.key(0), x0.shape, num_steps=2)


@pytest.mark.slow   # trains and evaluates (~1 min)
def test_super_resolution_trains_and_evaluates_restoration(tiny_config, tmp_path):
  from skimage.metrics import peak_signal_noise_ratio
  from bluediff.evaluate.run import run_evaluate
  from bluediff.train import train
  c = tiny_config()
  c.process.name, c.process.sr_factor = "blue_noise", 2
  c.noise.kind = "blue"
  c.training.num_steps, c.training.checkpoint_every = 2, 2
  c.eval.metrics, c.eval.num_samples = ("restoration",), 8
  train(c, str(tmp_path))
  m = run_evaluate(c, str(tmp_path))[0]["metrics"]
  npz_free = [f for f in (tmp_path / "eval").iterdir()][0]
  assert (npz_free / "samples_grid.png").exists()
  from bluediff.data.sources import load_split, to_uint8
  from bluediff.processes.base import low_resolution
  x, _ = load_split("digits", "test", 16)
  ref = to_uint8(x[:8])
  obs = to_uint8(np.asarray(low_resolution(jnp.asarray(x[:8]), 2)))
  want = np.mean([peak_signal_noise_ratio(r, o, data_range=255) for r, o in zip(ref, obs)])
  assert m["psnr_observed"] == pytest.approx(want, abs=1e-3)
  assert 0 < m["ssim_observed"] <= 1 and m["rmse_restored"] > 0


def test_per_shard_pairing_stays_inside_each_shard():
  k1, k2 = jax.random.split(jax.random.key(7))
  noise = jax.random.normal(k1, (16, 4, 4, 1))
  images = jax.random.uniform(k2, (16, 4, 4, 1), minval=-1, maxval=1)
  for method in ("greedy", "exact"):
    perm = np.asarray(pairing.pair(method, noise, images, groups=4))
    assert sorted(perm) == list(range(16))
    for g in range(4):
      block = perm[4 * g:4 * g + 4]
      assert set(block) == set(range(4 * g, 4 * g + 4))
      local = np.asarray(pairing.pair(method, noise[4 * g:4 * g + 4], images[4 * g:4 * g + 4]))
      np.testing.assert_array_equal(block, local + 4 * g)


@pytest.mark.slow   # trains, checkpoints, restores (~30 s); the clamp itself: tests/test_step.py
def test_learned_gamma_trains_is_clamped_checkpointed_and_used_for_sampling(tiny_config, tmp_path):
  import json
  from bluediff.sampling import load_params
  from bluediff.experiment import build_experiment
  from bluediff.train import train
  c = tiny_config()
  c.process.name, c.process.learn_gamma, c.process.learn_lr = "blue_noise", True, 0.05
  c.process.gamma, c.process.gamma_start, c.process.gamma_end, c.process.gamma_tau = \
      "sigmoid", -1.0, 2.0, 0.5
  c.noise.kind = "blue"
  c.training.num_steps, c.training.checkpoint_every, c.training.log_every = 3, 3, 1
  train(c, str(tmp_path))
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  taus = [r["process/gamma/tau"] for r in rows]
  assert taus[0] != pytest.approx(0.5, abs=1e-6) and len(set(taus)) == len(taus)   # it moves
  assert all(-3 <= r["process/gamma/start"] <= -0.01 for r in rows)
  exp = build_experiment(c)
  load_params(exp, str(tmp_path))
  assert float(exp.process.gamma.tau) == pytest.approx(taus[-1], rel=1e-5)


@pytest.mark.parametrize("blend", ["linear", "vp"])
def test_samplers_follow_the_forward_process_of_the_initial_noise(stats8, blend):
  """A non-adaptive oracle (the exact targets for the sampler's own initial noise, whatever
  x is) only lands on the image if the updates telescope: Euler exactly for the linear
  blend; for VP the 2nd-order sampler converges with the VP direction -dL/dg eps, and does
  not with the linear blend's (L_b - I) eps."""
  noise = SpectralNoise.from_spectrum(stats8.spectrum)
  p = BlueNoiseDiffusion(noise, Gamma("sigmoid", 0, 3, 1000), blend=blend)
  x0 = jax.random.uniform(jax.random.key(1), (2, 8, 8, 1), minval=-1, maxval=1)
  key = jax.random.key(2)
  eps0 = jax.random.normal(key, x0.shape)              # what sample() starts from
  blue0 = noise.apply(eps0)

  def oracle(direction):
    return lambda x, t: jnp.concatenate([x0 - p.mixed(eps0, blue0, p.gamma(t)),
                                         direction(p.gamma(t))], -1)
  right = oracle(lambda g: p.direction(eps0, blue0, g))
  err = lambda net, method, n: float(jnp.abs(p.sample(net, key, x0.shape, method=method,   # noqa: E731
                                                      num_steps=n) - x0).max())
  if blend == "linear":
    assert err(right, "euler", 8) < 1e-5 and err(right, "euler", 50) < 1e-5
    assert err(oracle(lambda g: jnp.zeros_like(eps0)), "euler", 50) > 0.1   # head 2 matters
  else:
    errs = [err(right, "heun", n) for n in (8, 32, 128)]
    assert errs[2] < 1e-3 and errs[2] < errs[1] < errs[0]
    assert err(oracle(lambda g: blue0 - eps0), "heun", 128) > 0.02


def _blue_matrix(noise, size=8):
  """B [d, d] with L_b eps = B eps (flattened), from impulse responses of the operator."""
  d = size * size
  return np.asarray(noise.apply(jnp.eye(d).reshape(d, size, size, 1))).reshape(d, d).T


def _empirical_cov(x):
  flat = np.asarray(x, np.float64).reshape(x.shape[0], -1)
  return flat.T @ flat / len(flat)


@pytest.mark.parametrize("g1", [0.0, 0.5, 1.0])
def test_samplers_start_from_the_training_law_at_t1(stats8, g1):
  """x_1 ~ N(0, L_1 L_1^T) with L_1 = g(1) I + (1 - g(1)) L_b (methods.md §2.2), for the
  blue-noise process and the time-varying DDIM; a white start only when g(1) = 1."""
  from bluediff.processes.ddpm import DDPM, linear_alpha_bar
  noise = SpectralNoise.from_spectrum(stats8.spectrum)
  lmat = g1 * np.eye(64) + (1 - g1) * _blue_matrix(noise)
  want = lmat @ lmat.T
  shape, key = (8192, 8, 8, 1), jax.random.key(5)
  zero_net = lambda x, t: jnp.zeros(x.shape[:-1] + (2,))     # noqa: E731  (Euler keeps x_1)
  blue = BlueNoiseDiffusion(noise, Gamma("constant", value=g1))
  x1 = jax.jit(lambda k: blue.sample(zero_net, k, shape, num_steps=1))(key)
  abar = jnp.asarray(linear_alpha_bar(1000), jnp.float32)
  ddpm = DDPM(noise, Gamma("constant", value=g1), abar, time_varying=True)
  # with a zero network one deterministic DDIM step T -> 0 returns x_T / sqrt(abar_T)
  xt = jax.jit(lambda k: ddpm.sample(zero_net, k, shape, num_steps=1))(key) * np.sqrt(abar[-1])
  for x in (x1, xt):
    np.testing.assert_allclose(_empirical_cov(x), want, atol=0.06)
  if g1 < 1:   # the old white start fails this by far
    assert np.abs(want - np.eye(64)).max() > 0.12


def test_ddim_fresh_noise_is_coloured_by_L_j(stats8):
  """eta > 0 in the time-varying DDIM: x_j = ... + s L_j z, s = eta sqrt((1-ab_j)/(1-ab_k))
  sqrt(1 - ab_k/ab_j) (methods.md §2.3), so with x = 0 and a zero network x_j ~ N(0, s^2 L_j L_j^T)."""
  from bluediff.processes.ddpm import DDPM, linear_alpha_bar
  noise = SpectralNoise.from_spectrum(stats8.spectrum)
  ab = linear_alpha_bar(1000)
  p = DDPM(noise, Gamma("linear"), jnp.asarray(ab, jnp.float32), eta=1.0, time_varying=True)
  k, j = 600, 300
  s = np.sqrt((1 - ab[j]) / (1 - ab[k])) * np.sqrt(1 - ab[k] / ab[j])
  g = j / 1000
  lmat = g * np.eye(64) + (1 - g) * _blue_matrix(noise)
  x = jnp.zeros((8192, 8, 8, 1))
  out = jax.jit(lambda key: p.ddim_step(lambda x, t: jnp.zeros(x.shape[:-1] + (2,)), x, k, j, key))(
      jax.random.key(3))
  np.testing.assert_allclose(_empirical_cov(out), s ** 2 * lmat @ lmat.T, atol=0.06 * s ** 2)
