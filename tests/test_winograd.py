"""Winograd F(2x2, 3x3) / F(4x4, 3x3) convolutions against XLA's direct convolution."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bluediff.models.conv import Conv, winograd_tile
from bluediff.models.winograd import TILES, winograd_conv3x3


def direct(x, kernel):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def relative_error(got, want):
  return float(jnp.max(jnp.abs(got - want)) / jnp.max(jnp.abs(want)))


@pytest.mark.parametrize("m", [2, 4])
def test_one_dimensional_minimal_filtering_identity(m):
  """A^T [(G g) * (B^T d)] is the m outputs of correlating the n-tap window d with
  the 3-tap g: the defining identity of F(m, 3), checked in float64."""
  tile = TILES[m]
  rng = np.random.default_rng(m)
  for _ in range(5):
    d, g = rng.normal(size=tile.n), rng.normal(size=3)
    want = np.array([d[i:i + 3] @ g for i in range(m)])
    np.testing.assert_allclose(tile.AT @ ((tile.G @ g) * (tile.BT @ d)), want, rtol=1e-12)


# (m, batch, H, W, C_in, C_out, max relative error): float32 rounding grows with
# the transforms' coefficients, ~1e-6 for m = 2 and ~1e-5 for m = 4.
CASES = [(2, 2, 6, 10, 5, 7, 3e-6), (4, 2, 8, 12, 6, 3, 5e-5), (4, 1, 4, 4, 16, 16, 5e-5)]


@pytest.mark.parametrize("m,b,h,w,ci,co,tol", CASES)
def test_equals_direct_convolution_values_and_gradients(m, b, h, w, ci, co, tol):
  x = jax.random.normal(jax.random.key(0), (b, h, w, ci))
  kernel = jax.random.normal(jax.random.key(1), (3, 3, ci, co))
  assert relative_error(jax.jit(winograd_conv3x3, static_argnums=2)(x, kernel, m),
                        direct(x, kernel)) < tol
  # The custom VJP (flipped-kernel input gradient, batched kernel gradient) against
  # XLA's gradients of the direct convolution, for a non-trivial cotangent.
  cot = jax.random.normal(jax.random.key(2), (b, h, w, co))
  loss = lambda f: jax.grad(lambda x, k: jnp.sum(cot * f(x, k)), argnums=(0, 1))
  got = jax.jit(loss(lambda x, k: winograd_conv3x3(x, k, m)))(x, kernel)
  want = loss(direct)(x, kernel)
  for g, r in zip(got, want):
    assert g.shape == r.shape
    assert relative_error(g, r) < tol


def test_rejects_shapes_it_cannot_tile():
  x = jnp.zeros((1, 6, 8, 4))
  with pytest.raises(ValueError, match="divisible by m=4"):
    winograd_conv3x3(x, jnp.zeros((3, 3, 4, 4)), 4)
  with pytest.raises(ValueError, match="divisible by m=4"):      # under differentiation too
    jax.grad(lambda x: jnp.sum(winograd_conv3x3(x, jnp.zeros((3, 3, 4, 4)), 4)))(x)
  with pytest.raises(ValueError, match="3x3 kernel"):
    winograd_conv3x3(jnp.zeros((1, 8, 8, 4)), jnp.zeros((5, 5, 4, 4)), 4)
  with pytest.raises(ValueError, match="m in"):
    winograd_conv3x3(jnp.zeros((1, 6, 6, 4)), jnp.zeros((3, 3, 4, 4)), 3)


def test_auto_picks_winograd_only_where_it_applies():
  f32, c = jnp.float32, 128
  assert winograd_tile((2, 32, 32, c), (3, 3, c, c), 1, f32, backend="gpu") == 0
  tile = functools.partial(winograd_tile, backend="cpu")
  assert tile((2, 32, 32, c), (3, 3, c, 2 * c), 1, f32) == 4
  assert tile((2, 6, 6, c), (3, 3, c, c), 1, f32) == 2            # even, not 4k
  assert tile((2, 5, 5, c), (3, 3, c, c), 1, f32) == 0            # odd
  assert tile((2, 4, 4, c), (3, 3, c, c), 1, f32) == 0            # tiny: im2col
  assert tile((2, 32, 32, c), (3, 3, c, c), 2, f32) == 0          # strided
  assert tile((2, 32, 32, c), (1, 1, c, c), 1, f32) == 0          # 1x1
  assert tile((2, 32, 32, 3), (3, 3, 3, c), 1, f32) == 0          # RGB in
  assert tile((2, 8, 8, 64), (3, 3, 64, 64), 1, f32) == 0         # narrow
  assert tile((2, 32, 32, c), (3, 3, c, c), 1, jnp.bfloat16) == 0


def test_conv_module_auto_matches_direct_with_the_same_parameters():
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 128))
  auto, plain = Conv(128, 3, algorithm="auto"), Conv(128, 3, algorithm="direct")
  params = jax.tree.map(lambda p: p + 0.1, plain.init(jax.random.key(1), x))
  assert jax.tree.structure(auto.init(jax.random.key(1), x)) == jax.tree.structure(params)
  assert winograd_tile(x.shape, (3, 3, 128, 128), 1, x.dtype) == (
      4 if jax.default_backend() == "cpu" else 0)
  assert relative_error(auto.apply(params, x), plain.apply(params, x)) < 5e-5
  with pytest.raises(ValueError, match="unknown"):
    Conv(128, 3, algorithm="fft").apply(params, x)


def test_unet_conv_algorithm_changes_rounding_only(tiny_config):
  """The config's model.conv_algorithm reaches every conv: "auto" runs Winograd (not
  bit-equal to "direct") and agrees with it to float32 rounding."""
  from bluediff.config import ConfigError, validate
  from bluediff.models import build_model
  c = tiny_config()
  c.model.channels, c.model.channel_mult, c.model.attn_resolutions = 128, (1,), ()
  c.model.norm_groups = 8
  validate(c, num_devices=1)
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 1))
  t = jnp.array([0.2, 0.7])
  outputs = {}
  for algorithm in ("auto", "direct"):
    c.model.conv_algorithm = algorithm
    model = build_model(c.model, out_channels=1)
    assert model.conv_algorithm == algorithm
    params = model.init(jax.random.key(1), x, t)["params"]
    params = jax.tree.map(lambda p: p + 0.05, params)          # a non-zero output conv
    outputs[algorithm] = jax.jit(lambda p: model.apply({"params": p}, x, t))(params)
  if jax.default_backend() == "cpu":           # elsewhere "auto" is the direct convolution
    assert not np.array_equal(outputs["auto"], outputs["direct"])
  assert relative_error(outputs["auto"], outputs["direct"]) < 1e-4
  c.model.conv_algorithm = "fft"
  with pytest.raises(ConfigError, match="conv_algorithm"):
    validate(c, num_devices=1)


def test_batch_sharded_over_devices_equals_one_device():
  """Data parallelism: the tile axis merges the sharded batch with the tile grid;
  values and the kernel gradient (summed over the batch) match the unsharded run."""
  from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
  devices = np.array(jax.devices()[:4])
  assert devices.size == 4, "conftest provides 4 CPU devices"
  mesh = Mesh(devices, ("data",))
  x = jax.random.normal(jax.random.key(0), (8, 8, 8, 6))
  kernel = jax.random.normal(jax.random.key(1), (3, 3, 6, 5))
  f = jax.jit(jax.value_and_grad(lambda x, k: jnp.sum(jnp.sin(winograd_conv3x3(x, k, 4))),
                                 argnums=(0, 1)))
  want = f(x, kernel)
  got = f(jax.device_put(x, NamedSharding(mesh, P("data"))),
          jax.device_put(kernel, NamedSharding(mesh, P())))
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):    # summation order differs
    assert relative_error(g, w) < 5e-5
