"""Networks. `build_model(config, in_channels, out_channels)` picks one by name."""
import jax.numpy as jnp

from bluediff.models.unet import UNet

MODELS = {"unet": UNet}


def build_model(model_config, out_channels: int):
  """The configured network; `out_channels` comes from the process unless set."""
  mc = model_config
  if mc.name not in MODELS:
    raise ValueError(f"config.model.name={mc.name!r} is unknown; choose one of {sorted(MODELS)}")
  return UNet(
      channels=mc.channels,
      channel_mult=tuple(mc.channel_mult),
      num_res_blocks=mc.num_res_blocks,
      attn_resolutions=tuple(mc.attn_resolutions),
      num_heads=mc.num_heads,
      dropout=mc.dropout,
      norm_groups=mc.norm_groups,
      out_channels=mc.out_channels if mc.out_channels > 0 else out_channels,
      dtype=jnp.dtype(mc.dtype),
      conv_algorithm=mc.conv_algorithm,
      patch_size=mc.patch_size,
  )
