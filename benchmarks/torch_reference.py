"""The PyTorch reference the speed benchmarks time bluediff against: a diffusers
`UNet2DModel` of the same architecture as bluediff's UNet (same parameter count)."""


def diffusers_unet(model_config, image_shape, out_channels: int):
  """UNet2DModel matching `model_config` (channels, channel_mult, num_res_blocks,
  attn_resolutions, num_heads, norm_groups, dropout) on [H, W, C] images, seeded."""
  import torch
  from diffusers import UNet2DModel
  m = model_config
  h, _, c = image_shape
  widths = [m.channels * k for k in m.channel_mult]
  attn = [h // 2**level in tuple(m.attn_resolutions) for level in range(len(widths))]
  attn_width = {wd for wd, a in zip(widths, attn) if a} | {widths[-1]}
  assert len(attn_width) == 1, "attention at levels of different widths: set heads per level"
  torch.manual_seed(0)
  return UNet2DModel(
      sample_size=h, in_channels=c, out_channels=out_channels, layers_per_block=m.num_res_blocks,
      block_out_channels=tuple(widths),
      down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attn),
      up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)),
      attention_head_dim=attn_width.pop() // m.num_heads, norm_num_groups=m.norm_groups,
      dropout=m.dropout)
