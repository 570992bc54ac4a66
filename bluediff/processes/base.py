"""The process interface every method implements.

A process owns everything that differs between methods: how a clean batch is
corrupted, what the network is trained to predict (and with what loss), and
how samples are drawn. The training loop only ever calls `loss` and `sample`,
so it never branches on the method.

`net(x, t) -> y` is the network with its parameters (and dropout key) bound:
x [B, H, W, C_in], t [B] float in the process's own time units.

Processes are frozen dataclass pytrees (`flax.struct`): their arrays (noise
statistics, transfer functions, fitted priors) are leaves and their settings
are static fields. The jitted step and sampler take the process as an
argument, so large statistics reach XLA as device buffers, never as constants
embedded in the program (a 64x64 Cholesky factor is 67 MB).
"""
from __future__ import annotations

import abc
from typing import Callable, ClassVar, Mapping

import jax
import jax.numpy as jnp

Net = Callable[[jax.Array, jax.Array], jax.Array]


class Process(abc.ABC):
  """Base class: subclasses define `loss`, `samplers` and `output_channels`."""

  #: names accepted by `sample(method=...)`.
  samplers: ClassVar[tuple[str, ...]] = ()

  def output_channels(self, data_channels: int) -> int:
    """Channels the network must predict for data with `data_channels`."""
    return data_channels

  def input_channels(self, data_channels: int) -> int:
    """Channels the network receives (twice the data's for super-resolution)."""
    return data_channels * (2 if getattr(self, "sr_factor", 0) > 0 else 1)

  @abc.abstractmethod
  def loss(self, net: Net, x0: jax.Array, key: jax.Array) -> tuple[jax.Array, Mapping[str, jax.Array]]:
    """Scalar training loss (mean over the GLOBAL batch) and extra metrics.

    x0: [B, H, W, C] in [-1, 1].
    """

  @abc.abstractmethod
  def sample(self, net: Net, key: jax.Array, shape, *, method: str, num_steps: int,
             cond: jax.Array | None = None) -> jax.Array:
    """Draws samples [B, H, W, C] (shape) in data space, roughly [-1, 1].

    cond: the observation [B, H, W, C] a conditional process restores from
    (`observe(x0)`); None for unconditional generation.
    """

  # Super-resolution is shared by every process with an `sr_factor` field (> 0: on):
  # the network sees concat(x_t, up(down(x0))) and samplers need that observation.
  @property
  def conditional(self) -> bool:
    """True when the process restores an observation (super-resolution, cold diffusion)."""
    return getattr(self, "sr_factor", 0) > 0

  def observe(self, x0: jax.Array, key: jax.Array | None = None) -> jax.Array | None:
    """The observation of clean images a conditional process restores from (None: none)."""
    return low_resolution(x0, self.sr_factor) if self.conditional else None

  # --- learnable process parameters (trained beside the network; {} for most) ---
  def init_process_params(self) -> dict:
    return {}

  def bind(self, process_params) -> "Process":
    """This process using `process_params` (traced inside the step, or learned values)."""
    return self

  def project(self, process_params):
    """Clamps learned process parameters into their valid range after an update."""
    return process_params

  def noise_fields(self, key: jax.Array, shape) -> dict[str, jax.Array]:
    """Named example noise fields [B, H, W, C] the process draws (for spectra plots).

    Processes without noise return {}; time-varying noise returns one entry per time.
    """
    return {}

  def check_condition(self, cond) -> None:
    if self.conditional and cond is None:
      raise ValueError(f"{type(self).__name__} is conditional: sample(..., cond=process.observe(x0))")
    if not self.conditional and cond is not None:
      raise ValueError(f"{type(self).__name__} is unconditional; got a cond")

  def check_sampler(self, method: str) -> None:
    if method not in self.samplers:
      raise ValueError(f"sampler {method!r} is unknown for process {type(self).__name__}; "
                       f"choose one of {list(self.samplers)}")


def low_resolution(x: jax.Array, factor: int) -> jax.Array:
  """Bilinear down-sampling by `factor` (antialiased) and bilinear back up: [B,H,W,C] -> same."""
  b, h, w, c = x.shape
  small = jax.image.resize(x, (b, h // factor, w // factor, c), "bilinear", antialias=True)
  return jax.image.resize(small, x.shape, "bilinear")


def with_condition(net: Net, cond: jax.Array | None) -> Net:
  """The network seeing concat(x, cond) on channels (super-resolution's input), or net itself."""
  if cond is None:
    return net
  return lambda x, t: net(jnp.concatenate([x, cond.astype(x.dtype)], axis=-1), t)


def per_example(t: jax.Array, ndim: int = 4) -> jax.Array:
  """[B] -> [B, 1, 1, 1] for broadcasting a per-example scalar over an image."""
  return t.reshape(t.shape + (1,) * (ndim - t.ndim))


def mean_squared(x: jax.Array) -> jax.Array:
  """Mean over every element (pixels and the global batch)."""
  return jnp.mean(jnp.square(x))


def choice(value, options, field: str):
  """value, if it is one of options; else a ValueError naming config.process.<field>."""
  if value not in options:
    raise ValueError(f"config.process.{field}={value!r} is unknown; choose one of {list(options)}")
  return value
