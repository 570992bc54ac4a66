"""Where the 35.7M DDPM UNet's step goes: its convolutions vs everything else, JAX vs PyTorch.

  python benchmarks/conv_share.py              # both tables (needs the [bench] extra for PyTorch)
  python benchmarks/conv_share.py --parts=convs

* "convs": every convolution shape of the UNet (recorded from a forward pass),
  timed alone, forward + input and kernel gradients, batch 16: bluediff's
  `conv2d` with algorithm "direct" and "auto" (Winograd), and PyTorch's
  Conv2d; totals weighted by how often each shape occurs.
* "ablation": the UNet's gradient step with every convolution replaced by a
  cheap op of the same output shape (strided slice, channels tiled, times the
  kernel's mean so the kernel still gets a gradient), in both frameworks, and
  the real step. The difference is what the convolutions cost inside the
  network; the ablated step is what everything else costs.
"""
import collections

import jax
import jax.numpy as jnp
import ml_collections
from absl import app, flags
from timing import best_seconds

import bluediff.models.conv as conv_lib
from bluediff.models.unet import UNet
from torch_reference import diffusers_unet

_PARTS = flags.DEFINE_list("parts", ["convs", "ablation"], "convs, ablation")
_BATCH = flags.DEFINE_integer("batch", 16, "images per step")
SIZE = 32
# The DDPM CIFAR UNet (train_step.py's ddpm32 preset), for both frameworks.
MODEL = ml_collections.ConfigDict(dict(
    channels=128, channel_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,),
    num_heads=1, norm_groups=32, dropout=0.0))


def best_ms(fn, rounds=5):
  return 1e3 * best_seconds(fn, rounds=rounds)


def bluediff_unet(algorithm="auto"):
  return UNet(**MODEL.to_dict(), out_channels=3, conv_algorithm=algorithm)


def conv_shapes(batch):
  """(size, k, c_in, c_out, stride) -> count, for every conv of the UNet."""
  seen, real = [], conv_lib.conv2d

  def spy(x, kernel, stride=1, algorithm="auto"):
    seen.append((x.shape[1], kernel.shape[0], kernel.shape[2], kernel.shape[3], stride))
    return real(x, kernel, stride, algorithm)
  conv_lib.conv2d = spy
  try:
    m = bluediff_unet()
    x, t = jnp.zeros((batch, SIZE, SIZE, 3)), jnp.zeros((batch,))
    jax.eval_shape(lambda: m.init(jax.random.key(0), x, t))
  finally:
    conv_lib.conv2d = real
  return collections.Counter(seen)


def convs_table(batch, torch):
  print("| size | k | C_in | C_out | stride | count | direct ms | auto ms |"
        + (" PyTorch ms |" if torch else "") + "\n|---|---|---|---|---|---|---|---|"
        + ("---|" if torch else ""))
  total = collections.Counter()
  for (s, k, ci, co, stride), n in sorted(conv_shapes(batch).items()):
    x = jax.random.normal(jax.random.key(0), (batch, s, s, ci))
    w = 0.05 * jax.random.normal(jax.random.key(1), (k, k, ci, co))
    row = {}
    for algorithm in ("direct", "auto"):
      g = jax.jit(jax.grad(lambda x, w, a=algorithm: jnp.sum(conv_lib.conv2d(x, w, stride, a) ** 2),
                           argnums=(0, 1)))
      row[algorithm] = best_ms(lambda: jax.block_until_ready(g(x, w)))
    if torch:
      xt = torch.randn(batch, ci, s, s, requires_grad=True)
      layer = torch.nn.Conv2d(ci, co, k, stride=stride, padding=k // 2, bias=False)

      def step():
        xt.grad, layer.weight.grad = None, None
        (layer(xt) ** 2).sum().backward()
      row["torch"] = best_ms(step)
    for key, ms in row.items():
      total[key] += n * ms
    print(f"| {s} | {k} | {ci} | {co} | {stride} | {n} | "
          + " | ".join(f"{row[key]:.1f}" for key in row) + " |")
  print("| **total** | | | | | | " + " | ".join(f"**{total[key]:.0f}**" for key in total) + " |\n")


def ablation_table(batch, torch):
  def cheap(x, kernel, stride=1, algorithm="auto"):
    y = x[:, ::stride, ::stride, :]
    y = jnp.concatenate([y] * -(-kernel.shape[-1] // y.shape[-1]), -1)[..., :kernel.shape[-1]]
    return y * jnp.mean(kernel, axis=(0, 1, 2))

  def jax_step_ms(algorithm, ablate):
    real = conv_lib.conv2d
    conv_lib.conv2d = cheap if ablate else real
    try:
      m = bluediff_unet(algorithm)
      x = jax.random.normal(jax.random.key(0), (batch, SIZE, SIZE, 3))
      t = jnp.full((batch,), 0.5)
      p = m.init(jax.random.key(1), x, t)["params"]
      g = jax.jit(jax.grad(lambda p: jnp.mean(m.apply({"params": p}, x, t) ** 2)))
      return best_ms(lambda: jax.block_until_ready(g(p)), rounds=3)
    finally:
      conv_lib.conv2d = real

  rows = {"bluediff, direct convolutions": (jax_step_ms("direct", False), None),
          "bluediff, auto (Winograd)": (jax_step_ms("auto", False), None)}
  no_conv = jax_step_ms("direct", True)
  if torch:
    def torch_ms(ablate):
      real = torch.nn.Conv2d.forward
      if ablate:
        def forward(self, x):
          s, co = self.stride[0], self.out_channels
          y = x[:, :, ::s, ::s]
          y = torch.cat([y] * -(-co // y.shape[1]), 1)[:, :co]
          return y * self.weight.mean(dim=(1, 2, 3)).view(1, -1, 1, 1)
        torch.nn.Conv2d.forward = forward
      try:
        net = diffusers_unet(MODEL, (SIZE, SIZE, 3), 3)
        x, t = torch.randn(batch, 3, SIZE, SIZE), torch.full((batch,), 500)

        def step():
          net.zero_grad(set_to_none=True)
          (net(x, t).sample ** 2).mean().backward()
        return best_ms(step, rounds=3)
      finally:
        torch.nn.Conv2d.forward = real
    rows["PyTorch + diffusers"] = (torch_ms(False), torch_ms(True))
  print("| UNet gradient step, batch %d | full ms | convolutions replaced ms | convolutions ms |"
        % batch + "\n|---|---|---|---|")
  for name, (full, ablated) in rows.items():
    ablated = no_conv if ablated is None else ablated
    print(f"| {name} | {full:.0f} | {ablated:.0f} | {full - ablated:.0f} |")


def main(_):
  try:
    import torch            # its default threads: one per core, as train_step.py times it
  except ImportError:
    torch = None
  if "convs" in _PARTS.value:
    convs_table(_BATCH.value, torch)
  if "ablation" in _PARTS.value:
    ablation_table(_BATCH.value, torch)


if __name__ == "__main__":
  app.run(main)
