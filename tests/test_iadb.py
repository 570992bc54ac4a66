"""IADB: closed forms and the exact-oracle sampler property (methods.md §1)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bluediff.noise import WhiteNoise
white_noise = WhiteNoise()
from bluediff.processes.iadb import IADB


def oracle(x0, process):
  """The exact D(x_a, a) = x0 - eps for a single training image x0."""
  def net(x, a):
    a = a[:, None, None, None]
    eps = (x - (1 - a) * x0) / jnp.maximum(a, 1e-12)
    return x0 - eps
  return net


@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("num_steps", [1000, 128, 7])
def test_oracle_sampler_returns_the_image(method, num_steps):
  x0 = jax.random.uniform(jax.random.key(0), (1, 8, 8, 1), minval=-1, maxval=1)
  p = IADB(white_noise)
  out = jax.jit(lambda k: p.sample(oracle(x0, p), k, (3, 8, 8, 1), method=method,
                                   num_steps=num_steps))(jax.random.key(1))
  np.testing.assert_allclose(np.asarray(out), np.broadcast_to(np.asarray(x0), out.shape),
                             atol=2e-5)


def test_loss_is_zero_for_the_oracle_and_matches_the_target():
  x0 = jax.random.uniform(jax.random.key(0), (4, 8, 8, 1), minval=-1, maxval=1)
  p = IADB(white_noise)
  key = jax.random.key(3)
  loss, _ = p.loss(oracle(x0, p), x0, key)
  assert float(loss) < 1e-8
  # A net that predicts zeros pays exactly mean((x0 - eps)^2).
  k_alpha, k_eps = jax.random.split(key)
  eps = white_noise(k_eps, x0.shape)
  loss0, _ = p.loss(lambda x, a: jnp.zeros_like(x), x0, key)
  np.testing.assert_allclose(float(loss0), float(jnp.mean((x0 - eps) ** 2)), rtol=1e-6)


def test_corrupt_endpoints():
  p = IADB(white_noise)
  x0, eps = jnp.ones((2, 4, 4, 1)), -jnp.ones((2, 4, 4, 1))
  np.testing.assert_array_equal(p.corrupt(x0, jnp.zeros(2), eps), x0)
  np.testing.assert_array_equal(p.corrupt(x0, jnp.ones(2), eps), eps)
  np.testing.assert_allclose(p.corrupt(x0, jnp.full(2, 0.25), eps), 0.5 * x0)


def test_unknown_sampler_is_rejected():
  with pytest.raises(ValueError, match="choose one of"):
    IADB(white_noise).sample(lambda x, a: x, jax.random.key(0), (1, 4, 4, 1),
                             method="nope", num_steps=2)
