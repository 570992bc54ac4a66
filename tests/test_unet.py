import jax
import jax.numpy as jnp
import numpy as np

from bluediff.models.unet import UNet, timestep_embedding


def test_timestep_embedding_closed_form():
  t = jnp.array([0.0, 0.5, 3.0])
  emb = np.asarray(timestep_embedding(t, 8, max_period=10_000.0))
  freqs = np.exp(-np.log(10_000.0) * np.arange(4) / 4)
  want = np.concatenate([np.cos(np.outer(t, freqs)), np.sin(np.outer(t, freqs))], -1)
  np.testing.assert_allclose(emb, want, rtol=1e-6, atol=1e-6)


def test_unet_shapes_channels_and_time_dependence():
  model = UNet(channels=8, channel_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,),
               norm_groups=4, out_channels=2)
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))   # 3 input channels (e.g. conditioning)
  t = jnp.array([0.1, 0.9])
  params = jax.jit(model.init)(jax.random.key(1), x, t)["params"]
  apply = jax.jit(lambda p, x, t: model.apply({"params": p}, x, t))
  y = apply(params, x, t)
  assert y.shape == (2, 8, 8, 2)
  # The output conv is zero-initialised: a fresh model predicts exactly 0.
  np.testing.assert_array_equal(np.asarray(y), 0.0)
  # Perturb the output layer: the prediction now depends on t.
  params = jax.tree.map(lambda p: p + 0.05, params)
  y1 = apply(params, x, jnp.array([0.1, 0.1]))
  y2 = apply(params, x, jnp.array([0.9, 0.9]))
  assert float(jnp.abs(y1 - y2).max()) > 1e-4
  # Attention at 4x4 exists (the 8x8 input has a 4x4 level).
  assert any("AttnBlock" in k for k in params)


def test_patches_fold_pixel_blocks_into_channels_and_back():
  """Oracle from the definition: folded[b, y, x, (i p + j) C + c] = x[b, p y + i, p x + j, c]."""
  from bluediff.models.unet import fold_patches, unfold_patches
  x = np.random.default_rng(0).normal(size=(2, 6, 4, 3)).astype(np.float32)
  p = 2
  want = np.zeros((2, 3, 2, p * p * 3), np.float32)
  for y in range(3):
    for xx in range(2):
      for i in range(p):
        for j in range(p):
          want[:, y, xx, (i * p + j) * 3:(i * p + j + 1) * 3] = x[:, p * y + i, p * xx + j]
  folded = np.asarray(fold_patches(jnp.asarray(x), p))
  np.testing.assert_array_equal(folded, want)
  np.testing.assert_array_equal(np.asarray(unfold_patches(jnp.asarray(folded), p)), x)


def test_a_patched_unet_runs_at_the_folded_size_and_returns_the_image_size():
  model = UNet(channels=8, channel_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,),
               norm_groups=4, out_channels=1, patch_size=2)
  x = jax.random.normal(jax.random.key(0), (2, 16, 16, 1))
  t = jnp.array([0.1, 0.9])
  variables = jax.eval_shape(model.init, jax.random.key(1), x, t)
  first = variables["params"]["Conv_0"]["kernel"]
  assert first.shape[-2] == 4                    # 2 x 2 patches of 1 channel
  out = jax.eval_shape(lambda v: model.apply(v, x, t), variables)
  assert out.shape == (2, 16, 16, 1)
  # the 16x16 input runs its first level at 8x8, so attention sits at the 4x4 level
  assert any("AttnBlock" in k for k in variables["params"])


def test_group_norm_equals_flax_values_and_gradients():
  """bluediff's GroupNorm (per-channel moments first) is flax's, parameters included."""
  import flax.linen as nn

  from bluediff.models.norm import GroupNorm
  x = 3.0 * jax.random.normal(jax.random.key(0), (2, 6, 6, 16)) + 1.0
  ref = nn.GroupNorm(num_groups=4)
  params = ref.init(jax.random.key(1), x)
  params = jax.tree.map(lambda p: p + jax.random.normal(jax.random.key(2), p.shape), params)
  ours = GroupNorm(num_groups=4)
  assert jax.tree.structure(ours.init(jax.random.key(1), x)) == jax.tree.structure(params)
  np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), atol=2e-5)
  loss = lambda m: jax.grad(lambda p, x: jnp.sum(jnp.sin(m.apply(p, x))), argnums=(0, 1))
  for a, b in zip(jax.tree.leaves(loss(ours)(params, x)), jax.tree.leaves(loss(ref)(params, x))):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
  # Per group: zero mean, unit variance before the affine part.
  plain = ours.apply({"params": {"scale": jnp.ones(16), "bias": jnp.zeros(16)}}, x)
  g = np.asarray(plain).reshape(2, 36, 4, 4)
  np.testing.assert_allclose(g.mean(axis=(1, 3)), 0.0, atol=1e-5)
  np.testing.assert_allclose(g.var(axis=(1, 3)), 1.0, atol=1e-3)


def test_upsampling_is_nearest():
  from bluediff.models.unet import upsample2x
  x = jax.random.normal(jax.random.key(0), (2, 3, 5, 4))
  np.testing.assert_array_equal(upsample2x(x), jax.image.resize(x, (2, 6, 10, 4), "nearest"))


def test_conv_equals_flax_conv_on_both_paths():
  """bluediff's Conv (im2col on tiny maps, XLA's convolution otherwise) is nn.Conv."""
  import flax.linen as nn

  from bluediff.models.conv import IM2COL_MAX_PIXELS, Conv
  for k, stride, size in [(3, 1, 2), (3, 2, 4), (3, 2, 5), (1, 1, 2), (3, 1, 8), (3, 2, 8)]:
    x = jax.random.normal(jax.random.key(0), (2, size, size, 4))
    params = nn.Conv(6, (k, k), strides=(stride, stride)).init(jax.random.key(1), x)
    params = jax.tree.map(lambda p: p + 0.1, params)        # a non-zero bias too
    want = nn.Conv(6, (k, k), strides=(stride, stride)).apply(params, x)
    got = Conv(6, k, stride).apply(params, x)
    assert (size * size <= IM2COL_MAX_PIXELS) == (size <= 4)
    np.testing.assert_allclose(got, want, atol=1e-5)
