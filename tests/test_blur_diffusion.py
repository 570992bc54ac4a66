"""Blur diffusion in a rotated basis: DCT, transfer functions, DDPM limit, marginals,
exact-oracle sampling and coarse-to-fine generation."""
import jax
import jax.numpy as jnp
import numpy as np

import jax.scipy.fft as jfft

from bluediff.bases import (IdentityBasis, dct_basis, dct_eigenvalues, dct_frequencies, svd_basis,
                            zero_boundary_blur_matrix)
from bluediff.degradations import gaussian_kernel_1d
from bluediff.noise import WhiteNoise
from bluediff.processes.blur_diffusion import (BlurDiffusion, ComponentSchedule, blur_steps,
                                               linear_log_abar)
from bluediff.processes.ddpm import linear_alpha_bar


def dense_dct(n):
  k, m = np.arange(n)[:, None], np.arange(n)[None, :]
  c = np.sqrt(2 / n) * np.cos(np.pi * (2 * m + 1) * k / (2 * n))
  c[0] /= np.sqrt(2)
  return c


def test_fast_dct_equals_the_dense_orthonormal_matrix():
  x = np.random.default_rng(0).normal(size=(2, 8, 12, 3))
  c8, c12 = dense_dct(8), dense_dct(12)
  want = np.einsum("kh,lw,bhwc->bklc", c8, c12, x)
  fast = np.asarray(dct_basis(8, 12).forward(jnp.asarray(x, jnp.float32)))
  np.testing.assert_allclose(fast, want, atol=1e-5)
  # and jax's FFT-based DCT-II agrees (an independent implementation)
  np.testing.assert_allclose(fast, np.asarray(jfft.dctn(jnp.asarray(x, jnp.float32), type=2,
                                                        axes=(1, 2), norm="ortho")), atol=1e-5)
  np.testing.assert_allclose(c8 @ c8.T, np.eye(8), atol=1e-12)


def test_dct_transfer_function_is_the_neumann_blur():
  kernel = gaussian_kernel_1d(1.3, 7)
  x = np.random.default_rng(1).normal(size=(2, 16, 16, 1)).astype(np.float32)
  d = dct_eigenvalues(kernel, 16, 16)
  basis = dct_basis(16, 16)
  fast = np.asarray(basis.inverse(d[None, :, :, None] * basis.forward(jnp.asarray(x))))
  r = 3
  padded = np.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), mode="symmetric")   # half-sample = Neumann
  k2 = np.outer(kernel, kernel)
  ref = np.zeros_like(x)
  for dy in range(7):
    for dx in range(7):
      ref += k2[dy, dx] * padded[:, dy:dy + 16, dx:dx + 16]
  np.testing.assert_allclose(fast, ref, atol=1e-5)


def test_svd_basis_is_orthonormal_and_diagonalises_the_zero_boundary_blur():
  kernel = gaussian_kernel_1d(0.8, 3)
  basis, d = svd_basis(kernel, 8, 8)
  u = np.asarray(basis.u_h)
  np.testing.assert_allclose(u.T @ u, np.eye(8), atol=1e-6)
  b = zero_boundary_blur_matrix(kernel, 8)
  x = np.random.default_rng(2).normal(size=(1, 8, 8, 1)).astype(np.float32)
  blurred = np.einsum("ij,kl,bjlc->bikc", b, b, x)
  fast = np.asarray(basis.inverse(d[None, :, :, None] * basis.forward(jnp.asarray(x))))
  np.testing.assert_allclose(fast, blurred, atol=1e-5)
  assert np.all(np.diff(d[:, 0]) <= 1e-12)            # coarse (large d) first


def _process(basis, size, f_max, steps=1000, schedule="quartic", x0_min_abar=1e-3):
  lam = dct_frequencies(size, size)
  cum_f = np.cumsum(blur_steps(schedule, steps, f_max))
  sched = ComponentSchedule(jnp.asarray(linear_log_abar(steps), jnp.float32),
                            jnp.asarray(cum_f, jnp.float32),
                            jnp.asarray(-lam * 0.4 ** 2 / 2 if f_max else np.zeros_like(lam), jnp.float32))
  return BlurDiffusion(basis, sched, WhiteNoise(), x0_min_abar=x0_min_abar)


def test_identity_basis_without_blur_is_ddpm():
  """U = I and f = 0 is DDPM: marginals, and the ancestral step is DDPM's posterior step,
  for one step and for a respaced jump (without x0_min_abar, which leaves DDPM's x0_hat
  only where abar < 1e-3, i > 825 here)."""
  p = _process(IdentityBasis(), 8, 0.0, x0_min_abar=0.0)
  ab = linear_alpha_bar(1000)
  x0 = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1), minval=-1, maxval=1)
  n = jax.random.normal(jax.random.key(1), x0.shape)
  for i in (1, 300, 1000):
    want = np.sqrt(ab[i]) * x0 + np.sqrt(1 - ab[i]) * n
    np.testing.assert_allclose(np.asarray(p.forward(x0, n, jnp.full((2,), i))), want, atol=2e-5)
  oracle = lambda x, t: n   # noqa: E731
  key = jax.random.key(5)
  z = np.asarray(WhiteNoise()(key, x0.shape))                      # the step's own fresh noise
  for i, j in ((400, 399), (400, 350), (900, 899)):
    x_i = jnp.asarray(np.sqrt(ab[i]) * x0 + np.sqrt(1 - ab[i]) * n, jnp.float32)
    beta, alpha = 1 - ab[i] / ab[j], ab[i] / ab[j]                 # DDPM's (respaced) beta
    mean = (np.sqrt(ab[j]) * beta * x0 + np.sqrt(alpha) * (1 - ab[j]) * x_i) / (1 - ab[i])
    want = mean + np.sqrt(beta * (1 - ab[j]) / (1 - ab[i])) * z
    got = p.ancestral_step(oracle, x_i, i, key, *([] if j == i - 1 else [j]))  # default j
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-4)


def test_simulated_forward_steps_match_the_closed_form_marginal():
  p = _process(dct_basis(8, 8), 8, 1.0, steps=20, schedule="linear")
  m = 4000
  x0 = jnp.broadcast_to(jax.random.uniform(jax.random.key(0), (1, 8, 8, 1), minval=-1, maxval=1),
                        (m, 8, 8, 1))
  x = x0
  key = jax.random.key(1)
  for i in range(1, 13):                               # x_i = U(sqrt(A_i) x_bar + sqrt(1 - A_i) z)
    step = p._step_factor(i, m)
    z = jax.random.normal(jax.random.fold_in(key, i), x.shape)
    x = p.basis.inverse(jnp.sqrt(step) * p.basis.forward(x) + jnp.sqrt(1 - step) * z)
  xb = np.asarray(p.basis.forward(x))[..., 0]
  a = np.asarray(p.schedule(jnp.full((1,), 12)))[0, ..., 0]
  mean_want = np.sqrt(a) * np.asarray(p.basis.forward(x0[:1]))[0, ..., 0]
  var_want = 1 - a
  assert np.all(np.abs(xb.mean(0) - mean_want) < 5 * np.sqrt(var_want / m) + 1e-5)
  assert np.all(np.abs(xb.var(0) / var_want - 1) < 5 * np.sqrt(2 / m))
  assert a[0, 0] > 0.9 * a[-1, -1] and a[-1, -1] < 0.5 * a[0, 0]   # high frequencies decay faster


def _oracle(p, x0):
  def net(x, t):
    i = jnp.round(t * p.num_steps).astype(jnp.int32)
    a = p.schedule(i)
    n_bar = (p.basis.forward(x) - jnp.sqrt(a) * p.basis.forward(x0)) / jnp.sqrt(1 - a)
    return p.basis.inverse(n_bar)
  return net


def _band_errors(p, x0, iterates):
  """Mean squared error to x0 of the lowest and highest quarter of DCT frequencies, per iterate."""
  lam = dct_frequencies(16, 16)
  low, high = lam < np.quantile(lam, 0.25), lam > np.quantile(lam, 0.75)
  x0b = np.asarray(p.basis.forward(x0))[..., 0]
  out = []
  for it in np.asarray(iterates):
    e = (np.asarray(p.basis.forward(jnp.asarray(it)))[..., 0] - x0b) ** 2
    out.append((e[:, low].mean(), e[:, high].mean()))
  return np.array(out)


def test_deterministic_sampler_returns_the_image_coarse_first():
  """With the exact oracle, DDIM over 20 steps returns the images; in the middle of
  sampling (t = 0.3, 0.2) the low frequencies are much closer to the data than the high
  ones - unlike the DDPM twin (no blur), where both bands move together."""
  from bluediff.evaluate.spectra import band_settling, settle_time
  x0 = jax.random.uniform(jax.random.key(0), (32, 16, 16, 1), minval=-1, maxval=1)
  errors, settle = {}, {}
  for name, f_max in (("blur", 5.0), ("ddpm", 0.0)):
    p = _process(dct_basis(16, 16), 16, f_max)
    out, traj = p.sample(_oracle(p, x0), jax.random.key(1), x0.shape, method="ddim",
                         num_steps=20, trajectory_frames=11)
    iterates = traj["iterates"]
    # the oracle's x0 estimate is the image wherever the image is not blurred away
    np.testing.assert_allclose(np.asarray(traj["x0_hat"][-3:]), np.asarray(x0[None].repeat(3, 0)),
                               atol=2e-4)
    np.testing.assert_allclose(np.asarray(out), np.asarray(x0), atol=2e-4)
    assert iterates.shape == (11, *x0.shape)               # the noise, then every 2nd step
    errors[name] = _band_errors(p, x0, iterates)[7:9]        # iterates at t = 0.3 and 0.2
    d = band_settling(np.asarray(iterates))                  # the evaluation's measure
    settle[name] = [settle_time(curve) for curve in d]     # low, mid, high
  low, high = errors["blur"].T
  assert np.all(low < 0.9 * high)
  low, high = errors["ddpm"].T
  assert np.all(np.abs(low / high - 1) < 0.15)
  # the same in the evaluation's settle times (measured 0.817 < 0.838 < 0.852 vs 0.809 x 3)
  assert settle["blur"][0] < settle["blur"][1] < settle["blur"][2]
  assert settle["blur"][2] - settle["blur"][0] > 0.02 > 10 * abs(settle["ddpm"][2] - settle["ddpm"][0])


def test_ancestral_and_reference_samplers_run_and_the_loss_of_the_oracle_is_zero():
  p = _process(dct_basis(8, 8), 8, 1.0, steps=30)
  x0 = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1), minval=-1, maxval=1)
  for method in ("ancestral", "reference"):
    out = p.sample(_oracle(p, x0), jax.random.key(1), x0.shape, method=method)
    assert np.isfinite(np.asarray(out)).all()
  for num_steps in (0, 7):                             # every step, and a respaced grid
    out = p.sample(_oracle(p, x0), jax.random.key(1), x0.shape, method="ancestral",
                   num_steps=num_steps)
    np.testing.assert_allclose(np.asarray(out), np.asarray(x0), atol=1e-3)
  loss, _ = p.loss(_oracle(p, x0), x0, jax.random.key(2))
  assert float(loss) < 1e-6


def test_blur_diffusion_trains_in_the_loop(tiny_config, tmp_path):
  import json
  from bluediff.train import train
  c = tiny_config()
  c.process.name, c.process.train_steps = "blur_diffusion", 100
  c.process.blur_schedule, c.process.blur_s_max = "quartic", 0.6
  c.sampling.method, c.sampling.num_steps = "ddim", 4
  c.training.num_steps, c.training.checkpoint_every = 2, 2
  c.eval.metrics, c.eval.num_samples = ("trajectory",), 8
  train(c, str(tmp_path))
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert np.isfinite(rows[-1]["loss"]) and (tmp_path / "samples.png").exists()
  from bluediff.evaluate.run import run_evaluate
  metrics = run_evaluate(c, str(tmp_path))[0]["metrics"]
  strip = tmp_path / "eval" / "step2-ddim4" / "trajectory.png"
  assert strip.exists() and "trajectory.png" in (strip.parent / "report.md").read_text()
  assert (strip.parent / "trajectory_bands.png").exists() and (strip.parent / "trajectory_x0.png").exists()
  assert all(0 <= metrics[f"settle_{b}"] <= 1 for b in ("low", "mid", "high"))


def test_ddim_steps_follow_the_forward_process_of_the_noise():
  """With the trajectory's true noise (not re-inferred from x), a DDIM step maps the
  closed-form marginal at i onto the one at j, for every step of a 10-step grid. (A mild
  blur: where Abar underflows float32, x0_hat is clipped and the step is approximate;
  and no x0_min_abar, which sets x0_hat to 0 where Abar is tiny.)"""
  p = _process(dct_basis(8, 8), 8, 0.02, x0_min_abar=0.0)
  x0 = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1), minval=-1, maxval=1)
  n0 = WhiteNoise()(jax.random.key(4), x0.shape)
  net = lambda x, t: n0   # noqa: E731
  grid = np.round(np.linspace(0, 1000, 11)).astype(int)
  for i, j in zip(grid[::-1][:-1], grid[::-1][1:]):
    x_i = p.forward(x0, n0, jnp.full((2,), i))
    x_j = p.ddim_step(net, x_i, int(i), int(j))
    np.testing.assert_allclose(np.asarray(x_j), np.asarray(p.forward(x0, n0, jnp.full((2,), j))),
                               atol=1e-4)


def test_unidentifiable_components_do_not_leak_into_the_low_frequencies():
  """A small eps error on blurred-away components is amplified by 1 / sqrt(Abar) in
  x0_hat; without x0_min_abar the pixel-space clip spreads it over all frequencies.
  With it, the low frequencies of x0_hat stay those of the data."""
  x0 = 0.8 * jnp.tanh(jax.random.normal(jax.random.key(0), (4, 16, 16, 1)))
  n = WhiteNoise()(jax.random.key(1), x0.shape)
  i = 400
  errors = {}
  for amin in (0.0, 1e-3):
    p = _process(dct_basis(16, 16), 16, 2.25, x0_min_abar=amin)
    a = np.asarray(p.schedule(jnp.full((1,), i)))[0, ..., 0]
    assert a.max() > 0.1 and a.min() < 1e-6          # some components kept, some blurred away
    err = 0.03 * WhiteNoise()(jax.random.key(2), x0.shape)
    _, x0_bar, _, _ = p._predict(lambda x, t: n + err, p.forward(x0, n, jnp.full((4,), i)), i)
    low = a > 0.1
    diff = np.asarray(x0_bar - p.basis.forward(x0))[..., 0]
    errors[amin] = np.sqrt(np.mean(diff[:, low] ** 2))
  # the error these components get from their own eps error, amplified by sqrt((1 - a) / a)
  own = np.asarray(p.basis.forward(err))[..., 0] * np.sqrt((1 - a) / a)
  own = np.sqrt(np.mean(own[:, low] ** 2))
  assert errors[1e-3] < 1.3 * own and errors[0.0] > 3 * own
