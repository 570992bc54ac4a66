"""Blur diffusion: generalised diffusion in a rotated basis (Lee et al. 2022), methods.md §4.

With an orthonormal basis U (x_bar = U^T x) and per-component Abar_{i,k}
(i = 0..N, Abar_0 = 1, non-increasing in i):
  x_i = U (Abar_i^{1/2} x0_bar + (1 - Abar_i)^{1/2} n_bar),   n = the noise (eps for white)
The network predicts n in pixel space (plain MSE, i uniform in 1..N). Each
component is a 1-D DDPM chain with per-step factor A_i = Abar_i / Abar_{i-1}, so
  ancestral  (exact, default) the per-component Gaussian posterior q(x_j | x_i, x0_hat),
             j = i - 1, or any coarser grid (DDPM's respacing)
  reference  x_bar <- (2 - sqrt(A)) x_bar - (1 - A) / sqrt(1 - Abar) n_bar_hat + sqrt(1 - A) z
             (no noise at i <= 2; the official code's first-order step)
  ddim       x_j = U (Abar_j^{1/2} x0_hat_bar + (1 - Abar_j)^{1/2} n_bar_hat), any step grid
Blur: Abar_{i,k} = abar_i d_k^{2 F(i)}, F(i) = sum_{j<=i} f(j), d_k the base
kernel's eigenvalues in the basis; f = 0 is DDPM. Non-white noise (blue,
time-varying...) enters through n = L eps: the forward law and the ddim step
are exact for any L (the network predicts n itself); the ancestral and
reference steps draw their fresh z from the same L, which is exact only when
L is diagonal in the basis (white noise), an approximation otherwise.
The ancestral and ddim samplers set x0_hat to 0 on components whose Abar is
below x0_min_abar before clipping it (see `_predict`).
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
class ComponentSchedule:
  """log Abar_{i,k} = log abar_i + 2 F(i) log d_k, as arrays: abar [N+1], F [N+1], log_d [H, W]."""
  log_abar: jax.Array
  cum_f: jax.Array
  log_d: jax.Array

  @property
  def num_steps(self) -> int:
    return self.log_abar.shape[0] - 1

  def log(self, i) -> jax.Array:
    """log Abar for integer steps i [B] -> [B, H, W, 1] (ratios stay finite where Abar ~ 0)."""
    i = jnp.asarray(i, jnp.int32)
    return (self.log_abar[i][:, None, None] + 2.0 * self.cum_f[i][:, None, None] * self.log_d[None])[..., None]

  def __call__(self, i) -> jax.Array:
    return jnp.exp(self.log(i))


@struct.dataclass
class HoogeboomSchedule:
  """Blurring Diffusion Models' preset as per-component Abar: alpha_t^2 d_t(k)^2 with
  d_t = (1 - floor) exp(-lambda_k tau_t) + floor, tau_t = s_B(t)^2 / 2,
  s_B(t) = s_max sin^2(pi t / 2), alpha_t^2 = cos^2 of the cosine schedule (t = i / N)."""
  log_alpha2: jax.Array     # [N + 1]
  lam: jax.Array            # [H, W] DCT frequencies
  s_max: float = struct.field(pytree_node=False, default=20.0)
  floor: float = struct.field(pytree_node=False, default=0.001)

  @property
  def num_steps(self) -> int:
    return self.log_alpha2.shape[0] - 1

  def log(self, i) -> jax.Array:
    t = jnp.asarray(i, jnp.float32) / self.num_steps
    tau = (self.s_max * jnp.sin(jnp.pi * t / 2) ** 2) ** 2 / 2
    d = (1 - self.floor) * jnp.exp(-self.lam[None] * tau[:, None, None]) + self.floor
    return (self.log_alpha2[jnp.asarray(i, jnp.int32)][:, None, None] + 2 * jnp.log(d))[..., None]

  def __call__(self, i) -> jax.Array:
    return jnp.exp(self.log(i))


def linear_log_abar(num_steps: int, beta_start=1e-4, beta_end=0.02) -> np.ndarray:
  betas = np.linspace(beta_start, beta_end, num_steps)
  return np.concatenate([[0.0], np.cumsum(np.log1p(-betas))])


@struct.dataclass
class BlurDiffusion(Process):
  samplers = ("ancestral", "reference", "ddim")
  basis: Any
  schedule: Any                  # ComponentSchedule | HoogeboomSchedule: i -> Abar [B, H, W, 1]
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

  def forward(self, x0, n, i):
    """x_i for integer steps i [B], given the noise n (pixel space)."""
    a = self.schedule(i)
    return self.basis.inverse(jnp.sqrt(a) * self.basis.forward(x0) +
                              jnp.sqrt(1.0 - a) * self.basis.forward(n))

  def loss(self, net: Net, x0, key):
    k_i, k_n = jax.random.split(key)
    b = x0.shape[0]
    i = jax.random.randint(k_i, (b,), 1, self.num_steps + 1)
    n = self.noise(k_n, x0.shape)
    return mean_squared(net(self.forward(x0, n, i), self._t(i, b)) - n), {}

  def _predict(self, net, x, i):
    """(x_bar, x0_hat_bar, n_hat_bar, Abar_i) in the rotated basis.

    x0_hat = (x - sqrt(1 - Abar) n_hat) / sqrt(Abar) per component, then clipped
    to [-1, 1] in pixel space (DDPM's clip_denoised). Components with
    Abar < x0_min_abar (signal-to-noise below -30 dB by default) are set to 0,
    the prior mean, first: there the estimate is the eps error amplified by
    1 / sqrt(Abar) (up to 1e10 once blurred away), and the pixel-space clip
    would spread it into the low frequencies. On digits this took blur
    diffusion from a Frechet ratio of 7.2 to 2.1 (BUILD_NOTES.md).
    """
    b = x.shape[0]
    xb = self.basis.forward(x)
    n_bar = self.basis.forward(net(x, self._t(i, b)))
    a = self.schedule(jnp.full((b,), i))
    x0_bar = (xb - jnp.sqrt(1 - a) * n_bar) * jax.lax.rsqrt(jnp.maximum(a, 1e-30))
    x0_bar = jnp.where(a >= self.x0_min_abar, x0_bar, 0.0)
    x0_bar = self.basis.forward(jnp.clip(self.basis.inverse(x0_bar), -1.0, 1.0))
    return xb, x0_bar, n_bar, a

  def _step_factor(self, i, b, j=None):
    """Abar_i / Abar_j per component (j = i - 1 by default), [B, H, W, 1]; from the
    logs, so it stays finite where both Abar underflow."""
    j = i - 1 if j is None else j
    return jnp.exp(self.schedule.log(jnp.full((b,), i)) - self.schedule.log(jnp.full((b,), j)))

  def ancestral_step(self, net: Net, x, i, key, j=None):
    """Exact per-component Gaussian posterior q(x_j | x_i, x0_hat) for j < i (default
    i - 1; a larger jump is DDPM's respaced step, the forward process from j to i
    being Gaussian with per-component factor Abar_i / Abar_j)."""
    j = i - 1 if j is None else j
    b = x.shape[0]
    xb, x0_bar, _, a_i = self._predict(net, x, i)
    a_j = self.schedule(jnp.full((b,), j))
    step = self._step_factor(i, b, j)
    mean = (jnp.sqrt(a_j) * (1 - step) * x0_bar + jnp.sqrt(step) * (1 - a_j) * xb) / (1 - a_i)
    var = (1 - a_j) * (1 - step) / (1 - a_i)
    z = self.basis.forward(self.noise(key, x.shape))
    return self.basis.inverse(mean + jnp.where(j > 0, jnp.sqrt(var), 0.0) * z)

  def reference_step(self, net: Net, x, i, key):
    """The official code's step (no clipping: it never forms x0_hat)."""
    b = x.shape[0]
    xb = self.basis.forward(x)
    n_bar = self.basis.forward(net(x, self._t(i, b)))
    a_i = self.schedule(jnp.full((b,), i))
    step = self._step_factor(i, b)
    z = self.basis.forward(self.noise(key, x.shape))
    out = (2 - jnp.sqrt(step)) * xb - (1 - step) / jnp.sqrt(1 - a_i) * n_bar
    return self.basis.inverse(out + jnp.where(i > 2, jnp.sqrt(1 - step), 0.0) * z)

  def ddim_step(self, net: Net, x, i, j):
    """x_j = U(sqrt(Abar_j) x0_hat_bar + sqrt(1 - Abar_j) n_hat_bar)."""
    _, x0_bar, n_bar, _ = self._predict(net, x, i)
    a_j = self.schedule(jnp.full((x.shape[0],), j))
    return self.basis.inverse(jnp.sqrt(a_j) * x0_bar + jnp.sqrt(1 - a_j) * n_bar)

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
    x = self.noise(k0, shape)             # Abar_N ~ 0 for every component
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
  """From config.process: basis, blur schedule, base kernel width, DDPM betas."""
  from bluediff.bases import dct_basis, dct_eigenvalues, dct_frequencies, svd_basis
  from bluediff.degradations import gaussian_kernel_1d
  p, size = config.process, config.data.image_size
  n = p.train_steps
  log_abar = linear_log_abar(n, p.beta_start, p.beta_end)
  lam = dct_frequencies(size, size)
  if p.blur_schedule == "hoogeboom":
    u = np.arange(n + 1) / n
    alpha2 = np.clip(np.cos((u + 0.008) / 1.008 * np.pi / 2) ** 2 / np.cos(0.008 / 1.008 * np.pi / 2) ** 2,
                     1e-5, 1.0)
    return BlurDiffusion(dct_basis(size, size), HoogeboomSchedule(jnp.asarray(np.log(alpha2), jnp.float32),
                                                       jnp.asarray(lam, jnp.float32), p.blur_s_max),
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
  sched = ComponentSchedule(jnp.asarray(log_abar, jnp.float32), jnp.asarray(cum_f, jnp.float32),
                            jnp.asarray(np.log(np.clip(d, 1e-12, None)), jnp.float32))
  return BlurDiffusion(basis, sched, noise, p.time_scale, p.x0_min_abar)
