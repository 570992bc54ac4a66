"""DDPM training targets and the DDIM sampler (white and the blue-noise form)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bluediff.noise import SpectralNoise, WhiteNoise
from bluediff.noise import statistics as st
from bluediff.processes.ddpm import DDPM, linear_alpha_bar
from bluediff.processes.schedules import Gamma


def test_alpha_bar_closed_form():
  ab = linear_alpha_bar(1000)
  assert ab[0] == 1.0 and ab[1] == pytest.approx(1 - 1e-4)
  assert ab[1000] == pytest.approx(np.prod(1 - np.linspace(1e-4, 0.02, 1000)))
  assert np.all(np.diff(ab) < 0)


def _process(time_varying, eta=0.0):
  abar = jnp.asarray(linear_alpha_bar(1000), jnp.float32)
  if not time_varying:
    return DDPM(WhiteNoise(), Gamma("linear"), abar, eta=eta)
  stats = st.get_stats(st.BlueNoiseSpec(8), progress=False)
  return DDPM(SpectralNoise.from_spectrum(stats.spectrum), Gamma("sigmoid", 0, 3, 0.2), abar,
              eta=eta, time_varying=True)


def _oracle(p, x0):
  """The exact network for one training image (inverts L_k through the FFT root)."""
  def net(x, t):
    k = t * p.train_steps
    ab = p.alpha_bar[jnp.round(k).astype(jnp.int32)][:, None, None, None]
    n = (x - jnp.sqrt(ab) * x0) / jnp.sqrt(1 - ab)                      # L_k eps
    if not p.time_varying:
      return n
    g = p._g(jnp.round(k))[:, None, None, None]
    amp = p.noise.amplitude
    eps = jnp.fft.irfft2(jnp.fft.rfft2(n, axes=(1, 2)) / (g + (1 - g) * amp[None, :, :, None]),
                         s=x.shape[1:3], axes=(1, 2))
    return jnp.concatenate([n, p.noise.apply(eps) - eps], -1)
  return net


@pytest.mark.parametrize("time_varying", [False, True])
def test_ddim_step_with_the_oracle_follows_the_forward_marginals(time_varying):
  p = _process(time_varying)
  x0 = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1), minval=-1, maxval=1)
  eps = jax.random.normal(jax.random.key(1), x0.shape)
  for k, j in ((1000, 900), (500, 480), (40, 0)):
    x_k, _ = p.forward(x0, eps, jnp.full((2,), float(k)))
    x_j = p.ddim_step(_oracle(p, x0), x_k, k, j, jax.random.key(2))
    want, _ = p.forward(x0, eps, jnp.full((2,), float(j)))
    np.testing.assert_allclose(np.asarray(x_j), np.asarray(want), atol=2e-4)


@pytest.mark.parametrize("time_varying", [False, True])
def test_ddim_sampler_with_the_oracle_returns_the_image(time_varying):
  p = _process(time_varying)
  x0 = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1), minval=-1, maxval=1)
  out = jax.jit(lambda k: p.sample(_oracle(p, x0), k, x0.shape, num_steps=50))(jax.random.key(3))
  np.testing.assert_allclose(np.asarray(out), np.asarray(x0), atol=1e-4)


def test_eta_one_step_keeps_the_marginal_variance():
  p = _process(False, eta=1.0)
  x0 = jnp.zeros((4096, 4, 4, 1))
  eps = jax.random.normal(jax.random.key(0), x0.shape)
  x_k, _ = p.forward(x0, eps, jnp.full((4096,), 600.0))
  x_j = p.ddim_step(_oracle(p, x0), x_k, 600, 300, jax.random.key(1))
  assert float(jnp.var(x_j)) == pytest.approx(1 - float(p.alpha_bar[300]), rel=0.05)
  assert not np.allclose(np.asarray(x_j), np.asarray(p.forward(x0, eps, jnp.full((4096,), 300.0))[0]))


def test_loss_of_the_oracle_is_zero():
  for tv in (False, True):
    p = _process(tv)
    x0 = jax.random.uniform(jax.random.key(0), (4, 8, 8, 1), minval=-1, maxval=1)
    loss, _ = p.loss(_oracle(p, x0), x0, jax.random.key(5))
    assert float(loss) < 1e-8
