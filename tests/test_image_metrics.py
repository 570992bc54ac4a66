import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from scipy import ndimage

from bluediff.evaluate import image_metrics as im
from bluediff.evaluate.spectra import radial_power_spectrum


@pytest.fixture(scope="module")
def pair():
  rng = np.random.default_rng(0)
  x = rng.uniform(-1, 1, (3, 24, 20, 3)).astype(np.float32)
  y = np.clip(x + rng.normal(0, 0.2, x.shape), -1, 1).astype(np.float32)
  return x, y


def test_ssim_matches_scikit_image(pair):
  x, y = pair
  ours = np.asarray(im.ssim(x, y))
  for i in range(len(x)):
    ref = structural_similarity(x[i], y[i], data_range=2.0, channel_axis=-1, gaussian_weights=True,
                                sigma=1.5, use_sample_covariance=False)
    assert ours[i] == pytest.approx(ref, abs=1e-5)
  np.testing.assert_allclose(np.asarray(im.ssim(x, x)), 1.0, atol=1e-6)


def test_psnr_and_rmse_match_closed_forms(pair):
  x, y = pair
  ours = np.asarray(im.psnr(x, y))
  for i in range(len(x)):
    assert ours[i] == pytest.approx(peak_signal_noise_ratio(x[i], y[i], data_range=2.0), abs=1e-5)
  np.testing.assert_allclose(np.asarray(im.rmse(x, y)),
                             np.sqrt(((x - y) ** 2).mean(axis=(1, 2, 3))), rtol=1e-6)


def test_white_noise_spectrum_is_flat_and_blur_falls():
  rng = np.random.default_rng(1)
  noise = rng.normal(0, 2.0, (200, 32, 32, 1))
  r, p = radial_power_spectrum(noise)
  # Each ring averages >= 4 * 200 chi-square(2)/2 values: 5 sigma ~ 5/sqrt(800) ~ 0.18.
  np.testing.assert_allclose(p, 4.0, rtol=0.2)
  blurred = ndimage.gaussian_filter(noise, sigma=(0, 1.5, 1.5, 0), mode="wrap")
  _, pb = radial_power_spectrum(blurred)
  assert np.all(np.diff(pb[:12]) < 0)          # strictly falling with frequency
  assert pb[-1] < 1e-3 * pb[0]


def test_plot_spectra_writes_a_png(tmp_path):
  from bluediff.evaluate.spectra import plot_spectra
  rng = np.random.default_rng(0)
  path = plot_spectra({"white": rng.normal(size=(8, 16, 16, 1)),
                       "blurred": ndimage.gaussian_filter(rng.normal(size=(8, 16, 16, 1)),
                                                          sigma=(0, 1, 1, 0))},
                      str(tmp_path / "spectra.png"))
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_spectral_log_error_is_the_log_ratio_of_the_powers():
  """Doubling a set multiplies its power at every radius by 4: the error is log10(4)."""
  from bluediff.evaluate.spectra import spectral_log_error
  x = np.random.default_rng(0).uniform(-0.5, 0.5, size=(8, 16, 16, 1))
  assert spectral_log_error(2 * x, x) == pytest.approx(np.log10(4.0), rel=1e-9)
  assert spectral_log_error(x, x) == 0.0
  u8 = np.rint((x + 1) * 127.5).astype(np.uint8)      # integers are read as 0..255
  assert spectral_log_error(u8, u8.astype(np.float64) / 127.5 - 1) == pytest.approx(0.0, abs=1e-12)
