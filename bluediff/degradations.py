"""Cold-diffusion degradations D(x0, t[, key]): pure, jittable, O(1) in t.

Every degradation is a frozen pytree with `num_steps` T and
`__call__(x0, t, key) -> x_t` for x0 [B, H, W, C] in [-1, 1] and integer t [B]
in 0..T, with D(x0, 0) = x0. Random degradations draw from `key` [B] (one
key per image) and nothing else, so a trajectory that reuses its key sees one
mask / one snow layer at every t (methods.md §3).

Blur is exact in O(1): a symmetric kernel applied with periodic padding is a
circular convolution, and with reflect padding (the reference's) it is a
circular convolution of the whole-sample symmetric extension (period
2(N - 1); exact while the kernel radius is below N) - both diagonalised by
an FFT. Step i's actual sampled, truncated kernel has transfer function
H_i(k); t steps multiply: D(x0, t) = F^-1(prod_{i<=t} H_i . F x0), from a
table of cumulative products (one row per t) built once.
"""
from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

PADDINGS = ("reflect", "periodic")


def gaussian_kernel_1d(std: float, size: int) -> np.ndarray:
  """The sampled, truncated, normalised Gaussian on offsets -(size//2)..size//2."""
  r = size // 2
  x = np.arange(-r, r + 1, dtype=np.float64)
  k = np.exp(-x ** 2 / (2 * std ** 2))
  return k / k.sum()


def transfer_function(kernel: np.ndarray, period: int) -> np.ndarray:
  """Real transfer function [period // 2 + 1] of a symmetric 1-D kernel on a torus of `period`."""
  r = len(kernel) // 2
  if r >= period:
    raise ValueError(f"kernel radius {r} does not fit a period of {period}")
  wrapped = np.zeros(period)
  for offset, v in zip(range(-r, r + 1), kernel):
    wrapped[offset % period] += v
  return np.real(np.fft.rfft(wrapped))


def _extend(x: jax.Array, axis: int) -> jax.Array:
  """Whole-sample symmetric extension along `axis`: length N -> 2 (N - 1)."""
  n = x.shape[axis]
  inner = jax.lax.slice_in_dim(x, 1, n - 1, axis=axis)
  return jnp.concatenate([x, jnp.flip(inner, axis)], axis=axis)


def filter_axis(x: jax.Array, tf: jax.Array, axis: int, padding: str) -> jax.Array:
  """Applies per-example transfer functions tf [B, P // 2 + 1] along `axis` of x [B, H, W, C]."""
  n = x.shape[axis]
  ext = _extend(x, axis) if padding == "reflect" else x
  period = ext.shape[axis]
  # Transform over the minor axis of a 2-D [rows, period] array: XLA:CPU's FFT
  # requires the default layout, which a transform over an inner axis inside
  # a loop can lose (RET_CHECK in fft_thunk).
  moved = jnp.moveaxis(ext, axis, -1)                       # [B, ., C, P]
  flat = moved.reshape(-1, period)
  f = jnp.fft.rfft(flat, axis=-1).reshape(moved.shape[:-1] + (period // 2 + 1,))
  f = f * tf[:, None, None, :]
  y = jnp.fft.irfft(f.reshape(-1, period // 2 + 1), n=period, axis=-1).reshape(moved.shape)
  y = jnp.moveaxis(y, -1, axis)
  return jax.lax.slice_in_dim(y, 0, n, axis=axis).astype(x.dtype)


@struct.dataclass
class Blur:
  """Repeated Gaussian blur; step i uses std_i = std_fn(i) on a size x size kernel.

  tf: cumulative transfer functions [T + 1, P // 2 + 1] (row t = prod_{i<=t}), the
  same along both axes of a square image; `mean_at_end` replaces D(., T) by the per-channel mean
  (the generation variant).
  """
  tf: jax.Array
  stds: tuple = struct.field(pytree_node=False)
  kernel_size: int = struct.field(pytree_node=False, default=11)
  padding: str = struct.field(pytree_node=False, default="reflect")
  mean_at_end: bool = struct.field(pytree_node=False, default=False)
  random: ClassVar[bool] = False

  @property
  def num_steps(self) -> int:
    return self.tf.shape[0] - 1

  @classmethod
  def build(cls, stds, kernel_size: int, image_size: int, padding: str = "reflect",
            mean_at_end: bool = False) -> "Blur":
    if padding not in PADDINGS:
      raise ValueError(f"blur padding {padding!r} is unknown; choose one of {list(PADDINGS)}")
    period = 2 * (image_size - 1) if padding == "reflect" else image_size
    rows = [np.ones(period // 2 + 1)]
    for std in stds:
      rows.append(rows[-1] * transfer_function(gaussian_kernel_1d(std, kernel_size), period))
    tf = jnp.asarray(np.stack(rows), jnp.float32)
    return cls(tf, tuple(float(s) for s in stds), kernel_size, padding, mean_at_end)

  def __call__(self, x0, t, key=None):
    t = jnp.asarray(t, jnp.int32)
    y = filter_axis(filter_axis(x0, self.tf[t], 1, self.padding), self.tf[t], 2, self.padding)
    if self.mean_at_end:
      mean = jnp.broadcast_to(x0.mean(axis=(1, 2), keepdims=True), x0.shape)
      y = jnp.where((t == self.num_steps)[:, None, None, None], mean, y)
    return y

  def recursive(self, x0, t: int):
    """The reference's O(t) form: t depthwise convolutions, each padded (for comparison)."""
    mode = "reflect" if self.padding == "reflect" else "wrap"
    r = self.kernel_size // 2
    x = x0
    for i in range(t):
      k1 = jnp.asarray(gaussian_kernel_1d(self.stds[i], self.kernel_size), x.dtype)
      k2 = jnp.outer(k1, k1)[:, :, None, None] * jnp.ones((1, 1, 1, x.shape[-1]), x.dtype)
      xp = jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), mode=mode)
      x = jax.lax.conv_general_dilated(xp, k2, (1, 1), "VALID",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                       feature_group_count=x.shape[-1],
                                       precision=jax.lax.Precision.HIGHEST)
    if self.mean_at_end and t == self.num_steps:
      x = jnp.broadcast_to(x0.mean(axis=(1, 2), keepdims=True), x0.shape)
    return x


@struct.dataclass
class GaussianMaskInpaint:
  """x_t = x0 * prod_{i<t} (1 - exp(-r^2 / (2 s_i^2))), s_i = std (i + initial), i from 0.

  Step t applies the reference's kernels 0..t-1 (defading_diffusion_gaussian.py:
  `get_kernels` builds kernel i = 0..T-1 with std `kernel_std * (i + initial_mask)`,
  `q_sample` applies kernels 0..t for its 0-based t = our t - 1).

  r: distance to the mask centre, on the reference's pixel grid (its kernels
  are (N+1)^2 Gaussians centred at N/2, cropped by one row and column): an
  integer in {-1, ..., N-1} per axis drawn per image from `key` (`random_centre`:
  the reference's random crop of a (2N+1)^2 kernel), else N/2 - 1.
  `colour_fill`: the generation variant x_t = m x0 + (1 - m) c with a constant
  colour c per image (each channel uniform in [-0.5, 0.5], from the key),
  covered from the centre out (the reference's default). `reverse`: its
  `--reverse` (the command its README gives): m_t = 1 - prod_{i < T-t} k_i, so
  the colour covers from the outside in and sampling reveals the image from the
  centre out; m_0 = 1.
  """
  num_steps: int = struct.field(pytree_node=False, default=50)
  std: float = struct.field(pytree_node=False, default=0.1)
  initial: float = struct.field(pytree_node=False, default=11.0)
  random_centre: bool = struct.field(pytree_node=False, default=True)
  colour_fill: bool = struct.field(pytree_node=False, default=False)
  reverse: bool = struct.field(pytree_node=False, default=False)
  random: ClassVar[bool] = True

  def mask(self, shape, t, key):
    """[B, H, W, 1] multiplicative mask at steps t [B]."""
    b, h, w, _ = shape
    if self.random_centre:   # integers -1..N-1 per axis
      centre = jax.vmap(lambda k: jax.random.randint(k, (2,), -1, jnp.array([h, w])))(key)
    else:
      centre = jnp.tile(jnp.array([[h // 2 - 1, w // 2 - 1]]), (b, 1))
    centre = centre.astype(jnp.float32)
    yy, xx = jnp.meshgrid(jnp.arange(h), jnp.arange(w), indexing="ij")
    r2 = (yy[None] - centre[:, 0, None, None]) ** 2 + (xx[None] - centre[:, 1, None, None]) ** 2
    i = jnp.arange(self.num_steps, dtype=jnp.float32)           # kernel index 0..T-1
    s = self.std * (i + self.initial)
    log_z = jnp.log1p(-jnp.exp(-r2[:, None] / (2 * s[None, :, None, None] ** 2)))   # [B, T, H, W]
    t = jnp.asarray(t)
    applied = self.num_steps - t if self.reverse else t   # kernels in the product
    on = (i[None, :] < applied[:, None])[:, :, None, None]
    m = jnp.exp(jnp.sum(jnp.where(on, log_z, 0.0), axis=1))[..., None]
    if self.reverse:
      m = jnp.where((t > 0)[:, None, None, None], 1.0 - m, 1.0)
    return m

  def colour(self, key, channels: int) -> jax.Array:
    """[B, 1, 1, C] constant colours, uniform in [-0.5, 0.5] per channel."""
    k = jax.vmap(lambda k: jax.random.fold_in(k, 1))(key)
    return jax.vmap(lambda k: jax.random.uniform(k, (1, 1, channels), minval=-0.5, maxval=0.5))(k)

  def __call__(self, x0, t, key=None):
    m = self.mask(x0.shape, t, key)
    if self.colour_fill:
      return m * x0 + (1 - m) * self.colour(key, x0.shape[-1])
    return x0 * m


@struct.dataclass
class SuperResolution:
  """Step t: t bicubic halvings (no antialias), then nearest back to full size."""
  num_steps: int = struct.field(pytree_node=False, default=3)
  random: ClassVar[bool] = False

  def levels(self, x0):
    """[T + 1, B, H, W, C]: every level, resized back (static shapes)."""
    b, h, w, c = x0.shape
    out, x = [x0], x0
    for _ in range(self.num_steps):
      x = jax.image.resize(x, (b, x.shape[1] // 2, x.shape[2] // 2, c), "bicubic", antialias=False)
      out.append(jax.image.resize(x, x0.shape, "nearest"))
    return jnp.stack(out)

  def __call__(self, x0, t, key=None):
    levels = self.levels(x0)
    return levels[jnp.asarray(t), jnp.arange(x0.shape[0])]


@struct.dataclass
class Desaturate:
  """gray + (1 - t / T) (x0 - gray), gray = the channel mean."""
  num_steps: int = struct.field(pytree_node=False, default=20)
  random: ClassVar[bool] = False

  def __call__(self, x0, t, key=None):
    gray = x0.mean(axis=-1, keepdims=True)
    keep = 1.0 - jnp.asarray(t, jnp.float32) / self.num_steps
    return gray + keep[:, None, None, None] * (x0 - gray)


def motion_blur_kernel(h: int, w: int, length: jax.Array, angle: jax.Array,
                       sigma: float) -> jax.Array:
  """A normalised one-sided motion-blur kernel [H, W] on the torus (origin at [0, 0]).

  Weight exp(-u^2 / 2 sigma^2) for 0 <= u <= length along the direction
  `angle` (radians), falling linearly to 0 one pixel off the line.
  """
  dy = jnp.fft.fftfreq(h) * h
  dx = jnp.fft.fftfreq(w) * w
  yy, xx = jnp.meshgrid(dy, dx, indexing="ij")
  u = xx * jnp.cos(angle) + yy * jnp.sin(angle)          # along the motion
  v = -xx * jnp.sin(angle) + yy * jnp.cos(angle)         # across it
  k = jnp.exp(-u ** 2 / (2 * sigma ** 2)) * (u >= 0) * (u <= length) * jnp.maximum(0.0, 1 - jnp.abs(v))
  return k / jnp.sum(k)


@struct.dataclass
class Snow:
  """Procedural ImageNet-C-style snow (no image library): per image, from its key,
  a Gaussian noise layer (mean 0.1, std 0.3), zoomed 3x, thresholded at
  thr_t = thr_start + (thr_end - thr_start) t / T, motion-blurred along a random
  angle in [-135, -45] degrees with length 1 + (max_length - 1) t / T; the layer
  and its 180-degree rotation are added to the image brightened towards
  1.5 gray + 0.5 (ImageNet-C's blend, weight 0.2 t / T) and clipped. D(x0, 0) = x0.
  Images are in [-1, 1]; the recipe runs in [0, 1].
  """
  num_steps: int = struct.field(pytree_node=False, default=200)
  thr_start: float = struct.field(pytree_node=False, default=1.15)
  thr_end: float = struct.field(pytree_node=False, default=0.6)
  max_length: float = struct.field(pytree_node=False, default=10.0)
  sigma: float = struct.field(pytree_node=False, default=4.0)
  zoom: float = struct.field(pytree_node=False, default=3.0)
  random: ClassVar[bool] = True

  def threshold(self, t):
    return self.thr_start + (self.thr_end - self.thr_start) * jnp.asarray(t, jnp.float32) / self.num_steps

  def layer(self, key, h: int, w: int, t) -> jax.Array:
    """The snow layer [H, W] of one image at step t (scalar)."""
    k_noise, k_angle = jax.random.split(key)
    noise = 0.1 + 0.3 * jax.random.normal(k_noise, (h, w))
    ch, cw = max(1, int(round(h / self.zoom))), max(1, int(round(w / self.zoom)))
    top, left = (h - ch) // 2, (w - cw) // 2
    zoomed = jax.image.resize(noise[top:top + ch, left:left + cw], (h, w), "bilinear")
    flakes = jnp.where(zoomed >= self.threshold(t), zoomed, 0.0)
    frac = jnp.asarray(t, jnp.float32) / self.num_steps
    angle = jnp.deg2rad(jax.random.uniform(k_angle, (), minval=-135.0, maxval=-45.0))
    kernel = motion_blur_kernel(h, w, 1.0 + (self.max_length - 1.0) * frac, angle, self.sigma)
    blurred = jnp.real(jnp.fft.ifft2(jnp.fft.fft2(flakes) * jnp.fft.fft2(kernel)))
    return blurred * (t > 0)

  def __call__(self, x0, t, key=None):
    b, h, w, c = x0.shape
    t = jnp.broadcast_to(jnp.asarray(t), (b,))
    layers = jax.vmap(lambda k, s: self.layer(k, h, w, s))(key, t)[..., None]   # [B, H, W, 1]
    x = (x0 + 1.0) / 2.0
    gray = x.mean(axis=-1, keepdims=True)
    mix = 0.2 * (t / self.num_steps)[:, None, None, None]
    x = (1 - mix) * x + mix * jnp.maximum(x, gray * 1.5 + 0.5)
    x = jnp.clip(x + layers + jnp.rot90(layers, 2, axes=(1, 2)), 0.0, 1.0)
    return x * 2.0 - 1.0


class AlphaBarMix:
  """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) e, e a second image (noise z, a target y):
  the form whose e can be re-estimated from (x_t, x0_hat), as DDIM does."""

  def mix(self, x0, e, t):
    """x0, e [B, H, W, C], t [B] integer in 0..T -> x_t."""
    ab = self.alpha_bar[jnp.asarray(t)][:, None, None, None]
    return jnp.sqrt(ab) * x0 + jnp.sqrt(1 - ab) * e

  def estimate_other(self, x_t, x0_hat, t):
    """e_hat = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t) for t [B] >= 1 (abar_t < 1)."""
    ab = self.alpha_bar[jnp.asarray(t)][:, None, None, None]
    return (x_t - jnp.sqrt(ab) * x0_hat) / jnp.sqrt(1 - ab)


@struct.dataclass
class FixedNoise(AlphaBarMix):
  """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) z with one z per image (from its key):
  cold diffusion's deterministic-noise degradation (cosine abar, T steps)."""
  alpha_bar: jax.Array                     # [T + 1], abar_0 = 1
  random: ClassVar[bool] = True

  @property
  def num_steps(self) -> int:
    return self.alpha_bar.shape[0] - 1

  @classmethod
  def cosine(cls, num_steps: int, s: float = 0.008) -> "FixedNoise":
    u = np.arange(num_steps + 1) / num_steps
    f = np.cos((u + s) / (1 + s) * np.pi / 2) ** 2
    return cls(jnp.asarray(np.clip(f / f[0], 1e-5, 1.0), jnp.float32))

  def noise(self, shape, key):
    return jax.vmap(lambda k: jax.random.normal(k, shape[1:]))(key)

  def __call__(self, x0, t, key=None):
    return self.mix(x0, self.noise(x0.shape, key), t)


@struct.dataclass
class Blend(AlphaBarMix):
  """Animorphosis: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) y, with y an image of a
  second dataset (one of `targets` [N, H, W, C], picked by the image's key)."""
  targets: jax.Array
  alpha_bar: jax.Array
  random: ClassVar[bool] = True

  @property
  def num_steps(self) -> int:
    return self.alpha_bar.shape[0] - 1

  def target(self, key):
    idx = jax.vmap(lambda k: jax.random.randint(k, (), 0, self.targets.shape[0]))(key)
    return self.targets[idx]

  def __call__(self, x0, t, key=None):
    return self.mix(x0, self.target(key).astype(x0.dtype), t)

DEGRADATIONS = ("blur", "inpaint", "sr", "desaturate", "snow", "noise", "blend")


def blur_stds(config) -> list[float]:
  g = config
  if g.blur_schedule == "linear":
    return [g.blur_std + g.blur_std_step * i for i in range(g.num_steps)]
  if g.blur_schedule == "exp":
    return [float(np.exp(g.blur_std_step * i)) for i in range(g.num_steps)]
  raise ValueError(f"config.degradation.blur_schedule={g.blur_schedule!r}: use linear or exp")


def build_degradation(degradation_config, image_size: int):
  """The degradation a config section names (see configs/base.py `degradation`)."""
  g = degradation_config
  if g.kind == "blur":
    return Blur.build(blur_stds(g), g.kernel_size, image_size, g.padding, g.mean_at_end)
  if g.kind == "inpaint":
    return GaussianMaskInpaint(g.num_steps, g.mask_std, g.mask_initial, g.random_centre,
                               g.colour_fill, g.reverse)
  if g.kind == "sr":
    if image_size % (2 ** g.num_steps):
      raise ValueError(f"super-resolution: image_size {image_size} cannot be halved "
                       f"{g.num_steps} times")
    return SuperResolution(g.num_steps)
  if g.kind == "desaturate":
    return Desaturate(g.num_steps)
  if g.kind == "snow":
    return Snow(g.num_steps)
  if g.kind == "noise":
    return FixedNoise.cosine(g.num_steps)
  if g.kind == "blend":
    from bluediff.data.sources import load_split
    targets, _ = load_split(g.blend_dataset, g.blend_split, image_size, g.blend_data_dir)
    fixed = FixedNoise.cosine(g.num_steps)
    return Blend(jnp.asarray(targets[:g.blend_targets], jnp.float32), fixed.alpha_bar)
  raise ValueError(f"config.degradation.kind={g.kind!r} is unknown; choose one of "
                   f"{list(DEGRADATIONS)}")
