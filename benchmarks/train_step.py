"""Train-step throughput: bluediff's full step, its UNet alone, and PyTorch/diffusers.

  python benchmarks/train_step.py --preset=ddpm32          # 35.7M UNet, 32x32, batch 16
  python benchmarks/train_step.py --preset=blue64          # 113.7M UNet, 64x64, batch 8
  python benchmarks/train_step.py --config=configs/digits.py --preset=none
  python benchmarks/train_step.py --preset=ddpm32 --config.model.dtype=bfloat16

Rows:
* "UNet + AdamW": forward + backward of the network on a fixed regression
  target, then the config's optimizer (AdamW, clipping); no process, no EMA.
* "full bluediff step": the jitted step the training loop runs (the process's
  noise, blue-noise fields, pairing, ..., the UNet, the optimizer and the EMA).
  The gap to the row above is what the framework adds around the network.
* "PyTorch + diffusers": when both are installed (`pip install -e .[bench]`),
  the same architecture as a diffusers `UNet2DModel` (same parameter count,
  checked), DDPM eps-prediction MSE, AdamW with global-norm clipping, float32,
  eager, on the same CPU threads, in the same run; "ratio" = bluediff / PyTorch.

GFLOP per image come from XLA's cost analysis of the UNet step with direct
convolutions (`model.conv_algorithm=direct`), whatever algorithm the timed step
uses: both frameworks run the same architecture, and the GFLOP/s column is the
direct-convolution work done per second (Winograd does fewer multiply-adds for
the same result, so with it this is an effective rate). All rows take the best of --rounds
interleaved rounds of --iters steps, so they see the same machine state.
"""
import os
import sys
import time

import jax
import jax.numpy as jnp
import optax
from absl import app, flags
from ml_collections import config_flags

from bluediff import sharding
from bluediff.experiment import build_experiment

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment config (a preset sets one)")
_PRESET = flags.DEFINE_enum("preset", "ddpm32", ["ddpm32", "blue64", "none"],
                            "ddpm32: the DDPM CIFAR UNet (35.7M) at batch 16 on configs/cifar_tv.py; "
                            "blue64: the blue-noise reference's 64x64 UNet (113.7M) at batch 8 on "
                            "configs/celeba64_tv.py; none: --config as given.")
_ITERS = flags.DEFINE_integer("iters", 4, "steps per timed round")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "timed rounds (best is kept)")
_PEAK = flags.DEFINE_float("peak_tflops", 0.0, "the device's peak TFLOP/s in the compute "
                           "dtype (e.g. 989 for an H100 SXM in bf16): adds an MFU column")
_TORCH = flags.DEFINE_bool("torch", True, "also time PyTorch + diffusers when installed")

# preset -> the config file (unless --config is given) and the overrides it puts before
# the command line's own (so those win). Model fields as the two networks;
# dropout 0 as diffusers' default (dropout costs time, not FLOPs).
PRESETS = {
    "ddpm32": ("configs/cifar_tv.py", {
        "model.channels": 128, "model.channel_mult": "(1,2,2,2)", "model.num_res_blocks": 2,
        "model.attn_resolutions": "(16,)", "model.dropout": 0.0, "training.batch_size": 16}),
    "blue64": ("configs/celeba64_tv.py", {
        "model.channels": 128, "model.channel_mult": "(1,1,2,2,4,4)", "model.num_res_blocks": 2,
        "model.attn_resolutions": "(4,)", "model.dropout": 0.0, "training.batch_size": 8}),
    "none": (None, {}),
}


def expand_preset(argv: list[str]) -> list[str]:
  """argv with the preset's --config and overrides inserted before the user's flags."""
  preset = next((a.split("=", 1)[1] for a in argv if a.startswith("--preset=")), "ddpm32")
  path, overrides = PRESETS.get(preset, (None, {}))
  given = any(a.startswith("--config=") for a in argv)
  head = [f"--config={path}"] if path and not given else []
  return [argv[0], *head, *(f"--config.{k}={v}" for k, v in overrides.items()), *argv[1:]]


def best_step_time(step_fn, state, *args, iters: int):
  """Seconds per step of `state = step_fn(state, *args)[0]` over `iters` steps."""
  state, out = step_fn(state, *args)
  jax.block_until_ready(out)
  t = time.perf_counter()
  for _ in range(iters):
    state, out = step_fn(state, *args)
  jax.block_until_ready(out)
  return (time.perf_counter() - t) / iters


def torch_step_fn(config, image_shape, out_channels):
  """A diffusers UNet2DModel of the config's architecture and its training step, or None."""
  try:
    import torch
    import diffusers  # noqa: F401
  except ImportError:
    return None, None
  from torch_reference import diffusers_unet
  h, w, c = image_shape
  net = diffusers_unet(config.model, image_shape, out_channels)
  opt = torch.optim.AdamW(net.parameters(), lr=config.optim.lr,
                          weight_decay=config.optim.weight_decay)
  b = config.training.batch_size
  x0 = torch.randn(b, c, h, w)
  abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), 0)

  def step(_state=None):
    t = torch.randint(0, 1000, (b,))
    eps = torch.randn(b, out_channels, h, w)
    a = abar[t].view(b, 1, 1, 1)
    xt = a.sqrt() * x0 + (1 - a).sqrt() * eps[:, :c]
    loss = torch.nn.functional.mse_loss(net(xt, t).sample, eps)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if config.optim.grad_clip > 0:
      torch.nn.utils.clip_grad_norm_(net.parameters(), config.optim.grad_clip)
    opt.step()
    return None, loss.detach()

  n_params = sum(p.numel() for p in net.parameters())
  return step, n_params


def main(_):
  config = _CONFIG.value
  exp = build_experiment(config)
  b = config.training.batch_size
  h, w, c = exp.image_shape
  images = sharding.host_to_global(jax.random.normal(jax.random.key(1), (b, h, w, c)), exp.mesh)
  state0 = exp.init_state(0)
  n_params = sum(x.size for x in jax.tree.leaves(state0.params))
  out_channels = exp.model.out_channels

  def unet_only(model):
    """The UNet + optimizer step of `model` (the config's, or a clone)."""
    def step(state, x):
      t = jnp.full((x.shape[0],), 0.5)
      target = jnp.concatenate([x] * (out_channels // c) + [x[..., :out_channels % c]], -1)

      def loss_fn(p):
        y = model.apply({"params": p}, x, t, train=True, rngs={"dropout": jax.random.key(0)})
        return jnp.mean(jnp.square(y - target))
      loss, g = jax.value_and_grad(loss_fn)(state.params)
      upd, opt = exp.optimizer.update(g, state.opt_state, state.params)
      return state.replace(params=optax.apply_updates(state.params, upd), opt_state=opt), loss
    return jax.jit(step, donate_argnums=0)

  unet_step = unet_only(exp.model)
  full_step = exp.train_step()
  key = jax.device_put(jax.random.key(0), sharding.replicated(exp.mesh))
  direct = unet_only(exp.model.clone(conv_algorithm="direct"))
  cost = direct.lower(state0, images).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  gflop_per_image = cost.get("flops", float("nan")) / b / 1e9
  torch_step, torch_params = torch_step_fn(config, exp.image_shape, out_channels) if (
      _TORCH.value) else (None, None)
  if torch_step is not None and torch_params != n_params:
    print(f"warning: diffusers UNet has {torch_params} parameters, bluediff's {n_params}")

  times = {"unet": float("inf"), "full": float("inf"), "torch": float("inf")}
  for _ in range(_ROUNDS.value):
    times["unet"] = min(times["unet"], best_step_time(unet_step, exp.init_state(0), images,
                                                      iters=_ITERS.value))
    times["full"] = min(times["full"], best_step_time(
        lambda s, x: full_step(s, x, key), exp.init_state(0), images,
        iters=_ITERS.value))
    if torch_step is not None:
      times["torch"] = min(times["torch"], best_step_time(lambda s: torch_step(s), None,
                                                          iters=_ITERS.value))

  xla_flags = os.environ.get("XLA_FLAGS", "")
  print(f"\n{_PRESET.value}: {config.process.name} on {config.data.dataset} {h}x{w}x{c}, batch {b}, "
        f"UNet {n_params / 1e6:.2f}M params, {gflop_per_image:.1f} GFLOP/image (fwd+bwd), "
        f"compute {config.model.dtype}, conv {config.model.conv_algorithm}, {jax.device_count()} x {jax.devices()[0].device_kind}, "
        f"XLA_FLAGS='{xla_flags}'")
  mfu = _PEAK.value > 0
  print("| what | ms/step | images/s | GFLOP/s |" + (" MFU |" if mfu else ""))
  print("|---|---|---|---|" + ("---|" if mfu else ""))
  rows = [("UNet + AdamW (bluediff)", times["unet"]), ("full bluediff step", times["full"])]
  if torch_step is not None:
    import torch
    rows.append((f"PyTorch {torch.__version__} + diffusers, eager "
                 f"({torch.get_num_threads()} threads)", times["torch"]))
  for name, t in rows:
    gflops = gflop_per_image * b / t
    print(f"| {name} | {t * 1e3:.0f} | {b / t:.2f} | {gflops:.0f} |" +
          (f" {100 * gflops / (1e3 * _PEAK.value):.1f} % |" if mfu else ""))
  outside = (times["full"] - times["unet"]) / times["full"]
  print(f"\nshare of the full step outside the UNet + optimizer: {100 * outside:.1f} %")
  if torch_step is not None:
    print(f"bluediff / PyTorch images/s: full step {times['torch'] / times['full']:.2f}, "
          f"UNet step {times['torch'] / times['unet']:.2f}")


if __name__ == "__main__":
  sys.argv = expand_preset(sys.argv)   # config_flags reads overrides from sys.argv itself
  app.run(main)
