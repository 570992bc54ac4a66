"""Blue-noise rank masks by void-and-cluster (Ulichney 1993), vectorised over masks.

A mask is a toroidal [S, S] array holding every rank 0..S*S-1 once;
thresholding it at any level gives an evenly spread dither pattern. The
energy of a binary pattern is its toroidal convolution with a Gaussian
(sigma ~ 1.5 px): clusters have high energy, voids low.

  1. relax a random initial pattern: move the tightest cluster (the one of
     highest energy) into the largest void (the zero of lowest energy) until
     the move would put it back;
  2. ranks below the initial count: remove tightest clusters one by one;
  3. ranks above: fill the largest voids one by one. (For a linear filter,
     "the tightest cluster of zeros" of the classic third phase is exactly
     the largest void of the ones, so phases 2 and 3 are one loop.)

Energies are float64 and updated incrementally with the Gaussian truncated
where it falls below 1e-12 (a (2R+1)^2 window); ties are broken towards the
lowest raster index among values within `TIE` of the extreme, so the result
is a deterministic function of the initial pattern. Every step works on all
masks at once.
"""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

TIE = 1e-9
_CUTOFF = 1e-12


def kernel_offsets(sigma: float, size: int) -> np.ndarray:
  """Offsets -R..R of the energy window, or all S torus offsets (minimal wrapped
  distance) when the window would cover the torus."""
  r = int(np.ceil(sigma * np.sqrt(2 * np.log(1 / _CUTOFF))))
  if 2 * r + 1 >= size:
    return np.arange(-(size // 2), size - size // 2)
  return np.arange(-r, r + 1)


def gaussian_window(sigma: float, size: int) -> tuple[np.ndarray, np.ndarray]:
  """(offsets [K], kernel exp(-(dy^2 + dx^2) / 2 sigma^2) [K, K])."""
  d = kernel_offsets(sigma, size)
  return d, np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2 * sigma ** 2))


def toroidal_energy(patterns: np.ndarray, sigma: float) -> np.ndarray:
  """Energy [N, S, S] of binary patterns [N, S, S] with the windowed Gaussian (toroidal)."""
  offsets, window = gaussian_window(sigma, patterns.shape[-1])
  energy = np.zeros(patterns.shape, np.float64)
  for i, dy in enumerate(offsets):
    for j, dx in enumerate(offsets):
      energy += window[i, j] * np.roll(patterns, (dy, dx), axis=(1, 2))
  return energy


def initial_patterns(rng: np.random.Generator, num: int, size: int, fraction: float = 0.1) -> np.ndarray:
  """Random binary patterns [num, size, size] with round(fraction * size^2) ones each."""
  d = size * size
  ones = max(1, int(round(fraction * d)))
  order = np.argsort(rng.random((num, d)), axis=1)
  pats = np.zeros((num, d), bool)
  np.put_along_axis(pats, order[:, :ones], True, axis=1)
  return pats.reshape(num, size, size)


class _Energy:
  """Energies [N, d] of N patterns, updated by adding/removing single pixels."""

  def __init__(self, patterns: np.ndarray, sigma: float):
    self.n, self.s = patterns.shape[0], patterns.shape[1]
    k, self.window = gaussian_window(sigma, self.s)
    self._dy, self._dx = np.meshgrid(k, k, indexing="ij")
    self.values = toroidal_energy(patterns.astype(np.float64), sigma).reshape(self.n, -1)
    self._rows = np.arange(self.n)[:, None]

  def add(self, flat_pos: np.ndarray, sign: float) -> None:
    """Adds (+1) or removes (-1) one pixel per pattern at flat positions [N]."""
    y, x = np.divmod(flat_pos, self.s)
    yy = (y[:, None, None] + self._dy[None]) % self.s
    xx = (x[:, None, None] + self._dx[None]) % self.s
    idx = (yy * self.s + xx).reshape(self.n, -1)
    np.add.at(self.values, (np.broadcast_to(self._rows, idx.shape), idx),
              sign * np.broadcast_to(self.window.ravel(), idx.shape))


def _pick(values: np.ndarray, candidates: np.ndarray, largest: bool) -> np.ndarray:
  """First raster index whose value is within TIE of the extreme among candidates. [N]"""
  v = np.where(candidates, values if largest else -values, -np.inf)
  best = v.max(axis=1, keepdims=True)
  return np.argmax(candidates & (v >= best - TIE), axis=1)


def relax(patterns: np.ndarray, sigma: float, max_moves: int | None = None) -> np.ndarray:
  """Phase 1: moves tightest clusters to largest voids until stable. [N, S, S] bool."""
  pats = patterns.reshape(patterns.shape[0], -1).copy()
  energy = _Energy(patterns, sigma)
  rows = np.arange(len(pats))
  active = np.ones(len(pats), bool)
  for _ in range(max_moves or pats.shape[1]):
    cluster = _pick(energy.values, pats, largest=True)
    pats[rows, cluster] = False
    energy.add(cluster, -1.0)
    void = _pick(energy.values, ~pats, largest=False)
    done = void == cluster
    active &= ~done
    move = np.where(active, void, cluster)       # finished patterns put the pixel back
    pats[rows, move] = True
    energy.add(move, +1.0)
    if not active.any():
      break
  return pats.reshape(patterns.shape)


def rank_masks(initial: np.ndarray, sigma: float = 1.5, progress: bool = False) -> np.ndarray:
  """Rank masks [N, S, S] (int32, each a permutation of 0..S*S-1) from initial patterns."""
  start = relax(initial, sigma)
  n, s = start.shape[0], start.shape[1]
  d = s * s
  rows = np.arange(n)
  ranks = np.empty((n, d), np.int32)
  ones = start.reshape(n, -1).sum(1)
  assert (ones == ones[0]).all(), "initial patterns must have equal counts"
  n1 = int(ones[0])
  bar = tqdm(total=d, desc=f"void-and-cluster {s}x{s} x{n}", disable=not progress, leave=False)
  pats = start.reshape(n, -1).copy()            # phase 2: remove clusters, ranks n1-1 .. 0
  energy = _Energy(start, sigma)
  for rank in range(n1 - 1, -1, -1):
    pos = _pick(energy.values, pats, largest=True)
    pats[rows, pos] = False
    energy.add(pos, -1.0)
    ranks[rows, pos] = rank
    bar.update(1)
  pats = start.reshape(n, -1).copy()            # phase 3: fill voids, ranks n1 .. d-1
  energy = _Energy(start, sigma)
  for rank in range(n1, d):
    pos = _pick(energy.values, ~pats, largest=False)
    pats[rows, pos] = True
    energy.add(pos, +1.0)
    ranks[rows, pos] = rank
    bar.update(1)
  bar.close()
  return ranks.reshape(n, s, s)


def void_and_cluster(num: int, size: int, sigma: float = 1.5, seed: int = 0,
                     init_fraction: float = 0.1, progress: bool = False) -> np.ndarray:
  """`num` toroidal blue-noise rank masks [num, size, size] (int32)."""
  if not 4 <= size <= 1024:
    raise ValueError(f"mask size {size} is outside 4..1024")
  rng = np.random.default_rng(seed)
  return rank_masks(initial_patterns(rng, num, size, init_fraction), sigma, progress)
