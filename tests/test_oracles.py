"""Independent numpy oracles for the IADB, blue-noise and DDPM/DDIM losses and sampler steps
(methods.md §1, §2.2-2.4), and the law of the losses' random draws.

Each oracle recomputes a loss or one sampler step in float64 numpy from the equations. From
the code it takes only the random draws (`process.draws`, `ddim_update`'s white z) and the
noise operator L_b as a dense [64, 64] matrix (impulse responses of `noise.apply`); the
network is a fixed random per-pixel affine map written twice, in jnp and in numpy. Images
are [B, 8, 8, 1].
"""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats as sps

from bluediff.noise import CholeskyNoise, SpectralNoise, WhiteNoise
from bluediff.noise import statistics as st
from bluediff.processes import pairing
from bluediff.processes.blue import BlueNoiseDiffusion
from bluediff.processes.ddpm import DDPM
from bluediff.processes.iadb import IADB
from bluediff.processes.schedules import Gamma

T = 1000
SIGMOID = ("sigmoid", 0.0, 3.0, 0.2)       # the reference's tau = 0.2 schedule
# For losses: at tau = 0.2 half of the antithetic draws have g ~ 1 - 1e-4, where float32
# g_k - g_{k-1} keeps ~1 significant digit (methods.md's 1000 training steps); at tau = 1 the
# head-2 weight still spans 0.3..1.7 and float32 keeps it to ~1e-4.
TAU1 = ("sigmoid", 0.0, 3.0, 1.0)
LINEAR = ("linear",)
RTOL = 1e-5
RTOL_W = 3e-4   # what depends on the float32 difference g_k - g_{k-1} (head-2 weights)


@pytest.fixture(scope="module")
def stats8():
  return st.get_stats(st.BlueNoiseSpec(8), progress=False)


def _noise(stats8, root):
  if root == "white":
    return WhiteNoise()
  if root == "fft":
    return SpectralNoise.from_spectrum(stats8.spectrum)
  return CholeskyNoise(stats8.cholesky, 8)


def _dense(noise):
  """L_b as a [64, 64] float64 matrix (column j: L_b applied to the j-th unit impulse)."""
  eye = jnp.eye(64).reshape(64, 8, 8, 1)
  return np.asarray(noise.apply(eye), np.float64).reshape(64, 64).T


def _op(m, x):
  """Applies m [64, 64] (one for all) or [B, 64, 64] (per example) to x [B, 8, 8, 1]."""
  flat = np.asarray(x, np.float64).reshape(x.shape[0], 64)
  out = np.einsum("ij,bj->bi" if m.ndim == 2 else "bij,bj->bi", m, flat)
  return out.reshape(x.shape)


def _col(v):
  """[B] -> [B, 1, 1, 1] float64."""
  return np.asarray(v, np.float64).reshape(-1, 1, 1, 1)


def _nets(c_out, seed=0):
  """(jnp net, numpy net): f(x, t) = x * W + t V, W, V [8, 8, c_out] fixed and random."""
  rng = np.random.default_rng(seed)
  w = rng.normal(size=(8, 8, c_out)).astype(np.float32)
  v = rng.normal(size=(8, 8, c_out)).astype(np.float32)
  jnet = lambda x, t: x * w + t[:, None, None, None] * v                        # noqa: E731
  npnet = lambda x, t: np.asarray(x, np.float64) * w + _col(t) * v   # noqa: E731
  return jnet, npnet


def _x0(batch, seed=0):
  return jax.random.uniform(jax.random.key(100 + seed), (batch, 8, 8, 1), minval=-1, maxval=1)


def _sigmoid(v):
  return 1.0 / (1.0 + np.exp(-v))


def _g(spec, u):
  """methods.md §2.2, s the logistic sigmoid:
  g(u) = [s((st + (en - st) u) / tau) - s(st / tau)] / [s(en / tau) - s(st / tau)]."""
  u = np.asarray(u, np.float64)
  if spec[0] == "linear":
    return u
  _, s0, s1, tau = spec
  return (_sigmoid((s0 + (s1 - s0) * u) / tau) - _sigmoid(s0 / tau)) / (
      _sigmoid(s1 / tau) - _sigmoid(s0 / tau))


def _dg(spec, u):
  """g'(u), differentiated by hand."""
  u = np.asarray(u, np.float64)
  if spec[0] == "linear":
    return np.ones_like(u)
  _, s0, s1, tau = spec
  s = _sigmoid((s0 + (s1 - s0) * u) / tau)
  return s * (1 - s) * (s1 - s0) / tau / (_sigmoid(s1 / tau) - _sigmoid(s0 / tau))


def _mix(bmat, g, blend="linear"):
  """L_t = g I + (1 - g) L_b per example, [B, 64, 64]; "vp": each row (pixel) scaled to unit
  variance, i.e. divided by sqrt(diag(L_t L_t^T))."""
  g = np.asarray(g, np.float64)[:, None, None]
  m = g * np.eye(64) + (1 - g) * bmat
  if blend == "vp":
    m = m / np.sqrt(np.sum(m * m, axis=2, keepdims=True))
  return m


def _greedy(cost):
  """The reference's rule: noise i, in order, takes the nearest image still free."""
  free, perm = np.ones(len(cost), bool), []
  for row in cost:
    j = int(np.argmin(np.where(free, row, np.inf)))
    perm.append(j)
    free[j] = False
  return np.array(perm)


def _exact(cost):
  """The assignment of least total (unsquared) cost, by brute force."""
  n = len(cost)
  perms = list(itertools.permutations(range(n)))
  return np.array(perms[int(np.argmin([cost[np.arange(n), p].sum() for p in perms]))])


def _distances(noise, images):
  """Unsquared pixel L2 [B, B] between noise i and image j."""
  diff = np.asarray(noise, np.float64)[:, None] - np.asarray(images, np.float64)[None]
  return np.sqrt(np.sum(diff.reshape(diff.shape[0], diff.shape[1], -1) ** 2, axis=-1))


def _close(got, want, rtol=RTOL, atol=1e-7):
  np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=rtol, atol=atol)


# --- IADB (methods.md §1) ------------------------------------------------------------------
@pytest.mark.parametrize("root", ["white", "fft"])
def test_iadb_loss_matches_numpy(stats8, root):
  p = IADB(_noise(stats8, root))
  bmat = _dense(p.noise)
  x0, key = _x0(4), jax.random.key(1)
  jnet, npnet = _nets(1)
  d = p.draws(key, x0)
  a, eps = _col(d["alpha"]), _op(bmat, d["eps"])        # the noise is L eps
  x0n = np.asarray(x0, np.float64)
  pred = npnet((1 - a) * x0n + a * eps, d["alpha"])
  want = np.mean((pred - (x0n - eps)) ** 2)
  loss, _ = p.loss(jnet, x0, key)
  _close(loss, want, rtol=1e-5)


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_iadb_step_matches_numpy(method):
  p = IADB(WhiteNoise())
  jnet, npnet = _nets(1)
  x = np.asarray(jax.random.normal(jax.random.key(2), (3, 8, 8, 1)), np.float64)
  a, a_prev = 0.625, 0.5
  vel = lambda x, t: -npnet(x, np.full(3, t))          # noqa: E731   dx/da = -D
  v1 = vel(x, a)
  if method == "euler":
    want = x + (a - a_prev) * npnet(x, np.full(3, a))
  else:
    want = x + (a_prev - a) * 0.5 * (v1 + vel(x + (a_prev - a) * v1, a_prev))
  _close(p.step(jnet, jnp.asarray(x, jnp.float32), a, a_prev, method), want, rtol=1e-5, atol=1e-6)


def test_iadb_heun_sampler_matches_numpy():
  """Three steps from x_1 = eps: Heun, Heun, then a plain Euler last step."""
  p = IADB(WhiteNoise())
  jnet, npnet = _nets(1)
  key = jax.random.key(4)
  x = np.asarray(jax.random.normal(key, (3, 8, 8, 1)), np.float64)   # the sampler's start draw
  vel = lambda x, t: -npnet(x, np.full(3, t))           # noqa: E731
  for a, a_prev in ((1.0, 2 / 3), (2 / 3, 1 / 3)):
    v1 = vel(x, a)
    x = x + (a_prev - a) * 0.5 * (v1 + vel(x + (a_prev - a) * v1, a_prev))
  x = x + (1 / 3) * npnet(x, np.full(3, 1 / 3))
  _close(p.sample(jnet, key, (3, 8, 8, 1), method="heun", num_steps=3), x, rtol=1e-5, atol=1e-5)


# --- blue-noise diffusion (methods.md §2.2-2.4) ----------------------------------------------
def _blue_loss(p, bmat, gamma, x0, d, npnet):
  """Eq. 8 in numpy for the draws d: (loss, aux)."""
  k, eps = np.asarray(d["k"], np.float64), np.asarray(d["eps"], np.float64)
  a, a_prev = k / T, (k - 1) / T
  g, g_prev = _g(gamma, a), _g(gamma, a_prev)
  n = _op(_mix(bmat, g, p.blend), eps)                   # L_t eps
  if p.blend == "vp":                                    # head 2: -dL_t/dg eps (central difference)
    h = 1e-6
    direction = -(_op(_mix(bmat, g + h, "vp"), eps) - _op(_mix(bmat, g - h, "vp"), eps)) / (2 * h)
  else:
    direction = _op(bmat, eps) - eps                     # (L_b - I) eps
  x0 = np.asarray(x0, np.float64)
  aux = {}
  if p.pairing != "none":                                # pair L_t eps with the images (§2.4)
    cost = _distances(n, x0)
    perm = _greedy(cost) if p.pairing == "greedy" else _exact(cost)
    np.testing.assert_array_equal(np.asarray(d["perm"]), perm)
    assert np.any(perm != np.arange(len(perm)))          # the test sees the permutation
    idx = np.arange(len(perm))
    aux["pairing_gain"] = np.mean(cost[idx, idx] - cost[idx, perm])
    x0 = x0[perm]
  x_t = _col(a) * n + (1 - _col(a)) * x0
  pred = npnet(x_t, a)
  if p.heads == 1:
    return np.mean((pred - (x0 - n + _col(a_prev) * direction)) ** 2), aux
  w = (g - g_prev) / (a - a_prev)
  if p.parametrisation == "paper":
    target2 = _col(a_prev) * direction
  else:
    target2, w = direction, w * a_prev ** 2
  l1 = np.mean((pred[..., :1] - (x0 - n)) ** 2)
  l2 = np.mean(_col(w) * (pred[..., 1:] - target2) ** 2)
  return l1 + l2, {"loss_x0": l1, "loss_direction": l2, **aux}


BLUE_CASES = {
    "grid_free": dict(root="fft", gamma=TAU1),
    "paper_cholesky": dict(root="cholesky", gamma=TAU1, parametrisation="paper"),
    "one_head": dict(root="fft", gamma=LINEAR, heads=1),
    "grid_free_linear_gamma": dict(root="cholesky", gamma=LINEAR),
    "vp_cholesky": dict(root="cholesky", gamma=TAU1, blend="vp"),
    "greedy": dict(root="fft", gamma=TAU1, pairing="greedy", batch=6, key=1),
    "exact": dict(root="fft", gamma=TAU1, pairing="exact", batch=6, key=1),
}


@pytest.mark.parametrize("case", list(BLUE_CASES))
def test_blue_loss_matches_numpy(stats8, case):
  kw = dict(BLUE_CASES[case])
  root, gamma = kw.pop("root"), kw.pop("gamma")
  batch, seed = kw.pop("batch", 4), kw.pop("key", 0)
  p = BlueNoiseDiffusion(_noise(stats8, root), Gamma(*gamma), **kw)
  x0, key = _x0(batch, seed), jax.random.key(10 + seed)
  jnet, npnet = _nets(p.heads)
  d = p.draws(key, x0)
  want, want_aux = _blue_loss(p, _dense(p.noise), gamma, x0, d, npnet)
  loss, aux = p.loss(jnet, x0, key)
  _close(loss, want, rtol=RTOL if p.heads == 1 else RTOL_W)
  assert set(aux) == set(want_aux)
  for name, value in want_aux.items():
    _close(aux[name], value, rtol=RTOL_W if name == "loss_direction" else RTOL, atol=1e-6)


def test_pairwise_l2_is_unsquared_and_exact_pairing_minimises_it():
  """The reference's cdist cost; its optimum differs from the squared-L2 optimum here."""
  k1, k2 = jax.random.split(jax.random.key(2))
  noise = jax.random.normal(k1, (6, 4, 4, 1))
  images = jax.random.uniform(k2, (6, 4, 4, 1), minval=-2, maxval=2)
  cost = _distances(noise, images)
  _close(pairing.pairwise_l2(noise, images), cost, rtol=1e-5, atol=1e-5)
  best = _exact(cost)
  assert np.any(best != _exact(cost ** 2))
  np.testing.assert_array_equal(np.asarray(pairing.pair("exact", noise, images)), best)
  np.testing.assert_array_equal(np.asarray(pairing.pair("greedy", noise, images)), _greedy(cost))


@pytest.mark.parametrize("case", ["grid_free", "paper", "one_head", "heun"])
def test_blue_step_matches_numpy(stats8, case):
  gamma = LINEAR if case == "one_head" else SIGMOID
  p = BlueNoiseDiffusion(_noise(stats8, "fft"), Gamma(*gamma), heads=1 if case == "one_head" else 2,
                         parametrisation="paper" if case == "paper" else "grid_free")
  jnet, npnet = _nets(p.heads)
  x = np.asarray(jax.random.normal(jax.random.key(3), (3, 8, 8, 1)), np.float64)
  a, a_prev = 0.2, 0.1                                   # where the sigmoid gamma moves
  f = npnet(x, np.full(3, a))
  dg = _g(gamma, a) - _g(gamma, a_prev)
  if case == "one_head":
    want = x + (a - a_prev) * f
  elif case == "paper":                                  # Eq. 7: f2 already holds a_{k-1}
    want = x + (a - a_prev) * f[..., :1] + dg * f[..., 1:]
  elif case == "grid_free":
    want = x + (a - a_prev) * f[..., :1] + dg * a_prev * f[..., 1:]
  else:                                                  # dx/dt = -f1 - g'(t) t f2
    def vel(x, t):
      f = npnet(x, np.full(3, t))
      return -f[..., :1] - _dg(gamma, t) * t * f[..., 1:]
    v1 = vel(x, a)
    want = x + (a_prev - a) * 0.5 * (v1 + vel(x + (a_prev - a) * v1, a_prev))
  method = "heun" if case == "heun" else "euler"
  _close(p.step(jnet, jnp.asarray(x, jnp.float32), a, a_prev, method), want, rtol=1e-5, atol=2e-6)


# --- DDPM / DDIM (methods.md §2.3, DDIM form) ---------------------------------------------------
def _alpha_bar():
  """abar [T + 1]: abar_0 = 1, abar_k = prod_{i<=k} (1 - beta_i), beta linear 1e-4..0.02."""
  return np.concatenate([[1.0], np.cumprod(1.0 - np.linspace(1e-4, 0.02, T))])


def _ddpm(stats8, time_varying, eta=0.0, gamma=SIGMOID):
  ab = jnp.asarray(_alpha_bar(), jnp.float32)
  if not time_varying:
    return DDPM(WhiteNoise(), Gamma("linear"), ab, eta=eta)
  return DDPM(_noise(stats8, "fft"), Gamma(*gamma), ab, eta=eta, time_varying=True)


def _ddpm_mix(p, bmat, k, gamma=SIGMOID):
  """L_k [B, 64, 64]: I (white) or g_k I + (1 - g_k) L_b, g_k = g(k / T)."""
  if not p.time_varying:
    return np.broadcast_to(np.eye(64), (len(k), 64, 64))
  return _mix(bmat, _g(gamma, np.asarray(k, np.float64) / T))


@pytest.mark.parametrize("time_varying", [False, True])
def test_ddpm_loss_matches_numpy(stats8, time_varying):
  p = _ddpm(stats8, time_varying, gamma=TAU1)
  bmat, ab = _dense(p.noise), _alpha_bar()
  x0, key = _x0(4), jax.random.key(6)
  jnet, npnet = _nets(2 if time_varying else 1)
  d = p.draws(key, x0)
  k, eps = np.asarray(d["k"], np.float64), np.asarray(d["eps"], np.float64)
  ki = k.astype(int)
  n = _op(_ddpm_mix(p, bmat, k, TAU1), eps)              # L_k eps
  x_k = np.sqrt(_col(ab[ki])) * np.asarray(x0, np.float64) + np.sqrt(1 - _col(ab[ki])) * n
  pred = npnet(x_k, k / T)
  loss, aux = p.loss(jnet, x0, key)
  if not time_varying:
    _close(loss, np.mean((pred - n) ** 2), rtol=1e-5)
    return
  l1 = np.mean((pred[..., :1] - n) ** 2)
  # head-2 weight (ours): ((g_k - g_{k-1}) T)^2 (1 - abar_{k-1}) / T
  w = ((_g(TAU1, k / T) - _g(TAU1, (k - 1) / T)) * T) ** 2 * (1 - ab[ki - 1]) / T
  l2 = np.mean(_col(w) * (pred[..., 1:] - (_op(bmat, eps) - eps)) ** 2)
  _close(loss, l1 + l2, rtol=RTOL_W)
  _close(aux["loss_eps"], l1)
  _close(aux["loss_direction"], l2, rtol=RTOL_W, atol=1e-9)


@pytest.mark.parametrize("time_varying", [False, True])
@pytest.mark.parametrize("eta", [0.0, 0.8])
def test_ddim_step_matches_numpy(stats8, time_varying, eta):
  """Deterministic part (z = 0) and the fresh noise s L_j z apart, then ddim_step whole, from
  x_k of an x0 != 0."""
  p = _ddpm(stats8, time_varying, eta)
  bmat, ab = _dense(p.noise), _alpha_bar()
  jnet, npnet = _nets(2 if time_varying else 1)
  k, j = 600, 300
  x0 = np.asarray(_x0(3), np.float64)
  eps = np.asarray(jax.random.normal(jax.random.key(7), x0.shape), np.float64)
  x = np.sqrt(ab[k]) * x0 + np.sqrt(1 - ab[k]) * _op(_ddpm_mix(p, bmat, np.full(3, k)), eps)
  f = npnet(x, np.full(3, k / T))
  x0_hat = (x - np.sqrt(1 - ab[k]) * f[..., :1]) / np.sqrt(ab[k])
  n_j = f[..., :1]
  if time_varying:                           # L_j eps = L_k eps + (g_k - g_j) (L_b - I) eps
    n_j = n_j + (_g(SIGMOID, k / T) - _g(SIGMOID, j / T)) * f[..., 1:]
  s = eta * np.sqrt((1 - ab[j]) / (1 - ab[k])) * np.sqrt(1 - ab[k] / ab[j])
  det = np.sqrt(ab[j]) * x0_hat + np.sqrt(1 - ab[j] - s ** 2) * n_j
  xj = jnp.asarray(x, jnp.float32)
  zero = p.ddim_update(jnet, xj, k, j, jnp.zeros_like(xj))
  _close(zero, det, rtol=1e-5, atol=2e-5)
  z = jax.random.normal(jax.random.key(8), x.shape)
  lj_z = _op(_ddpm_mix(p, bmat, np.full(3, j)), z)
  noise = np.asarray(p.ddim_update(jnet, xj, k, j, z)) - np.asarray(zero)
  _close(noise, s * lj_z, rtol=1e-4, atol=2e-5)
  key = jax.random.key(9)
  whole = det + s * _op(_ddpm_mix(p, bmat, np.full(3, j)), jax.random.normal(key, x.shape))
  _close(p.ddim_step(jnet, xj, k, j, key), whole, rtol=1e-5, atol=3e-5)


# --- the law of the draws ------------------------------------------------------------------------
N = 20_000


def test_iadb_draws_alpha_uniform_and_eps_standard_normal():
  d = IADB(WhiteNoise()).draws(jax.random.key(0), jnp.zeros((N, 1, 1, 1)))
  alpha, eps = np.asarray(d["alpha"]), np.asarray(d["eps"]).ravel()
  assert alpha.shape == (N,) and 0 <= alpha.min() and alpha.max() < 1
  assert sps.kstest(alpha, "uniform").pvalue > 1e-3
  assert sps.kstest(eps, "norm").pvalue > 1e-3


def test_iadb_logit_normal_alpha_is_the_sigmoid_of_a_standard_normal():
  """Oracle: the law's own CDF, P(a <= u) = Phi(log(u / (1 - u))), from scipy."""
  d = IADB(WhiteNoise(), alpha_sampling="logit_normal").draws(jax.random.key(0),
                                                              jnp.zeros((N, 1, 1, 1)))
  alpha = np.asarray(d["alpha"], np.float64)
  assert 0 < alpha.min() and alpha.max() < 1
  cdf = lambda u: sps.norm.cdf(np.log(u) - np.log1p(-u))   # noqa: E731
  assert sps.kstest(alpha, cdf).pvalue > 1e-3
  assert sps.kstest(alpha, "uniform").pvalue < 1e-6        # not the uniform law


def _assert_uniform_steps(k, num_steps=T):
  """k integer-valued, every value of {1..T} drawn, counts consistent with uniform."""
  k = np.asarray(k)
  np.testing.assert_array_equal(k, np.round(k))
  counts = np.bincount(k.astype(int), minlength=num_steps + 1)
  assert counts[0] == 0 and len(counts) == num_steps + 1 and np.all(counts[1:] > 0)
  assert sps.chisquare(counts[1:]).pvalue > 1e-3


@pytest.mark.parametrize("antithetic", [True, False])
def test_blue_draws_k_uniform_and_antithetic(stats8, antithetic):
  p = BlueNoiseDiffusion(_noise(stats8, "fft"), Gamma(*SIGMOID), antithetic=antithetic)
  d = p.draws(jax.random.key(1), jnp.zeros((2 * N, 1, 1, 1)))
  k = np.asarray(d["k"])
  first, second = k[:N], k[N:]
  _assert_uniform_steps(first)
  np.testing.assert_array_equal(np.asarray(d["perm"]), np.arange(2 * N))   # no pairing
  assert sps.kstest(np.asarray(d["eps"]).ravel(), "norm").pvalue > 1e-3
  if antithetic:            # the second half is exactly T + 1 - k of the first
    np.testing.assert_array_equal(second, T + 1 - first)
  else:
    _assert_uniform_steps(second)
    assert np.mean(second == T + 1 - first) < 0.01


def test_blue_antithetic_odd_batch(stats8):
  p = BlueNoiseDiffusion(_noise(stats8, "fft"), Gamma(*SIGMOID))
  k = np.asarray(p.draws(jax.random.key(2), jnp.zeros((7, 1, 1, 1)))["k"])
  np.testing.assert_array_equal(k[4:], T + 1 - k[:3])


def test_ddpm_draws_k_uniform(stats8):
  d = _ddpm(stats8, False).draws(jax.random.key(3), jnp.zeros((N, 1, 1, 1)))
  _assert_uniform_steps(d["k"])
  assert sps.kstest(np.asarray(d["eps"]).ravel(), "norm").pvalue > 1e-3


# --- cold diffusion and blur diffusion: losses from the equations -----------------------


def test_cold_deblurring_loss_matches_numpy():
  """|R(D(x0, t), t / T) - x0| with D = t repeated reflect-padded Gaussian blurs, computed
  with scipy.ndimage (mode 'mirror' is numpy's/torch's 'reflect') and the kernel's closed form."""
  from scipy import ndimage
  from bluediff.degradations import Blur
  from bluediff.processes.cold import ColdDiffusion
  stds = [0.8, 1.0, 1.2, 1.4]
  p = ColdDiffusion(Blur.build(stds, 5, 8, "reflect"), loss_kind="l1")
  rng = np.random.default_rng(0)
  x0 = rng.uniform(-1, 1, (4, 8, 8, 1)).astype(np.float32)
  net = lambda x, t: 0.7 * x + 0.05 * t[:, None, None, None]   # noqa: E731
  draws = p.draws(jax.random.key(3), jnp.asarray(x0))
  t = np.asarray(draws["t"])
  want = []
  for b in range(4):
    x = x0[b, :, :, 0].astype(np.float64)
    for s in stds[:t[b]]:
      r = np.arange(-2, 3)
      k = np.exp(-r ** 2 / (2 * s ** 2))
      k /= k.sum()
      x = ndimage.convolve(x, np.outer(k, k), mode="mirror")
    want.append(np.abs(0.7 * x + 0.05 * t[b] / 4 - x0[b, :, :, 0]))
  got, _ = p.loss_from_draws(net, jnp.asarray(x0), draws)
  np.testing.assert_allclose(float(got), np.mean(want), rtol=1e-5)
  np.testing.assert_allclose(float(p.loss(net, jnp.asarray(x0), jax.random.key(3))[0]), float(got), rtol=1e-6)
  assert t.min() >= 1 and t.max() <= 4


def test_blur_diffusion_loss_matches_numpy():
  """|eps_hat(x_i, i / N) - n|^2 with x_i = U(sqrt(Abar_i) U^T x0 + sqrt(1 - Abar_i) U^T n)
  (Lee et al., methods.md §4), Abar_{i,k} = abar_i d_k^{2 F(i)} built here in numpy from the
  linear betas, the quartic F and the sampled kernel's DCT eigenvalues; U = scipy's DCT-II."""
  from scipy.fft import dctn, idctn
  from bluediff.bases import dct_basis, dct_eigenvalues
  from bluediff.processes.blur_diffusion import BlurDiffusion, blur_steps, blur_tables, linear_log_abar
  n, size, f_max = 20, 8, 2.0
  kernel = np.exp(-np.arange(-1, 2) ** 2 / (2 * 0.4 ** 2))
  kernel /= kernel.sum()
  lam1 = kernel[1] + 2 * kernel[2] * np.cos(np.pi * np.arange(size) / size)   # 3-tap DCT eigenvalues
  d = lam1[:, None] * lam1[None, :]
  tables = blur_tables(linear_log_abar(n, 1e-4, 0.2), np.cumsum(blur_steps("quartic", n, f_max)),
                       np.log(dct_eigenvalues(kernel, size, size)))
  p = BlurDiffusion(dct_basis(size, size), tables, WhiteNoise())
  rng = np.random.default_rng(1)
  x0 = rng.uniform(-1, 1, (4, size, size, 1)).astype(np.float32)
  net = lambda x, t: 0.3 * x + 0.1 * t[:, None, None, None]   # noqa: E731
  draws = p.draws(jax.random.key(5), jnp.asarray(x0))
  i, noise = np.asarray(draws["i"]), np.asarray(draws["n"], np.float64)
  abar = np.cumprod(1 - np.linspace(1e-4, 0.2, n))                   # abar_1..abar_N
  big_f = np.cumsum(f_max * (np.arange(n + 1) / n) ** 4)            # F(i) = sum_{j<=i} f(j), quartic f
  want = []
  for b in range(4):
    ab = abar[i[b] - 1] * d ** (2 * big_f[i[b]])
    xb = np.sqrt(ab) * dctn(x0[b, :, :, 0], norm="ortho") + np.sqrt(1 - ab) * dctn(noise[b, :, :, 0], norm="ortho")
    x_i = idctn(xb, norm="ortho")
    want.append((0.3 * x_i + 0.1 * i[b] / n - noise[b, :, :, 0]) ** 2)
  got, _ = p.loss_from_draws(net, jnp.asarray(x0), draws)
  np.testing.assert_allclose(float(got), np.mean(want), rtol=1e-4)
