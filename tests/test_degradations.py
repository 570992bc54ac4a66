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
  # the closed form, from the centre the key draws (integers -1..N-1)
  t = 3
  cy, cx = np.asarray(jax.random.randint(keys[1], (2,), -1, jnp.array([16, 16])))
  yy, xx = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
  r2 = (yy - cy) ** 2 + (xx - cx) ** 2
  want = np.prod([1 - np.exp(-r2 / (2 * (0.1 * (i + 11)) ** 2)) for i in range(t)], axis=0)
  got = np.asarray(inp.mask(images.shape, jnp.full((2,), t), keys))[1, ..., 0]
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def _reference_fade_kernel(size: int, sigma: float) -> np.ndarray:
  """get_fade_kernel((size, size), sigma): torchgeometry's normalised Gaussian (taps at
  arange(size) - size // 2), divided by its max, 1 - it, then [1:, 1:]."""
  x = np.arange(size) - size // 2
  g = np.exp(-x ** 2 / (2 * sigma ** 2))
  k = np.outer(g / g.sum(), g / g.sum())
  return (1 - k / k.max())[1:, 1:]


def test_inpainting_random_centre_is_a_crop_of_the_reference_kernel():
  """Random_Incremental: kernels of (2N+1)^2 cropped at [rx:rx+N, ry:ry+N], rx, ry
  uniform in 0..N: every mask we draw is one of those crops, and every crop is drawn."""
  n, sigma = 8, 1.7
  inp = dg.GaussianMaskInpaint(num_steps=1, std=sigma, initial=1.0)
  big = _reference_fade_kernel(2 * n + 1, sigma)
  crops = {(rx, ry): big[rx:rx + n, ry:ry + n] for rx in range(n + 1) for ry in range(n + 1)}
  keys = jax.random.split(jax.random.key(5), 400)
  masks = np.asarray(inp.mask((400, n, n, 1), jnp.ones(400, jnp.int32), keys))[..., 0]
  seen = set()
  for m in masks:
    match = [c for c, k in crops.items() if np.allclose(m, k, atol=1e-5)]
    assert len(match) == 1
    seen.add(match[0])
  assert len(seen) > 0.9 * len(crops)        # 81 crops, 400 draws: all but a few


def test_inpainting_reverse_follows_the_reference_schedule():
  """get_reverse_kernels_with_schedule: alphas[t_ref] = 1 - P_{T-1-t_ref}, P_j the
  product of kernels 0..j-1 (P_0 = 1); x_t = alphas x0 + (1 - alphas) colour."""
  T, std, initial, n = 5, 0.9, 1.0, 8
  inp = dg.GaussianMaskInpaint(num_steps=T, std=std, initial=initial, random_centre=False,
                               colour_fill=True, reverse=True)
  kernels = [_reference_fade_kernel(n + 1, std * (i + initial)) for i in range(T)]
  prefix = [np.ones((n, n))]
  for k in kernels[:-1]:
    prefix.append(prefix[-1] * k)
  keys = jax.random.split(jax.random.key(2), 1)
  colour = np.asarray(inp.colour(keys, 1))[0, 0, 0, 0]
  x0 = np.asarray(jax.random.uniform(jax.random.key(3), (1, n, n, 1), minval=-1, maxval=1))
  for t_ref in range(T):
    alphas = 1 - prefix[T - 1 - t_ref]
    want = alphas * x0[0, ..., 0] + (1 - alphas) * colour
    got = np.asarray(inp(jnp.asarray(x0), jnp.array([t_ref + 1]), keys))[0, ..., 0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"t_ref {t_ref}")
  np.testing.assert_allclose(np.asarray(inp(jnp.asarray(x0), jnp.array([0]), keys)), x0)


def test_inpainting_mask_follows_the_reference_kernel_index():
  """defading_diffusion_gaussian.py: get_kernels makes kernel i = 0..T-1 with std
  kernel_std * (i + initial_mask); q_sample(t_ref) (t_ref = 0..T-1, `randint(0, T)`)
  multiplies kernels 0..t_ref in. Our step t = t_ref + 1 (t = 0 is x0)."""
  T, std, initial = 6, 0.8, 1.0
  inp = dg.GaussianMaskInpaint(num_steps=T, std=std, initial=initial, random_centre=False)
  h = w = 8
  kernels = [_reference_fade_kernel(h + 1, std * (i + initial)) for i in range(T)]
  ones = np.ones((1, h, w, 1))
  for t_ref in range(T):
    x = np.ones((h, w))
    for i in range(t_ref + 1):
      x = kernels[i] * x
    got = np.asarray(inp(jnp.asarray(ones), jnp.array([t_ref + 1])))[0, ..., 0]
    np.testing.assert_allclose(got, x, rtol=1e-5, atol=1e-7, err_msg=f"t_ref {t_ref}")


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


def test_motion_blur_kernel_is_normalised_and_directional():
  for deg in (-135.0, -90.0, -45.0):
    k = np.asarray(dg.motion_blur_kernel(32, 32, jnp.asarray(8.0), jnp.deg2rad(deg), 4.0))
    assert k.sum() == pytest.approx(1.0, abs=1e-5) and (k >= 0).all()
    dy = np.fft.fftfreq(32) * 32
    yy, xx = np.meshgrid(dy, dy, indexing="ij")
    mean = np.array([(k * xx).sum(), (k * yy).sum()])      # the kernel's centre of mass
    direction = mean / np.linalg.norm(mean)
    want = np.array([np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))])
    assert direction @ want > 0.99


def test_snow_is_seeded_grows_and_is_symmetric_under_180_degrees():
  snow = dg.Snow(num_steps=200)
  assert float(snow.threshold(0)) == pytest.approx(1.15) and float(snow.threshold(200)) == pytest.approx(0.6)
  x0 = jnp.full((2, 32, 32, 3), -1.0)                      # black: the snow is all that shows
  keys = jax.random.split(jax.random.key(0), 2)
  at = lambda t: jnp.full((2,), t)   # noqa: E731
  np.testing.assert_allclose(np.asarray(snow(x0, at(0), keys)), -1.0)
  a, b = snow(x0, at(150), keys), snow(x0, at(150), keys)
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))           # deterministic for a key
  other = snow(x0, at(150), jax.random.split(jax.random.key(1), 2))
  assert not np.allclose(np.asarray(a), np.asarray(other))
  amounts = [float(snow(x0, at(t), keys).mean()) for t in (50, 100, 200)]
  assert amounts[0] < amounts[1] < amounts[2]
  # Snow itself is 180-degree symmetric on a flat image, and commutes with the rotation on
  # any image (the layer does not depend on x0; the brightening is per pixel). At t = T:
  # at t = 120 these keys draw no flakes at all.
  rot = lambda x: np.rot90(np.asarray(x), 2, axes=(1, 2))   # noqa: E731
  out = np.asarray(snow(x0, at(200), keys))
  np.testing.assert_allclose(out, rot(out), atol=1e-6)
  x = jax.random.uniform(jax.random.key(2), (2, 32, 32, 3), minval=-1, maxval=1)
  np.testing.assert_allclose(np.asarray(snow(jnp.asarray(rot(x)), at(200), keys)),
                             rot(snow(x, at(200), keys)), atol=1e-6)
  # not vacuous: the flakes show (unclipped) over the flat image's level, and one layer
  # alone is far from symmetric, so the symmetry is the layer + its rotation
  flat = float(out.min())
  assert 0.05 < ((out > flat + 1e-3) & (out < 1.0)).mean() < 0.95
  layers = np.asarray(jax.vmap(lambda k: snow.layer(k, 32, 32, 200))(keys))
  assert np.abs(layers - rot(layers)).max() > 0.1


def test_fixed_noise_and_blend_keep_one_draw_per_trajectory():
  x0 = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1), minval=-1, maxval=1)
  keys = jax.random.split(jax.random.key(3), 2)
  noise = dg.FixedNoise.cosine(100)
  assert float(noise.alpha_bar[0]) == 1.0 and float(noise.alpha_bar[100]) < 1e-3
  np.testing.assert_allclose(np.asarray(noise(x0, jnp.zeros(2, jnp.int32), keys)), x0, atol=1e-6)
  # the same z at every t: (x_t - sqrt(ab) x0) / sqrt(1 - ab) does not depend on t
  z = [(noise(x0, jnp.full((2,), t), keys) - jnp.sqrt(noise.alpha_bar[t]) * x0)
       / jnp.sqrt(1 - noise.alpha_bar[t]) for t in (10, 60, 100)]
  np.testing.assert_allclose(np.asarray(z[0]), np.asarray(z[2]), atol=1e-4)
  targets = jax.random.uniform(jax.random.key(5), (7, 8, 8, 1))
  blend = dg.Blend(targets, noise.alpha_bar)
  end = np.asarray(blend(x0, jnp.full((2,), 100), keys))
  picked = np.asarray(blend.target(keys))
  assert any(np.allclose(picked[0], t) for t in np.asarray(targets))
  np.testing.assert_allclose(end, picked * np.sqrt(1 - float(noise.alpha_bar[100])) +
                             np.asarray(x0) * np.sqrt(float(noise.alpha_bar[100])), atol=1e-5)


def test_blend_targets_are_the_second_datasets_images_read_by_the_cold_builder():
  """The degradation reads no data: the cold builder hands it the split's first
  `blend_targets` images, and without them it refuses in one line."""
  from configs import base
  from bluediff.data.sources import load_split
  from bluediff.processes import build_process
  c = base.get_config()
  c.data.image_size = 16
  c.process.name = "cold"
  g = c.degradation
  g.kind, g.blend_dataset, g.blend_split, g.blend_targets, g.num_steps = (
      "blend", "digits", "test", 7, 10)
  expected, _ = load_split("digits", "test", 16, "")
  process = build_process(c)
  np.testing.assert_array_equal(np.asarray(process.degradation.targets), expected[:7])
  assert process.degradation.num_steps == 10
  with pytest.raises(ValueError, match="needs its targets"):
    dg.build_degradation(g, 16)
