"""Cold-diffusion degradations: closed forms against their recursive definitions."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bluediff import degradations as dg


@pytest.fixture(scope="module")
def images():
  return jax.random.uniform(jax.random.key(0), (2, 16, 16, 3), minval=-1, maxval=1)


def cifar_stds(T=50):
  return [0.35 + i / 100 for i in range(T)]    # the reference's CIFAR schedule (scaled to T)


@pytest.mark.parametrize("padding", ["reflect", "periodic"])
def test_o1_blur_equals_the_recursive_reference(images, padding):
  blur = dg.Blur.build([1.0 + 0.1 * i for i in range(12)], 11, 16, padding)
  for t in (0, 1, 5, 12):
    fast = blur(images, jnp.full((2,), t))
    np.testing.assert_allclose(np.asarray(fast), np.asarray(blur.recursive(images, t)), atol=2e-5)
  np.testing.assert_allclose(np.asarray(blur(images, jnp.zeros(2, jnp.int32))), images, atol=1e-6)


def test_blur_removes_more_high_frequency_energy_with_t(images):
  blur = dg.Blur.build(cifar_stds(), 11, 16)
  def high(x):
    f = np.abs(np.fft.fft2(np.asarray(x), axes=(1, 2))) ** 2
    return f[:, 4:13, 4:13].sum()
  energies = [high(blur(images, jnp.full((2,), t))) for t in (0, 10, 25, 50)]
  assert all(a > b for a, b in zip(energies, energies[1:]))


def test_blur_mean_at_end_is_the_channel_mean(images):
  blur = dg.Blur.build(cifar_stds(10), 11, 16, mean_at_end=True)
  out = np.asarray(blur(images, jnp.full((2,), 10)))
  np.testing.assert_allclose(out, np.broadcast_to(np.asarray(images).mean((1, 2), keepdims=True),
                                                  out.shape), atol=1e-6)


def test_inpainting_mask_grows_and_keeps_its_centre(images):
  inp = dg.GaussianMaskInpaint(num_steps=50, std=0.1, initial=11)
  keys = jax.random.split(jax.random.key(1), 2)
  masks = [np.asarray(inp.mask(images.shape, jnp.full((2,), t), keys)) for t in (0, 10, 30, 50)]
  np.testing.assert_allclose(masks[0], 1.0)
  removed = [(1 - m).sum() for m in masks]
  assert all(a < b for a, b in zip(removed, removed[1:]))
  # one key, one centre: the masks are nested as t grows
  for a, b in zip(masks, masks[1:]):
    assert np.all(b <= a + 1e-7)
  # the closed form, from the centre the key draws
  t = 3
  cy, cx = np.asarray(jax.random.uniform(keys[1], (2,))) * 16
  yy, xx = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
  r2 = (yy - cy) ** 2 + (xx - cx) ** 2
  want = np.prod([1 - np.exp(-r2 / (2 * (0.1 * (i + 11)) ** 2)) for i in range(1, t + 1)], axis=0)
  got = np.asarray(inp.mask(images.shape, jnp.full((2,), t), keys))[1, ..., 0]
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_super_resolution_levels(images):
  sr = dg.SuperResolution(num_steps=3)
  out = np.asarray(sr(images, jnp.array([0, 3])))
  np.testing.assert_allclose(out[0], images[0], atol=1e-6)
  blocks = out[1].reshape(2, 8, 2, 8, 3)      # 2x2 image at 16x16: constant 8x8 blocks
  assert np.allclose(blocks, blocks[:, :1, :, :1])


def test_desaturation_removes_saturation_linearly(images):
  de = dg.Desaturate(num_steps=20)
  sat = [float(jnp.abs(de(images, jnp.full((2,), t)) -
                       images.mean(-1, keepdims=True)).mean()) for t in (0, 5, 10, 20)]
  base = float(jnp.abs(images - images.mean(-1, keepdims=True)).mean())
  np.testing.assert_allclose(sat, [base, 0.75 * base, 0.5 * base, 0.0], rtol=1e-5, atol=1e-6)
