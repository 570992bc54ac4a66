"""Helpers pinned to values computed without them: closed forms written out here,
scipy.ndimage, and hard-coded numbers (issue 16, item 2).

Elsewhere these helpers are the oracles' own building blocks (the O(1) blur is
checked against `Blur.recursive`, which samples the same `gaussian_kernel_1d`;
the blue-noise samplers against `circulant_covariance`), so a wrong helper
would pass there on both sides.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

from bluediff import degradations as dg
from bluediff.noise import statistics as st
from bluediff.processes.blur_diffusion import blur_steps, linear_log_abar
from bluediff.processes.ddpm import linear_alpha_bar


def _gauss(std, size):
  """exp(-x^2 / 2 s^2) on x = -(size // 2)..size // 2, divided by its sum (written out
  here, not the library's helper)."""
  r = size // 2
  w = [math.exp(-x * x / (2.0 * std * std)) for x in range(-r, r + 1)]
  return np.array(w) / sum(w)


# --- the sampled Gaussian kernel ---------------------------------------------------

def test_gaussian_kernel_is_the_sampled_normalised_gaussian():
  for std, size in ((0.35, 11), (1.0, 5), (2.0, 7), (3.3, 27)):
    np.testing.assert_allclose(dg.gaussian_kernel_1d(std, size), _gauss(std, size), rtol=1e-12)
  # hard-coded (10 digits, by hand from exp(-x^2/2s^2) / sum): catches a closed form shared
  # by mistake with the code above
  np.testing.assert_allclose(dg.gaussian_kernel_1d(1.0, 5),
                             [0.0544886845, 0.2442013420, 0.4026199469, 0.2442013420, 0.0544886845],
                             atol=1e-10)
  np.testing.assert_allclose(dg.gaussian_kernel_1d(0.5, 3), [0.1065069789, 0.7869860422, 0.1065069789],
                             atol=1e-10)
  np.testing.assert_allclose(dg.gaussian_kernel_1d(2.0, 7)[3], 0.2161059410, atol=1e-10)


# --- cold blur against scipy.ndimage -------------------------------------------------

# numpy's / torch's 'reflect' (whole-sample symmetric, edge not repeated) is scipy's
# 'mirror'; periodic padding is scipy's 'wrap'.
SCIPY_MODE = {"reflect": "mirror", "periodic": "wrap"}


@pytest.mark.parametrize("padding", ["reflect", "periodic"])
def test_blur_is_t_repeated_scipy_convolutions(padding):
  stds = [0.6 + 0.25 * i for i in range(12)]
  blur = dg.Blur.build(stds, 11, 16, padding)
  x = np.asarray(jax.random.uniform(jax.random.key(0), (2, 16, 16, 3), minval=-1, maxval=1),
                 np.float64)
  want = x
  for t in range(1, 13):
    k = _gauss(stds[t - 1], 11)
    k2 = np.outer(k, k)[None, :, :, None]           # one kernel per image and channel
    want = scipy.ndimage.convolve(want, k2, mode=SCIPY_MODE[padding])
    if t in (1, 2, 5, 12):
      got = np.asarray(blur(jnp.asarray(x, jnp.float32), jnp.full((2,), t)))
      np.testing.assert_allclose(got, want, atol=3e-5, err_msg=f"t={t}")
      np.testing.assert_allclose(np.asarray(blur.recursive(jnp.asarray(x, jnp.float32), t)), want,
                                 atol=3e-5, err_msg=f"recursive t={t}")
  # per-example t: each row of the batch gets its own number of blurs
  got = np.asarray(blur(jnp.asarray(x, jnp.float32), jnp.array([12, 0])))
  np.testing.assert_allclose(got[0], want[0], atol=3e-5)
  np.testing.assert_allclose(got[1], x[1], atol=1e-6)


# --- super-resolution: Keys bicubic halving ------------------------------------------

def _halve_1d(x, axis):
  """Keys a = -0.5 halving with half-pixel centres, no antialias: output i sits at input
  coordinate 2i + 1/2, taps 2i-1, 2i, 2i+1, 2i+2 at distances 3/2, 1/2, 1/2, 3/2, weights
  k(1/2) = 9/16 and k(3/2) = -1/16. jax.image.resize gives off-image taps zero weight and
  renormalises the rest (the edges' weights sum to 17/16): output 0 is
  (9 x0 + 9 x1 - x2) / 17, the last (-x_{n-3} + 9 x_{n-2} + 9 x_{n-1}) / 17."""
  x = np.moveaxis(x, axis, 0)
  n = x.shape[0]
  out = np.empty((n // 2,) + x.shape[1:])
  for i in range(n // 2):
    taps = [(j, w) for j, w in zip(range(2 * i - 1, 2 * i + 3), (-1, 9, 9, -1)) if 0 <= j < n]
    out[i] = sum(w * x[j] for j, w in taps) / sum(w for _, w in taps)
  return np.moveaxis(out, 0, axis)


def test_super_resolution_halving_is_keys_bicubic():
  x = np.asarray(jax.random.uniform(jax.random.key(1), (2, 16, 16, 3), minval=-1, maxval=1),
                 np.float64)
  sr = dg.SuperResolution(num_steps=3)
  out = np.asarray(sr(jnp.asarray(x, jnp.float32), jnp.array([1, 2])))
  small = x
  for t in (1, 2):
    small = _halve_1d(_halve_1d(small, 1), 2)
    up = np.repeat(np.repeat(small, 2 ** t, axis=1), 2 ** t, axis=2)   # nearest back to 16x16
    np.testing.assert_allclose(out[t - 1], up[t - 1], atol=2e-6, err_msg=f"t={t}")
  # hard-coded: a unit impulse at (3, 3) of an 8x8 image lands on outputs 1 and 2 with
  # (9/16, -1/16) per axis; one at the corner is renormalised by the edge: (9/17)^2
  delta = np.zeros((1, 8, 8, 1), np.float32)
  delta[0, 3, 3, 0] = delta[0, 0, 0, 0] = 1.0
  half = np.asarray(dg.SuperResolution(num_steps=1)(jnp.asarray(delta), jnp.array([1])))[0, ::2, ::2, 0]
  want = np.zeros((4, 4))
  want[1:3, 1:3] = [[81 / 256, -9 / 256], [-9 / 256, 1 / 256]]
  want[0, 0] = (9 / 17) ** 2
  np.testing.assert_allclose(half, want, atol=1e-6)


# --- noise schedules: hard-coded numbers ---------------------------------------------

def test_ddpm_linear_alpha_bar_reference_numbers():
  """prod_{i<=k} (1 - beta_i), betas linspace(1e-4, 0.02, 1000) (Ho et al.): the
  well-known abar_T = 4.036e-5 (sqrt 0.00635), and values along the way."""
  want = {0: 1.0, 1: 0.9999, 10: 0.9981052047858344, 100: 0.89701814567496,
          500: 0.07858724288177824, 1000: 4.035829765375676e-05}
  ab = linear_alpha_bar(1000)
  log_ab = linear_log_abar(1000)                  # blur diffusion's own copy, in logs
  for k, v in want.items():
    assert ab[k] == pytest.approx(v, rel=1e-10), k
    assert np.exp(log_ab[k]) == pytest.approx(v, rel=1e-10), k


def test_cold_cosine_alpha_bar_reference_numbers():
  """FixedNoise.cosine(4): cos^2((u + s) / (1 + s) pi / 2) / (same at u = 0), s = 0.008,
  clipped below at 1e-5 (the last value is 3.7e-33)."""
  ab = np.asarray(dg.FixedNoise.cosine(4).alpha_bar)
  np.testing.assert_allclose(ab, [1.0, 0.847012161, 0.493843590, 0.144272102, 1e-5], rtol=1e-6)


def test_blur_diffusion_f_schedules_reference_numbers():
  """f(i) = f_max shape(i / N), f(0) = 0; N = 4, f_max = 2."""
  want = {"linear": [0, 0.5, 1.0, 1.5, 2.0],
          "quadratic": [0, 0.125, 0.5, 1.125, 2.0],
          "cubic": [0, 2 / 64, 0.25, 54 / 64, 2.0],
          "quartic": [0, 2 / 256, 0.125, 162 / 256, 2.0],
          "log": [0, 2 * math.log(2) / math.log(5), 2 * math.log(3) / math.log(5),
                  2 * math.log(4) / math.log(5), 2.0],
          "none": [0, 0, 0, 0, 0]}
  for kind, v in want.items():
    np.testing.assert_allclose(blur_steps(kind, 4, 2.0), v, rtol=1e-12, atol=1e-15, err_msg=kind)


# --- blue noise: the covariance the samplers are tested against -----------------------

def test_circulant_covariance_is_the_dft_of_the_spectrum():
  """Cov = F^H diag(S) F / d with F the 2-D DFT matrix (raster order, rows y-major): the
  covariance of the stationary field whose power spectrum is S."""
  h, w = 4, 6
  s = np.random.default_rng(0).uniform(0.1, 2.0, (h, w))
  s = 0.5 * (s + s[(-np.arange(h)) % h][:, (-np.arange(w)) % w])       # S(k) = S(-k): real field
  f1 = lambda n: np.exp(-2j * np.pi * np.outer(np.arange(n), np.arange(n)) / n)   # noqa: E731
  f = np.kron(f1(h), f1(w))
  want = f.conj().T @ np.diag(s.ravel()) @ f / (h * w)
  assert np.abs(want.imag).max() < 1e-12
  np.testing.assert_allclose(st.circulant_covariance(s), want.real, atol=1e-12)
  # a flat spectrum is white: the identity
  np.testing.assert_allclose(st.circulant_covariance(np.ones((3, 5))), np.eye(15), atol=1e-12)
