"""Cold diffusion's samplers: the paper's exactness property and Algorithm 2's stability."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bluediff import degradations as dg
from bluediff.processes.cold import ColdDiffusion, per_image_keys


def _degradations():
  return {
      "blur": dg.Blur.build([0.35 + i / 10 for i in range(10)], 11, 16),
      "blur_mean": dg.Blur.build([1.0] * 6, 5, 16, "periodic", mean_at_end=True),
      "inpaint": dg.GaussianMaskInpaint(num_steps=10, std=0.5, initial=2),
      "sr": dg.SuperResolution(num_steps=3),
      "desaturate": dg.Desaturate(num_steps=5),
      "snow": dg.Snow(num_steps=8),
      "noise": dg.FixedNoise.cosine(8),
      "blend": dg.Blend(jax.random.uniform(jax.random.key(2), (3, 16, 16, 3)),
                        dg.FixedNoise.cosine(8).alpha_bar),
  }


@pytest.fixture(scope="module")
def x0():
  return jax.random.uniform(jax.random.key(0), (2, 16, 16, 3), minval=-1, maxval=1)


@pytest.mark.parametrize("name", list(_degradations()))
def test_perfect_restorer_reproduces_every_degraded_state(x0, name):
  d = _degradations()[name]
  p = ColdDiffusion(d)
  perfect = lambda x, t: x0   # noqa: E731
  key = jax.random.key(4)
  keys = per_image_keys(key, 2)
  at = lambda s: jnp.full((2,), s)   # noqa: E731
  np.testing.assert_allclose(np.asarray(d(x0, at(0), keys)), np.asarray(x0), atol=1e-5)
  for method in ("alg2", "alg1"):
    for s in range(d.num_steps, 0, -1):
      x_s = d(x0, at(s), keys)
      np.testing.assert_allclose(np.asarray(p.step(perfect, x_s, s, keys, method)),
                                 np.asarray(d(x0, at(s - 1), keys)), atol=1e-5)
    out = p.sample(perfect, key, x0.shape, method=method, cond=p.observe(x0, key))
    np.testing.assert_allclose(np.asarray(out), np.asarray(x0), atol=1e-5)


def test_algorithm_2_tolerates_restorer_errors_better_on_blur(x0):
  """Setting: CIFAR-like blur (T = 10, 11x11 kernels, std 0.35 + i/10, reflect), a
  restorer that returns x0 plus a fixed smooth error (amplitude 0.05, one cycle
  per image: a wrong shading, the kind of error a blurred input does not reveal).
  Algorithm 1 keeps all of it; Algorithm 2 keeps only what the blur destroys."""
  d = _degradations()["blur"]
  p = ColdDiffusion(d)
  yy = jnp.arange(16)[:, None] / 16
  delta = 0.05 * jnp.broadcast_to(jnp.sin(2 * jnp.pi * yy)[None, :, :, None], x0.shape)
  faulty = lambda x, t: x0 + delta   # noqa: E731
  key = jax.random.key(1)
  cond = p.observe(x0, key)
  err = {m: float(jnp.sqrt(jnp.mean(jnp.square(p.sample(faulty, key, x0.shape, method=m, cond=cond)
                                                - x0)))) for m in ("alg1", "alg2")}
  assert err["alg2"] < 0.6 * err["alg1"]
  # Algorithm 2's error telescopes to delta - D(delta, T): the high frequencies of delta only
  want = delta - d(delta, jnp.full((2,), d.num_steps))
  got = p.sample(faulty, key, x0.shape, method="alg2", cond=cond) - x0
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4)


def test_loss_of_the_perfect_restorer_is_zero_and_direct_is_one_call(x0):
  p = ColdDiffusion(_degradations()["inpaint"])
  loss, _ = p.loss(lambda x, t: x0, x0, jax.random.key(0))
  assert float(loss) == 0.0
  calls = []
  p.sample(lambda x, t: calls.append(t) or x, jax.random.key(0), x0.shape, method="direct",
           cond=x0)
  assert len(calls) == 1 and float(calls[0][0]) == pytest.approx(1.0)


@pytest.mark.slow   # trains and evaluates end to end (~40 s)
def test_cold_inpainting_trains_and_evaluates_degraded_direct_sampled(tiny_config, tmp_path):
  """Through the loop and mode=evaluate: the Table-1 triple, and the training grid."""
  from bluediff.evaluate.run import run_evaluate
  from bluediff.train import train
  c = tiny_config()
  c.process.name, c.sampling.method = "cold", "alg2"
  c.degradation.kind, c.degradation.num_steps = "inpaint", 5
  c.degradation.mask_std, c.degradation.mask_initial = 0.5, 2.0
  c.training.num_steps, c.training.checkpoint_every = 2, 2
  c.eval.metrics, c.eval.num_samples = ("restoration",), 8
  train(c, str(tmp_path))
  assert (tmp_path / "samples.png").exists()
  m = run_evaluate(c, str(tmp_path))[0]["metrics"]
  for name in ("restored", "direct", "observed"):
    assert {f"psnr_{name}", f"ssim_{name}", f"rmse_{name}", f"digits_frechet_{name}"} <= set(m)
  # the observation is the masked image: a perfect-restorer check of the pipeline's keys
  assert m["rmse_observed"] > 0 and m["psnr_observed"] < 60


def test_mixture_prior_reproduces_the_statistics_it_models(digits16, tmp_path):
  from bluediff.processes.cold_prior import MixturePrior, fit_prior
  x_tr = digits16[0]
  blur = dg.Blur.build([2.0] * 4, 5, 16, mean_at_end=True)
  prior = fit_prior(blur, x_tr, components=3)
  means = x_tr.mean(axis=(1, 2))                         # what the fully blurred images keep
  draws = np.asarray(prior.sample(jax.random.key(0), (20_000, 16, 16, 1)))
  drawn = draws.mean(axis=(1, 2))       # the symmetry noise averages out (std 0.002 / 16)
  assert drawn.mean() == pytest.approx(means.mean(), abs=0.01)
  assert drawn.std() == pytest.approx(means.std(), rel=0.05)
  assert float(prior.symmetry_std) == pytest.approx(0.002)
  round_trip = MixturePrior.load(prior.save(str(tmp_path / "p.npz")))
  np.testing.assert_array_equal(np.asarray(round_trip.means), np.asarray(prior.means))
  assert float(round_trip.symmetry_std) == pytest.approx(0.002)
  # super-resolution keeps the low-resolution image: its per-pixel means and covariance
  sr = dg.SuperResolution(num_steps=2)
  p_sr = fit_prior(sr, x_tr, components=1)
  small = np.asarray(sr(jnp.asarray(x_tr), jnp.full((len(x_tr),), 2)))[:, ::4, ::4].reshape(len(x_tr), -1)
  d = np.asarray(p_sr.sample(jax.random.key(1), (20_000, 16, 16, 1)))[:, ::4, ::4].reshape(20_000, -1)
  np.testing.assert_allclose(d.mean(0), small.mean(0), atol=0.03)
  np.testing.assert_allclose(np.cov(d, rowvar=False), np.cov(small, rowvar=False), atol=0.03)


def test_blur_generation_trains_fits_its_prior_and_samples(tiny_config, tmp_path):
  from bluediff.sampling import run_sample
  from bluediff.train import train
  c = tiny_config()
  c.process.name, c.process.generate, c.process.prior_components = "cold", True, 2
  c.sampling.method = "alg2"
  c.degradation.kind, c.degradation.num_steps, c.degradation.mean_at_end = "blur", 4, True
  c.degradation.blur_std, c.degradation.blur_std_step, c.degradation.kernel_size = 2.0, 0.0, 5
  c.training.num_steps, c.training.checkpoint_every = 2, 2
  train(c, str(tmp_path))
  assert (tmp_path / "cold_prior.npz").exists() and (tmp_path / "samples.png").exists()
  run_sample(c, str(tmp_path))
  with np.load(tmp_path / "samples.npz", allow_pickle=False) as f:
    assert f["images"].shape == (16, 16, 16, 1) and "observations" not in f.files


def test_generation_from_noise_and_colour_starts_from_its_own_degradation(x0):
  """For degradations whose x_T (nearly) does not depend on x0, generation starts at
  D(0, T, keys): with a perfect restorer, Algorithm 2 telescopes to
  x0 + D(0, T) - D(x0, T), i.e. x0 up to what x_T still knew of it."""
  from bluediff.processes.cold_prior import fit_prior
  for d in (dg.FixedNoise.cosine(8),
            dg.GaussianMaskInpaint(num_steps=60, std=0.4, initial=4, random_centre=False,
                                   colour_fill=True)):
    prior = fit_prior(d, np.asarray(x0), components=1)
    assert prior.kind == "from_degradation"
    p = ColdDiffusion(d, prior=prior, generate=True)
    assert not p.conditional
    out = p.sample(lambda x, t: x0, jax.random.key(3), x0.shape, method="alg2")
    keys = per_image_keys(jax.random.split(jax.random.key(3))[0], 2)
    at_t = jnp.full((2,), d.num_steps)
    want = x0 + d(jnp.zeros_like(x0), at_t, keys) - d(x0, at_t, keys)
    np.testing.assert_allclose(np.asarray(out), np.asarray(want), atol=1e-4)
    assert float(jnp.abs(out - x0).max()) < 0.01
  colour = d(jnp.zeros_like(x0), jnp.full((2,), 60), per_image_keys(jax.random.key(0), 2))
  assert np.ptp(np.asarray(colour[0]), axis=(0, 1)).max() < 1e-3        # fully covered: one colour
  assert np.abs(np.asarray(colour)).max() <= 0.5


def _noise_part(x):
  """A channel-mean prior's draw minus its constant image: the symmetry noise (less its
  spatial mean)."""
  x = np.asarray(x, np.float64)
  return x - x.mean(axis=(1, 2), keepdims=True)


def test_blur_prior_draws_fresh_symmetry_noise_for_every_sample(tmp_path):
  """The reference's gen_sample adds randn_like(img) * noise_level (0.002) to each GMM
  draw: a new field per sample and per call, not one field shared by all samples."""
  from bluediff.processes.cold_prior import MixturePrior, fit_prior
  x0 = np.asarray(jax.random.uniform(jax.random.key(0), (40, 8, 8, 1), minval=-1, maxval=1))
  prior = fit_prior(dg.Blur.build([2.0] * 3, 5, 8, "periodic", mean_at_end=True), x0, components=1)
  shape = (256, 8, 8, 1)
  a = _noise_part(prior.sample(jax.random.key(1), shape))
  # 64 pixels less their mean: variance 0.002^2 (1 - 1/64)
  assert a.std() == pytest.approx(0.002 * np.sqrt(1 - 1 / 64), rel=0.05)
  assert np.abs(a[0] - a[1]).max() > 1e-3                     # samples differ...
  assert abs(np.corrcoef(a[:128].ravel(), a[128:].ravel())[0, 1]) < 0.05   # ...independently
  b = _noise_part(prior.sample(jax.random.key(2), shape))
  assert np.abs(a - b).max() > 1e-3                           # another key, other noise
  np.testing.assert_array_equal(_noise_part(prior.sample(jax.random.key(1), shape)), a)
  # a prior file written before per-sample noise (one fixed [H, W, C] field) still loads
  old = tmp_path / "old_prior.npz"
  np.savez(old, log_weights=np.asarray(prior.log_weights), means=np.asarray(prior.means),
           chols=np.asarray(prior.chols), kind=np.array("channel_mean"),
           low_res=np.array((), np.int64),
           symmetry_noise=(0.002 * np.random.default_rng(0).normal(size=(8, 8, 1))).astype(np.float32))
  loaded = MixturePrior.load(str(old))
  assert float(loaded.symmetry_std) == pytest.approx(0.002)
  c = _noise_part(loaded.sample(jax.random.key(1), shape))
  assert c.std() == pytest.approx(0.002 * np.sqrt(1 - 1 / 64), rel=0.05)
  assert np.abs(c[0] - c[1]).max() > 1e-3


def test_estimated_noise_step_is_ddim_with_the_noise_re_estimated():
  """One step against numpy: z_hat = (x_s - sqrt(abar_s) x0_hat) / sqrt(1 - abar_s),
  x_{s-1} = x_s - (sqrt(abar_s) x0_hat + sqrt(1 - abar_s) z_hat)
            + sqrt(abar_{s-1}) x0_hat + sqrt(1 - abar_{s-1}) z_hat
  (denoising-diffusion-pytorch gen_sample, sampling_routine 'ddim'; abar_0 = 1)."""
  d = dg.FixedNoise.cosine(8)
  p = ColdDiffusion(d)
  p.check_sampler("estimated_noise")
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 1))
  keys = per_image_keys(jax.random.key(5), 2)
  net = lambda x, t: 0.5 * x   # noqa: E731
  ab = np.asarray(d.alpha_bar, np.float64)
  xs = np.asarray(x, np.float64)
  for s in (5, 1):
    x0h = 0.5 * xs
    z = (xs - np.sqrt(ab[s]) * x0h) / np.sqrt(1 - ab[s])
    want = (xs - (np.sqrt(ab[s]) * x0h + np.sqrt(1 - ab[s]) * z)
            + np.sqrt(ab[s - 1]) * x0h + np.sqrt(1 - ab[s - 1]) * z)
    got = np.asarray(p.step(net, x, s, keys, "estimated_noise"))
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.abs(got - np.asarray(p.step(net, x, s, keys, "alg2"))).max() > 0.1   # not the fixed z
  np.testing.assert_allclose(np.asarray(p.step(net, x, 1, keys, "estimated_noise")), 0.5 * xs,
                             atol=1e-6)                        # the last step returns x0_hat


@pytest.mark.parametrize("name", ["noise", "blend"])
def test_estimated_noise_with_a_perfect_restorer_retraces_the_degradation(x0, name):
  d = _degradations()[name]
  p = ColdDiffusion(d)
  key = jax.random.key(4)
  keys = per_image_keys(key, 2)
  for s in range(d.num_steps, 0, -1):
    x_s = d(x0, jnp.full((2,), s), keys)
    np.testing.assert_allclose(np.asarray(p.step(lambda x, t: x0, x_s, s, keys, "estimated_noise")),
                               np.asarray(d(x0, jnp.full((2,), s - 1), keys)), atol=1e-4)
  out = p.sample(lambda x, t: x0, key, x0.shape, method="estimated_noise", cond=p.observe(x0, key))
  np.testing.assert_allclose(np.asarray(out), np.asarray(x0), atol=1e-4)


@pytest.mark.parametrize("name", ["blur", "inpaint", "sr", "desaturate", "snow"])
def test_estimated_noise_is_refused_where_there_is_no_noise_to_estimate(x0, name):
  p = ColdDiffusion(_degradations()[name])
  with pytest.raises(ValueError, match="estimated_noise"):
    p.check_sampler("estimated_noise")
  with pytest.raises(ValueError, match="noise and blend"):
    p.sample(lambda x, t: x, jax.random.key(0), x0.shape, method="estimated_noise", cond=x0)


COLD_PRESETS = ["cifar_cold_blur", "cifar_cold_inpaint", "cifar_cold_snow", "cifar_cold_sr",
                "celeba_cold_blur_gen"]


@pytest.mark.parametrize("name", COLD_PRESETS)
def test_cold_presets_train_as_the_reference_trainer(name):
  """Adam lr 2e-5, batch 32 x 2, 700k steps, EMA 0.995 every 10 steps from step 2000, no
  gradient clipping (deblurring-diffusion-pytorch Trainer and its train scripts)."""
  import importlib
  c = importlib.import_module(f"configs.{name}").get_config()
  o = c.optim
  assert (o.ema_decay, o.ema_every, o.ema_start, o.grad_clip) == (0.995, 10, 2000, 0.0)
  assert (o.lr, o.warmup_steps, o.weight_decay) == (2e-5, 0, 0.0)
  assert (c.training.batch_size, c.training.num_steps) == (64, 700_000)


@pytest.mark.parametrize("name", ["digits_cold_blur", "digits_cold_inpaint", "digits_cold_blur_gen"])
def test_digits_cold_presets_keep_their_own_budget(name):
  import importlib
  o = importlib.import_module(f"configs.{name}").get_config().optim
  assert (o.ema_decay, o.ema_every, o.ema_start, o.grad_clip) == (0.999, 1, 0, 1.0)


def test_celeba_generation_preset_pads_circularly_and_keeps_the_channel_means():
  """The reference's `Exponential` blur routine is get_conv's default mode='circular':
  every blur keeps each channel's mean, the statistic the GMM prior models."""
  from configs import celeba_cold_blur_gen
  c = celeba_cold_blur_gen.get_config()
  g = c.degradation
  assert (g.padding, g.mean_at_end, g.num_steps, g.kernel_size, g.blur_schedule) == (
      "periodic", True, 300, 27, "exp")
  assert c.process.generate
  d = dg.build_degradation(g, c.data.image_size)
  x = jax.random.uniform(jax.random.key(0), (2, 64, 64, 3), minval=-1, maxval=1)
  mean = np.asarray(x).mean(axis=(1, 2))
  for t in (1, 150, 299, 300):
    np.testing.assert_allclose(np.asarray(d(x, jnp.full((2,), t))).mean(axis=(1, 2)), mean, atol=1e-5)
