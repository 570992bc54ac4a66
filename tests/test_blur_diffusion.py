"""Blur diffusion in a rotated basis: DCT, transfer functions, DDPM limit, marginals,
exact-oracle sampling and coarse-to-fine generation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax.scipy.fft as jfft

from bluediff.bases import (IdentityBasis, dct_basis, dct_eigenvalues, dct_frequencies, svd_basis,
                            zero_boundary_blur_matrix)
from bluediff.degradations import gaussian_kernel_1d
from bluediff.noise import WhiteNoise
from bluediff.processes.blur_diffusion import BlurDiffusion, blur_steps, blur_tables, linear_log_abar
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
  sched = blur_tables(linear_log_abar(steps), cum_f, -lam * 0.4 ** 2 / 2 if f_max else np.zeros_like(lam))
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
    factor, added = p.transition(i, i - 1, m)
    z = jax.random.normal(jax.random.fold_in(key, i), x.shape)
    x = p.basis.inverse(factor * p.basis.forward(x) + jnp.sqrt(added) * z)
  xb = np.asarray(p.basis.forward(x))[..., 0]
  a = np.asarray(p.schedule.a(jnp.full((1,), 12)))[0, ..., 0] ** 2       # Abar
  mean_want = np.sqrt(a) * np.asarray(p.basis.forward(x0[:1]))[0, ..., 0]
  var_want = 1 - a
  assert np.all(np.abs(xb.mean(0) - mean_want) < 5 * np.sqrt(var_want / m) + 1e-5)
  assert np.all(np.abs(xb.var(0) / var_want - 1) < 5 * np.sqrt(2 / m))
  assert a[0, 0] > 0.9 * a[-1, -1] and a[-1, -1] < 0.5 * a[0, 0]   # high frequencies decay faster


def _oracle(p, x0):
  def net(x, t):
    i = jnp.round(t * p.num_steps).astype(jnp.int32)
    a, var = p.schedule.a(i), p.schedule.var(i)
    n_bar = (p.basis.forward(x) - a * p.basis.forward(x0)) / jnp.sqrt(var)
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


@pytest.mark.slow   # trains and evaluates in the loop (~35 s); the math: tests/test_oracles.py
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
    a = np.asarray(p.schedule.a(jnp.full((1,), i)))[0, ..., 0] ** 2      # Abar
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


# --- Hoogeboom & Salimans' blurring diffusion (methods.md §4-5), against a numpy oracle ---

def _hoogeboom_config(size=8, steps=100, **process):
  from configs import base
  c = base.get_config()
  c.data.image_size = size
  c.process.name, c.process.train_steps, c.process.blur_schedule = "blur_diffusion", steps, "hoogeboom"
  c.process.update(process)
  return c


def _hoogeboom_np(t, size, s_max=20.0, floor=1e-3):
  """(alpha_t, d_k(t) [H, W], sigma_t^2) from the paper's equations: alpha = cos(u),
  sigma = sin(u) with u linear in t between the angles of log SNR +10 and -10
  (the clipped cosine schedule), d = (1 - floor) exp(-lambda tau) + floor,
  tau = (s_max sin^2(pi t / 2))^2 / 2, lambda_k = (pi i / H)^2 + (pi j / W)^2."""
  u0, u1 = np.arctan(np.exp(-5.0)), np.arctan(np.exp(5.0))
  u = u0 + (u1 - u0) * t
  i, j = np.arange(size)[:, None], np.arange(size)[None, :]
  lam = (np.pi * i / size) ** 2 + (np.pi * j / size) ** 2
  tau = (s_max * np.sin(np.pi * t / 2) ** 2) ** 2 / 2
  return np.cos(u), (1 - floor) * np.exp(-lam * tau) + floor, np.sin(u) ** 2


def _dct2(x):
  """Orthonormal 2-D DCT-II of [B, H, W, 1] images -> [B, H, W] (numpy, dense matrices)."""
  c = dense_dct(x.shape[1])
  return np.einsum("kh,lw,bhw->bkl", c, c, np.asarray(x, np.float64)[..., 0])


def _idct2(xb):
  c = dense_dct(xb.shape[1])
  return np.einsum("kh,lw,bkl->bhw", c, c, xb)[..., None]


def _hoogeboom_fixture(seed=0):
  x0 = 0.8 * np.tanh(np.random.default_rng(seed).normal(size=(2, 8, 8, 1)))
  n = np.random.default_rng(seed + 1).normal(size=x0.shape)
  return x0, n


def _np_x(x0, n, i, steps=100):
  """x_i in pixel space from the oracle's law (row 0: the data)."""
  if i == 0:
    return x0
  alpha, d, s2 = _hoogeboom_np(i / steps, 8)
  return _idct2(alpha * d * _dct2(x0) + np.sqrt(s2) * _dct2(n))


def test_hoogeboom_forward_has_blurred_signal_and_isotropic_noise():
  """Per component, x_t = alpha_t d_k(t) x0_bar + sigma_t n_bar: mean alpha_t d_k(t) x0_bar,
  variance sigma_t^2 = 1 - alpha_t^2 for every component; with s_max = 20 (the preset's
  default) everything but the mean is blurred away at t = 1."""
  from bluediff.processes.blur_diffusion import build_blur_diffusion
  p = build_blur_diffusion(_hoogeboom_config(), WhiteNoise())
  x0, n = _hoogeboom_fixture()
  zero = jnp.zeros(x0.shape, jnp.float32)
  for i in (5, 30, 60, 100):
    alpha, d, s2 = _hoogeboom_np(i / 100, 8)
    ii = jnp.full((2,), i)
    mean = _dct2(p.forward(jnp.asarray(x0, jnp.float32), zero, ii))
    np.testing.assert_allclose(mean, alpha * d * _dct2(x0), atol=2e-6)
    noise = _dct2(p.forward(zero, jnp.asarray(n, jnp.float32), ii))        # = sigma_k n_bar_k
    np.testing.assert_allclose(noise, np.sqrt(s2) * _dct2(n), atol=1e-5)
    var = np.asarray(p.schedule.var(ii))[0, ..., 0]
    np.testing.assert_allclose(var, np.full((8, 8), s2), rtol=1e-5)     # isotropic
  # at t = 1 only the mean survives: every other component keeps d = the 0.001 floor
  a = np.asarray(p.schedule.a(jnp.full((1,), 100)))[0, ..., 0]
  assert (a / a[0, 0]).ravel()[1:].max() < 1.01e-3


def test_hoogeboom_ancestral_step_is_the_gaussian_posterior():
  """q(x_j | x_i, x0) per component by Gaussian conditioning on the joint of (x_j, x_i):
  Cov = (a_i / a_j) s_j^2, mean = a_j x0 + Cov / s_i^2 (x_i - a_i x0), var = s_j^2 - Cov^2 / s_i^2.
  The ancestral step (exact eps, so x0_hat = x0) equals mean + sqrt(var) z."""
  from bluediff.processes.blur_diffusion import build_blur_diffusion
  p = build_blur_diffusion(_hoogeboom_config(x0_min_abar=0.0), WhiteNoise())
  x0, n = _hoogeboom_fixture()
  key = jax.random.key(7)
  z_bar = _dct2(WhiteNoise()(key, x0.shape))                  # the step's own fresh noise
  for i, j in ((60, 59), (60, 40), (15, 5)):
    alpha_i, d_i, v_i = _hoogeboom_np(i / 100, 8)
    alpha_j, d_j, v_j = _hoogeboom_np(j / 100, 8)
    a_i, a_j = alpha_i * d_i, alpha_j * d_j
    cov = a_i / a_j * v_j
    x_i = _np_x(x0, n, i)
    mean = a_j * _dct2(x0) + cov / v_i * (_dct2(x_i) - a_i * _dct2(x0))
    var = v_j - cov ** 2 / v_i
    got = p.ancestral_step(lambda x, t: jnp.asarray(n, jnp.float32), jnp.asarray(x_i, jnp.float32),
                           i, key, j)
    np.testing.assert_allclose(_dct2(got), mean + np.sqrt(var) * z_bar, atol=2e-4)
    c_x, c_x0, v = (np.asarray(c)[0, ..., 0] for c in p.posterior(i, j, 1))
    np.testing.assert_allclose(v, var, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(c_x, cov / v_i, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(c_x0, a_j - cov / v_i * a_i, rtol=1e-3, atol=1e-6)
    k = (0, 0, 1)                                    # the lowest non-constant frequency alone
    assert abs(c_x[k[1:]] * _dct2(x_i)[k] + c_x0[k[1:]] * _dct2(x0)[k] - mean[k]) < 1e-5


def test_hoogeboom_x0_hat_and_ddim_invert_the_forward_law():
  """x0_hat = (x_bar - sigma_t n_hat_bar) / (alpha_t d_k(t)) per component, for an eps
  estimate with an error; DDIM with the true eps maps x_i (the oracle's law) onto x_j."""
  from bluediff.processes.blur_diffusion import build_blur_diffusion
  p = build_blur_diffusion(_hoogeboom_config(x0_min_abar=0.0), WhiteNoise())
  x0, n = _hoogeboom_fixture()
  err = 0.01 * np.random.default_rng(5).normal(size=x0.shape)
  alpha, d, s2 = _hoogeboom_np(0.05, 8)
  x_i = _np_x(x0, n, 5)
  _, x0_bar, _, _ = p._predict(lambda x, t: jnp.asarray(n + err, jnp.float32),
                               jnp.asarray(x_i, jnp.float32), 5)
  want = (_dct2(x_i) - np.sqrt(s2) * _dct2(n + err)) / (alpha * d)
  assert np.abs(_idct2(want)).max() < 1                       # the pixel clip is inactive
  np.testing.assert_allclose(np.asarray(x0_bar)[..., 0], want, atol=2e-5)
  net = lambda x, t: jnp.asarray(n, jnp.float32)   # noqa: E731
  for i, j in ((100, 80), (80, 50), (50, 20), (20, 0)):
    got = p.ddim_step(net, jnp.asarray(_np_x(x0, n, i), jnp.float32), i, j)
    np.testing.assert_allclose(np.asarray(got), _np_x(x0, n, j), atol=2e-4)


def test_lsun_presets_use_the_reference_blur():
  """church64 / bedroom64: the reference's schedule (main.py, train.sh): a Gaussian of sigma
  0.4 px sampled on 2 * 64 - 1 taps, linear betas 1e-4..0.02 over N = 1000, quartic f with
  f(N) = (0.15 / 0.4)^2 and f(0) = 0. In the DCT basis (Neumann boundary) per axis its
  damping is the diagonal of C B C^T for the reflected blur matrix B; with basis=svd it
  is the reference's own zero-boundary singular values (its loop omits the +63 tap)."""
  from configs import bedroom64_blur, church64_blur
  from bluediff.processes.blur_diffusion import build_blur_diffusion
  n, r = 64, 63
  taps = np.exp(-0.5 * ((np.arange(2 * n - 1) - r) / 0.4) ** 2)
  taps /= taps.sum()
  neumann, zero = np.zeros((n, n)), np.zeros((n, n))
  for i in range(n):
    for o in range(-r, r + 1):
      j = i + o
      neumann[i, -j - 1 if j < 0 else 2 * n - 1 - j if j >= n else j] += taps[o + r]
      if 0 <= j < n and o < r:                         # the reference's Deblurring.__init__
        zero[i, j] = taps[o + r]
  c = dense_dct(n)
  d_dct = np.diag(c @ neumann @ c.T)
  d_svd = np.linalg.svd(zero, compute_uv=False)
  steps = 1000
  f = (0.15 / 0.4) ** 2 * (np.arange(steps + 1) / steps) ** 4
  cum_f = np.cumsum(f)
  log_abar = np.concatenate([[0.0], np.cumsum(np.log(1 - np.linspace(1e-4, 0.02, steps)))])
  assert abs(d_dct[-1] - 0.8385) < 1e-4 and np.exp(-(np.pi * 63 / 64) ** 2 * 0.08) < 0.47   # vs continuous
  for module, dataset in ((church64_blur, "lsun_church"), (bedroom64_blur, "lsun_bedroom")):
    cfg = module.get_config()
    p = cfg.process
    assert cfg.data.dataset == dataset and cfg.data.image_size == n
    assert (p.name, p.basis, p.blur_schedule, p.blur_d, p.blur_kernel_size) == (
        "blur_diffusion", "dct", "quartic", "discrete", 5)
    assert (p.blur_s0, p.blur_s_max, p.blur_f_max, p.train_steps, p.beta_start, p.beta_end) == (
        0.4, 0.15, -1.0, steps, 1e-4, 0.02)
    assert p.time_scale == steps                       # the network sees the integer step
    assert (cfg.sampling.method, cfg.sampling.num_steps) == ("ancestral", steps)
    for basis, d in (("dct", np.outer(d_dct, d_dct)), ("svd", np.outer(d_svd, d_svd))):
      p.basis = basis
      proc = build_blur_diffusion(cfg, WhiteNoise())
      for i in (1, 400, 1000):
        got = 2 * np.asarray(proc.schedule.log_a(jnp.full((1,), i)))[0, ..., 0]
        want = log_abar[i] + 2 * cum_f[i] * np.log(d)
        np.testing.assert_allclose(np.sort(got.ravel()), np.sort(want.ravel()), rtol=1e-5, atol=1e-6)


def test_reference_step_matches_the_official_update_in_numpy():
  """The official sampler (main.py): x <- x + (x - W x) + U (I - B_i) U^T s + U (I - B_i)^1/2 U^T z,
  W = U B_i^1/2 U^T, score s = -eps / sqrt(1 - Bbar_i), noise only while i > 2; computed here
  with scipy's orthonormal DCT and the per-component B_i = Abar_i / Abar_{i-1} of the tables."""
  from scipy.fft import dctn, idctn
  n, size = 20, 8
  kernel = gaussian_kernel_1d(0.4, 3)
  tables = blur_tables(linear_log_abar(n, 1e-4, 0.2), np.cumsum(blur_steps("quartic", n, 2.0)),
                       np.log(dct_eigenvalues(kernel, size, size)))
  p = BlurDiffusion(dct_basis(size, size), tables, WhiteNoise())
  rng = np.random.default_rng(3)
  x = rng.normal(size=(2, size, size, 1)).astype(np.float32)
  w_eps = rng.normal(size=(1, size, size, 1)).astype(np.float32)
  net = lambda x, t: 0.3 * x + jnp.asarray(w_eps)       # noqa: E731  (a fixed eps predictor)
  abar = np.exp(2 * np.asarray(tables.log_signal, np.float64))[..., None]       # [N+1, H, W, 1]
  dct = lambda v: dctn(v, axes=(1, 2), norm="ortho")     # noqa: E731
  for i in (2, 7, n):
    key = jax.random.key(i)
    z = np.asarray(jax.random.normal(key, x.shape), np.float64)
    b_i = abar[i] / abar[i - 1]
    eps = 0.3 * x + w_eps
    xb = dct(x.astype(np.float64))
    out = 2 * xb - np.sqrt(b_i) * xb - (1 - b_i) * dct(eps) / np.sqrt(1 - abar[i])
    if i > 2:
      out = out + np.sqrt(1 - b_i) * dct(z)
    want = idctn(out, axes=(1, 2), norm="ortho")
    got = np.asarray(p.reference_step(net, jnp.asarray(x), i, key))
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)
