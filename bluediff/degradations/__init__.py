"""Cold-diffusion degradations D(x0, t[, key]): pure, jittable, O(1) in t (methods.md §3).

Every degradation is a frozen pytree with `num_steps` T and
`__call__(x0, t, key) -> x_t` for x0 [B, H, W, C] in [-1, 1] and integer t [B]
in 0..T, with D(x0, 0) = x0. Random degradations draw from `key` [B] (one
key per image) and nothing else, so a trajectory that reuses its key sees one
mask / one snow layer at every t. One module per degradation; `build_degradation`
picks one from `config.degradation`.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from bluediff.degradations.blur import (PADDINGS, Blur, blur_stds, filter_axis,
                                        gaussian_kernel_1d, transfer_function)
from bluediff.degradations.desaturate import Desaturate
from bluediff.degradations.inpaint import GaussianMaskInpaint
from bluediff.degradations.mixing import AlphaBarMix, Blend, FixedNoise
from bluediff.degradations.snow import Snow, motion_blur_kernel
from bluediff.degradations.super_resolution import SuperResolution

__all__ = ["DEGRADATIONS", "PADDINGS", "AlphaBarMix", "Blend", "Blur", "Desaturate",
           "FixedNoise", "GaussianMaskInpaint", "Snow", "SuperResolution", "blur_stds",
           "build_degradation", "filter_axis", "gaussian_kernel_1d", "motion_blur_kernel",
           "transfer_function"]

DEGRADATIONS = ("blur", "inpaint", "sr", "desaturate", "snow", "noise", "blend")


def build_degradation(degradation_config, image_size: int,
                      blend_targets: np.ndarray | None = None):
  """The degradation a config section names (see configs/base.py `degradation`).

  blend_targets [N, H, W, C] in [-1, 1]: the second dataset's images, for kind "blend"
  (read by the caller, e.g. `bluediff.processes.cold.from_config`; a degradation reads
  no data).
  """
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
    if blend_targets is None:
      raise ValueError("config.degradation.kind='blend' needs its targets (blend_targets=)")
    fixed = FixedNoise.cosine(g.num_steps)
    return Blend(jnp.asarray(blend_targets[:g.blend_targets], jnp.float32), fixed.alpha_bar)
  raise ValueError(f"config.degradation.kind={g.kind!r} is unknown; choose one of "
                   f"{list(DEGRADATIONS)}")
