"""Blue noise: void-and-cluster masks, cached statistics, and the samplers' laws."""
import json
import os

import jax
import numpy as np
import pytest

from bluediff.noise import CholeskyNoise, SpectralNoise, WhiteNoise, red_spectrum
from bluediff.noise import statistics as st
from bluediff.noise import void_and_cluster as vac


def plain_void_and_cluster(initial: np.ndarray, sigma: float) -> np.ndarray:
  """Textbook void-and-cluster on one pattern: energies recomputed from scratch
  (full toroidal Gaussian, minimal wrapped distances) at every step."""
  s = initial.shape[0]
  d = s * s
  yy, xx = np.divmod(np.arange(d), s)
  dy = np.abs(yy[:, None] - yy[None, :])
  dx = np.abs(xx[:, None] - xx[None, :])
  dy, dx = np.minimum(dy, s - dy), np.minimum(dx, s - dx)
  kernel = np.exp(-(dy ** 2 + dx ** 2) / (2 * sigma ** 2))      # [d, d]

  def energy(p):
    return kernel @ p.astype(float)

  def pick(p, candidates, largest):
    e = energy(p)
    best = max(e[i] for i in range(d) if candidates[i]) if largest else \
        min(e[i] for i in range(d) if candidates[i])
    for i in range(d):   # first index within the tie tolerance
      if candidates[i] and (e[i] >= best - vac.TIE if largest else e[i] <= best + vac.TIE):
        return i

  p = initial.ravel().copy()
  while True:
    c = pick(p, p, True)
    p[c] = False
    v = pick(p, ~p, False)
    p[v] = True
    if v == c:
      break
  ranks = np.zeros(d, int)
  q = p.copy()
  for r in range(int(p.sum()) - 1, -1, -1):
    i = pick(q, q, True)
    q[i] = False
    ranks[i] = r
  q = p.copy()
  for r in range(int(p.sum()), d):
    i = pick(q, ~q, False)
    q[i] = True
    ranks[i] = r
  return ranks.reshape(s, s)


def test_masks_are_permutations_and_match_the_plain_loop():
  init = vac.initial_patterns(np.random.default_rng(3), 3, 16)
  fast = vac.rank_masks(init, 1.5)
  for m in fast:
    assert np.array_equal(np.sort(m.ravel()), np.arange(256))
  np.testing.assert_array_equal(fast[0], plain_void_and_cluster(init[0], 1.5))
  np.testing.assert_array_equal(fast[2], plain_void_and_cluster(init[2], 1.5))
  for size in (8, 13, 64):
    m = vac.void_and_cluster(1, size, seed=1)[0]
    assert np.array_equal(np.sort(m.ravel()), np.arange(size * size))


def test_every_threshold_is_more_even_than_random():
  mask = vac.void_and_cluster(1, 32, seed=0)[0]
  rng = np.random.default_rng(0)
  for level in (0.05, 0.1, 0.25, 0.5, 0.75, 0.9):
    k = int(level * mask.size)
    dither = (mask < k)[None]
    random = np.zeros(mask.size, bool)
    random[rng.permutation(mask.size)[:k]] = True
    e_dither = vac.toroidal_energy(dither.astype(float), 1.5)[0]
    e_random = vac.toroidal_energy(random.reshape(1, 32, 32).astype(float), 1.5)[0]
    assert e_dither.var() < 0.5 * e_random.var(), level


@pytest.fixture(scope="module", params=[8, 16])
def stats(request):
  return st.get_stats(st.BlueNoiseSpec(request.param), progress=False)


N_SAMPLES = 20_000


def _draw(op, size, seed=0, n=N_SAMPLES):
  """[n, size*size] samples (4 channels per call count as independent draws)."""
  x = np.asarray(op(jax.random.key(seed), (n // 4, size, size, 4)))
  return x.transpose(0, 3, 1, 2).reshape(n, size * size).astype(np.float64)


def test_samplers_match_the_target_covariance(stats):
  size = stats.spec.size
  target = st.circulant_covariance(stats.spectrum)
  np.testing.assert_allclose(np.diag(target), 1.0, atol=1e-9)       # unit per-pixel variance
  bound = 6 * np.sqrt(2.0 / N_SAMPLES)       # 6 sigma of an empirical covariance entry
  for op in (SpectralNoise.from_spectrum(stats.spectrum), CholeskyNoise(stats.cholesky, size)):
    x = _draw(op, size)
    assert np.abs(x.mean(0)).max() < 6 / np.sqrt(N_SAMPLES)
    assert np.abs(np.cov(x, rowvar=False) - target).max() < bound, type(op).__name__
  white = _draw(WhiteNoise(), size)           # a sampler that forgets L_b fails the bound
  assert np.abs(np.cov(white, rowvar=False) - target).max() > bound


def _ring_ratios(samples, spectrum):
  """Per radial ring: mean sampled power / mean target power, and its std under the target."""
  n, d = samples.shape
  s = spectrum.shape[0]
  power = (np.abs(np.fft.fft2(samples.reshape(n, s, s))) ** 2 / d).mean(0)
  fy = np.fft.fftfreq(s) * s
  r = np.rint(np.hypot(fy[:, None], fy[None, :])).astype(int)
  out = []
  for ring in range(1, s // 2 + 1):
    sel = r == ring
    # |F(k)|^2/d ~ S(k) Exp(1); k and -k are one draw, so ~sel.sum()/2 independent bins
    out.append((power[sel].mean() / spectrum[sel].mean(), 1 / np.sqrt(n * sel.sum() / 2)))
  return out


def test_ring_power_matches_the_spectrum_and_white_is_flat(stats):
  size = stats.spec.size
  x = _draw(SpectralNoise.from_spectrum(stats.spectrum), size, seed=1)
  for ratio, sd in _ring_ratios(x, stats.spectrum):
    assert abs(ratio - 1) < 5 * sd
  flat = np.ones((size, size))
  for ratio, sd in _ring_ratios(_draw(WhiteNoise(), size, seed=2), flat):
    assert abs(ratio - 1) < 5 * sd
  low = stats.spectrum[np.rint(np.hypot(*np.meshgrid(np.fft.fftfreq(size) * size,
                                                      np.fft.fftfreq(size) * size))) == 1]
  assert low.mean() < 0.2          # blue: little power at the lowest frequency


def test_red_noise_has_unit_variance_and_falling_power():
  s = red_spectrum(16, 16)
  assert s[0, 0] == 0 and abs(s.mean() - 1) < 1e-12
  x = _draw(SpectralNoise.from_spectrum(s), 16, n=4000)
  assert abs(x.var() - 1) < 0.05
  from bluediff.evaluate.spectra import radial_power_spectrum
  _, p = radial_power_spectrum(x.reshape(-1, 16, 16, 1))
  assert np.all(np.diff(p[:6]) < 0)


def test_cholesky_tiles_are_independent():
  stats = st.get_stats(st.BlueNoiseSpec(8), progress=False)
  op = CholeskyNoise(stats.cholesky, 8)
  x = np.asarray(op(jax.random.key(0), (4000, 16, 16, 1)))[..., 0]
  a, b = x[:, :8, :8].reshape(4000, -1), x[:, :8, 8:].reshape(4000, -1)
  cross = (a - a.mean(0)).T @ (b - b.mean(0)) / 4000
  assert np.abs(cross).max() < 6 / np.sqrt(4000)


def test_cache_is_checked_and_rebuilt(tmp_path, monkeypatch, capsys):
  monkeypatch.setenv("BLUEDIFF_CACHE", str(tmp_path))
  spec = st.BlueNoiseSpec(8, num_masks=16)
  first = st.get_stats(spec, progress=False)
  entry = tmp_path / "blue_noise" / spec.key
  manifest = json.loads((entry / "manifest.json").read_text())
  assert set(manifest["sha256"]) == {"spectrum.npy", "cholesky.npy"}
  data = bytearray((entry / "spectrum.npy").read_bytes())
  data[-3] ^= 0xFF                                   # flip bytes in the payload
  (entry / "spectrum.npy").write_bytes(bytes(data))
  again = st.get_stats(spec, progress=False)
  assert "damaged" in capsys.readouterr().out
  np.testing.assert_array_equal(again.spectrum, first.spectrum)   # rebuilt, deterministic
  assert not any(p.name.startswith(spec.key + ".tmp") for p in entry.parent.iterdir())
  assert os.path.exists(entry / "manifest.json")
