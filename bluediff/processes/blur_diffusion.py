"""Blur diffusion: generalised diffusion in a rotated basis (Lee et al. 2022), methods.md §4.

With an orthonormal basis U (x_bar = U^T x), every schedule is two tables over
steps i = 0..N and basis components k (`ComponentTables`): a signal scale a_{i,k}
and a noise variance s_{i,k}^2, with a_{0,k} = 1, s_{0,k} = 0, a non-increasing
and the noise-to-signal ratio s^2 / a^2 non-decreasing in i:
  x_i = U (a_i x0_bar + s_i n_bar),   n = the noise (eps for white)
Variance preserving schedules (the f(i) blurs, DDPM) have a_i = Abar_i^{1/2},
s_i^2 = 1 - Abar_i; Hoogeboom & Salimans' blurring diffusion has a_i = alpha_t d_k(t)
and isotropic s_i^2 = 1 - alpha_t^2, which one Abar per component cannot express.
The network predicts n in pixel space (plain MSE, i uniform in 1..N). Each
component is a 1-D Gaussian chain: from j to i it scales by a_i / a_j and adds
variance s_i^2 - (a_i / a_j)^2 s_j^2 (`transition`), so
  ancestral  (exact, default) the per-component Gaussian posterior q(x_j | x_i, x0_hat),
             j = i - 1, or any coarser grid (DDPM's respacing)
  reference  x_bar <- (2 - A^{1/2}) x_bar - S / s_i n_bar_hat + S^{1/2} z, A^{1/2} = a_i / a_{i-1},
             S = the step's added variance (1 - A for VP schedules; no noise at i <= 2;
             the official code's first-order step)
  ddim       x_j = U (a_j x0_hat_bar + s_j n_bar_hat), any step grid
Blur: Abar_{i,k} = abar_i d_k^{2 F(i)}, F(i) = sum_{j<=i} f(j), d_k the base
kernel's eigenvalues in the basis; f = 0 is DDPM. Non-white noise (blue,
time-varying...) enters through n = L eps: the forward law and the ddim step
are exact for any L (the network predicts n itself); the ancestral and
reference steps draw their fresh z from the same L, which is exact only when
L is diagonal in the basis (white noise), an approximation otherwise.
The ancestral and ddim samplers set x0_hat to 0 on components whose a^2 (Abar)
is below x0_min_abar before clipping it (see `_predict`).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bluediff.noise import NoiseOperator
from bluediff.processes.base import Net, Process, mean_squared

BLUR_SCHEDULES = ("linear", "quadratic", "cubic", "quartic", "log", "none")


def blur_steps(kind: str, num_steps: int, f_max: float) -> np.ndarray:
  """f(i) for i = 0..N (f(0) = 0), with f(N) = f_max."""
  u = np.arange(num_steps + 1) / num_steps
  shapes = {"linear": u, "quadratic": u ** 2, "cubic": u ** 3, "quartic": u ** 4,
            "log": np.log1p(np.arange(num_steps + 1)) / np.log1p(num_steps),
            "none": np.zeros_like(u)}
  if kind not in shapes:
    raise ValueError(f"blur schedule {kind!r} is unknown; choose one of {list(BLUR_SCHEDULES)}")
  f = f_max * shapes[kind]
  f[0] = 0.0
  return f


@struct.dataclass
class ComponentTables:
  """The forward law per step and basis component: x_bar_{i,k} = a_{i,k} x0_bar_k + s_{i,k} n_bar_k.

  log_signal [N+1, H, W]: log a (logs keep a_i / a_j finite where both underflow:
  a blurred-away component reaches a ~ e^-700); noise_var [N+1, H, W]: s^2.
  The same for every channel (64 px, N = 1000: 16 MB per table in float32, device buffers).
  Rows are looked up per batch element: [B] -> [B, H, W, 1].
  """
  log_signal: jax.Array
  noise_var: jax.Array

  @property
  def num_steps(self) -> int:
    return self.log_signal.shape[0] - 1

  def log_a(self, i) -> jax.Array:
    return self.log_signal[jnp.asarray(i, jnp.int32)][..., None]

  def a(self, i) -> jax.Array:
    return jnp.exp(self.log_a(i))

  def var(self, i) -> jax.Array:
    return self.noise_var[jnp.asarray(i, jnp.int32)][..., None]


def _tables(log_signal: np.ndarray, noise_var: np.ndarray) -> ComponentTables:
  return ComponentTables(jnp.asarray(log_signal, jnp.float32), jnp.asarray(noise_var, jnp.float32))


def vp_tables(log_abar: np.ndarray) -> ComponentTables:
  """Variance preserving: a = Abar^{1/2}, s^2 = 1 - Abar, from log Abar [N+1, H, W]
  (in float64: 1 - Abar by expm1, exact where Abar ~ 1)."""
  log_abar = np.asarray(log_abar, np.float64)
  return _tables(0.5 * log_abar, -np.expm1(log_abar))


def blur_tables(log_abar: np.ndarray, cum_f: np.ndarray, log_d: np.ndarray) -> ComponentTables:
  """Lee et al.: log Abar_{i,k} = log abar_i + 2 F(i) log d_k; abar, F [N+1], log_d [H, W]."""
  log_abar, cum_f = np.asarray(log_abar, np.float64), np.asarray(cum_f, np.float64)
  return vp_tables(log_abar[:, None, None] + 2.0 * cum_f[:, None, None] * np.asarray(log_d, np.float64))


def hoogeboom_tables(num_steps: int, lam: np.ndarray, s_max: float = 20.0, floor: float = 1e-3,
                     logsnr_min: float = -10.0, logsnr_max: float = 10.0) -> ComponentTables:
  """Blurring Diffusion Models (Hoogeboom & Salimans) at t = i / N, methods.md §4-5.

  Signal alpha_t d_k(t), d_k(t) = (1 - floor) exp(-lambda_k tau_t) + floor,
  tau_t = s_B(t)^2 / 2, s_B(t) = s_max sin^2(pi t / 2) (px); lam [H, W] the DCT
  frequencies lambda_k. Noise sigma_t^2 = 1 - alpha_t^2, the same for every
  component (only the signal is blurred). alpha_t: the paper's cosine schedule
  with log SNR clipped to [logsnr_min, logsnr_max]. Row 0 is the data (a = 1,
  s = 0, as in DDPM), so the last ancestral step returns x0_hat.
  """
  t = (np.arange(num_steps + 1) / num_steps)[:, None, None]
  tau = (s_max * np.sin(np.pi * t / 2) ** 2) ** 2 / 2
  log_d = np.log((1 - floor) * np.exp(-np.asarray(lam, np.float64)[None] * tau) + floor)
  lo = np.arctan(np.exp(-0.5 * logsnr_max))
  logsnr = -2 * np.log(np.tan((np.arctan(np.exp(-0.5 * logsnr_min)) - lo) * t + lo))
  log_alpha = -0.5 * np.logaddexp(0.0, -logsnr)            # alpha^2 = sigmoid(logsnr)
  sigma2 = np.exp(-np.logaddexp(0.0, logsnr))               # sigmoid(-logsnr) = 1 - alpha^2
  log_signal, noise_var = log_alpha + log_d, np.broadcast_to(sigma2, log_d.shape).copy()
  log_signal[0], noise_var[0] = 0.0, 0.0
  return _tables(log_signal, noise_var)


def linear_log_abar(num_steps: int, beta_start=1e-4, beta_end=0.02) -> np.ndarray:
  betas = np.linspace(beta_start, beta_end, num_steps)
  return np.concatenate([[0.0], np.cumsum(np.log1p(-betas))])


@struct.dataclass
class BlurDiffusion(Process):
  samplers = ("ancestral", "reference", "ddim")
  basis: Any
  schedule: ComponentTables      # i -> a, s^2 per component [B, H, W, 1]
  noise: NoiseOperator
  time_scale: float = struct.field(pytree_node=False, default=1.0)
  x0_min_abar: float = struct.field(pytree_node=False, default=1e-3)

  @property
  def num_steps(self) -> int:
    return self.schedule.num_steps

  @property
  def noise_digest(self) -> str:
    return f"{self.noise.root}:{self.noise.digest}"

  def _t(self, i, b):
    return jnp.broadcast_to(jnp.asarray(i, jnp.float32), (b,)) / self.num_steps * self.time_scale

  def _rows(self, i, b):
    return jnp.broadcast_to(jnp.asarray(i, jnp.int32), (b,))

  def forward(self, x0, n, i):
    """x_i = U(a_i U^T x0 + s_i U^T n) for integer steps i [B], given the noise n (pixel space)."""
    a, var = self.schedule.a(i), self.schedule.var(i)
    return self.basis.inverse(a * self.basis.forward(x0) + jnp.sqrt(var) * self.basis.forward(n))

  def draws(self, key, x0) -> dict:
    """The loss's randomness: steps i [B] uniform in 1..N, noise n = L eps [B, H, W, C]."""
    k_i, k_n = jax.random.split(key)
    return {"i": jax.random.randint(k_i, (x0.shape[0],), 1, self.num_steps + 1),
            "n": self.noise(k_n, x0.shape)}

  def loss_from_draws(self, net: Net, x0, draws):
    """|net(x_i, i) - n|^2 (mean), x_i = U(a_i U^T x0 + s_i U^T n): eps-prediction per component."""
    i, n = draws["i"], draws["n"]
    return mean_squared(net(self.forward(x0, n, i), self._t(i, x0.shape[0])) - n), {}

  def loss(self, net: Net, x0, key):
    return self.loss_from_draws(net, x0, self.draws(key, x0))

  def transition(self, i, j, b):
    """q(x_i | x_j), j < i, per component: (factor a_i / a_j, added variance
    s_i^2 - (a_i / a_j)^2 s_j^2), each [B, H, W, 1]. The factor comes from the logs,
    so it stays finite where both a underflow; the variance is clamped at 0 against
    rounding (it is >= 0 when the noise-to-signal ratio does not decrease)."""
    i, j = self._rows(i, b), self._rows(j, b)
    factor = jnp.exp(self.schedule.log_a(i) - self.schedule.log_a(j))
    return factor, jnp.maximum(self.schedule.var(i) - factor ** 2 * self.schedule.var(j), 0.0)

  def posterior(self, i, j, b):
    """q(x_j | x_i, x0) per component = N(c_x x_bar_i + c_x0 x0_bar, var), j < i:
    (c_x, c_x0, var), each [B, H, W, 1]. With (f, S) = transition(i, j):
    c_x = f s_j^2 / s_i^2, c_x0 = a_j S / s_i^2, var = S s_j^2 / s_i^2."""
    factor, added = self.transition(i, j, b)
    v_i, v_j = self.schedule.var(self._rows(i, b)), self.schedule.var(self._rows(j, b))
    a_j = self.schedule.a(self._rows(j, b))
    return factor * v_j / v_i, a_j * added / v_i, added * v_j / v_i

  def _predict(self, net, x, i):
    """(x_bar, x0_hat_bar, n_hat_bar, a_i) in the rotated basis, each [B, H, W, C] (a_i [B, H, W, 1]).

    x0_hat = (x - s_i n_hat) / a_i per component, then clipped to [-1, 1] in
    pixel space (DDPM's clip_denoised). Components with a_i^2 (= Abar for VP
    schedules) < x0_min_abar (signal-to-noise below -30 dB by default) are set
    to 0, the prior mean, first: there the estimate is the eps error amplified
    by s_i / a_i (up to 1e10 once blurred away), and the pixel-space clip
    would spread it into the low frequencies. On digits this took blur
    diffusion from a Frechet ratio of 7.2 to 2.1 (BUILD_NOTES.md).
    """
    b = x.shape[0]
    xb = self.basis.forward(x)
    n_bar = self.basis.forward(net(x, self._t(i, b)))
    rows = self._rows(i, b)
    a, var = self.schedule.a(rows), self.schedule.var(rows)
    x0_bar = (xb - jnp.sqrt(var) * n_bar) / jnp.maximum(a, 1e-15)
    x0_bar = jnp.where(a * a >= self.x0_min_abar, x0_bar, 0.0)
    x0_bar = self.basis.forward(jnp.clip(self.basis.inverse(x0_bar), -1.0, 1.0))
    return xb, x0_bar, n_bar, a

  def ancestral_step(self, net: Net, x, i, key, j=None):
    """Exact per-component Gaussian posterior q(x_j | x_i, x0_hat) for j < i (default
    i - 1; a larger jump is DDPM's respaced step, the forward process from j to i
    being Gaussian per component, `transition`)."""
    j = i - 1 if j is None else j
    xb, x0_bar, _, _ = self._predict(net, x, i)
    c_x, c_x0, var = self.posterior(i, j, x.shape[0])
    z = self.basis.forward(self.noise(key, x.shape))
    return self.basis.inverse(c_x * xb + c_x0 * x0_bar + jnp.where(j > 0, jnp.sqrt(var), 0.0) * z)

  def reference_step(self, net: Net, x, i, key):
    """The official code's step (no clipping: it never forms x0_hat): with
    (f, S) = transition(i, i - 1), x_bar <- (2 - f) x_bar - S / s_i n_bar_hat + S^{1/2} z
    (for VP schedules f = A^{1/2}, S = 1 - A, s_i^2 = 1 - Abar_i)."""
    b = x.shape[0]
    xb = self.basis.forward(x)
    n_bar = self.basis.forward(net(x, self._t(i, b)))
    factor, added = self.transition(i, i - 1, b)
    v_i = self.schedule.var(self._rows(i, b))
    z = self.basis.forward(self.noise(key, x.shape))
    out = (2 - factor) * xb - added * jax.lax.rsqrt(v_i) * n_bar
    return self.basis.inverse(out + jnp.where(i > 2, jnp.sqrt(added), 0.0) * z)

  def ddim_step(self, net: Net, x, i, j):
    """x_j = U(a_j x0_hat_bar + s_j n_hat_bar)."""
    _, x0_bar, n_bar, _ = self._predict(net, x, i)
    rows = self._rows(j, x.shape[0])
    return self.basis.inverse(self.schedule.a(rows) * x0_bar + jnp.sqrt(self.schedule.var(rows)) * n_bar)

  def noise_fields(self, key, shape):
    return {"noise": self.noise(key, shape)}

  def sample(self, net: Net, key, shape, *, method="ancestral", num_steps=0, cond=None,
             trajectory_frames: int = 0):
    """num_steps: ddim and ancestral (0 = all N; the reference step always takes N).
    trajectory_frames = K > 1 also returns the starting noise and K - 1 evenly spaced
    iterates ending at the sample, with the network's x0 estimate at each (for
    coarse-to-fine strips): (x, {"iterates": [K, B, H, W, C], "x0_hat": [K, B, H, W, C]})."""
    self.check_sampler(method)
    self.check_condition(cond)
    k0, k_loop = jax.random.split(key)
    x = self.noise(k0, shape)             # a_N ~ 0, s_N ~ 1 for every component
    n = self.num_steps
    if method == "reference":
      body = lambda s, x: self.reference_step(net, x, n - s, jax.random.fold_in(k_loop, s))  # noqa: E731
      total = n
      grid = jnp.arange(n + 1)
    else:
      total = num_steps or n
      grid = jnp.round(jnp.linspace(0, n, total + 1)).astype(jnp.int32)

      def body(s, x):
        i, j = grid[total - s], grid[total - s - 1]
        if method == "ddim":
          return self.ddim_step(net, x, i, j)
        return self.ancestral_step(net, x, i, jax.random.fold_in(k_loop, s), j)
    if not trajectory_frames:
      return jax.lax.fori_loop(0, total, body, x)
    x_start = x

    def scan_body(x, s):
      x = body(s, x)
      return x, x
    x, iterates = jax.lax.scan(scan_body, x, jnp.arange(total))
    every = max(1, total // max(1, trajectory_frames - 1))
    done = total - every * jnp.arange(trajectory_frames - 2, -1, -1)      # steps taken
    frames = jnp.concatenate([x_start[None], iterates[done - 1]])
    levels = grid[total - jnp.concatenate([jnp.zeros((1,), done.dtype), done])]
    x0_hat = jax.lax.map(                   # at level 0 the frame is the sample itself
        lambda f: jnp.where(f[1] > 0, self.basis.inverse(self._predict(net, f[0], f[1])[1]), f[0]),
        (frames, levels))
    return x, {"iterates": frames, "x0_hat": x0_hat}


def build_blur_diffusion(config, noise: NoiseOperator) -> BlurDiffusion:
  """From config.process: basis, blur schedule, base kernel width, DDPM betas
  (hoogeboom: the DCT basis, process.hoogeboom_s_max)."""
  from bluediff.bases import dct_basis, dct_eigenvalues, dct_frequencies, svd_basis
  from bluediff.degradations import gaussian_kernel_1d
  p, size = config.process, config.data.image_size
  n = p.train_steps
  lam = dct_frequencies(size, size)
  if p.blur_schedule == "hoogeboom":
    if p.hoogeboom_s_max <= 0:
      raise ValueError(f"config.process.hoogeboom_s_max={p.hoogeboom_s_max} must be positive")
    return BlurDiffusion(dct_basis(size, size), hoogeboom_tables(n, lam, p.hoogeboom_s_max),
                         noise, p.time_scale, p.x0_min_abar)
  kernel = gaussian_kernel_1d(p.blur_s0, p.blur_kernel_size)
  if p.basis == "svd":
    basis, d = svd_basis(kernel, size, size)
  elif p.blur_d == "discrete":
    basis, d = dct_basis(size, size), dct_eigenvalues(kernel, size, size)
  else:                                    # the continuous heat kernel's transfer function
    basis, d = dct_basis(size, size), np.exp(-lam * p.blur_s0 ** 2 / 2)
  f_max = p.blur_f_max if p.blur_f_max >= 0 else (p.blur_s_max / p.blur_s0) ** 2
  cum_f = np.cumsum(blur_steps(p.blur_schedule, n, f_max))
  tables = blur_tables(linear_log_abar(n, p.beta_start, p.beta_end), cum_f,
                       np.log(np.clip(d, 1e-12, None)))
  return BlurDiffusion(basis, tables, noise, p.time_scale, p.x0_min_abar)


# --- from a config (bluediff.processes.build_process) -----------------------------------
READS_NOISE = True


def meaning_fields(config) -> tuple[str, ...]:
  """The config fields the built tables depend on: hoogeboom reads only its own."""
  p = config.process
  fields = ("time_scale", "train_steps")
  if p.blur_schedule == "hoogeboom":
    fields += ("blur_schedule", "hoogeboom_s_max")
  else:
    fields += ("beta_start", "beta_end", "basis", "blur_schedule", "blur_s0", "blur_s_max",
               "blur_f_max")
    if p.basis == "svd" or p.blur_d == "discrete":
      fields += ("blur_kernel_size",)
    if p.basis == "dct":
      fields += ("blur_d",)
  return tuple(f"process.{f}" for f in fields)


def from_config(config, noise: NoiseOperator, num_shards: int = 1) -> BlurDiffusion:
  return build_blur_diffusion(config, noise)
