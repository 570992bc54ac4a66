"""3x3 convolution forward + backward on XLA:CPU: lowerings x XLA flag sets.

  python benchmarks/conv_lowering.py [--batch=32 --size=32 --channels=64]

The issue's micro-benchmark (64 channels, 32x32, batch 32): XLA:CPU reached
about half of PyTorch's throughput on 3x3 convolutions. This prints images/s
and GFLOP/s (direct-convolution FLOPs, so Winograd's is an effective rate) for
four lowerings -- XLA's convolution, im2col (9 shifted views concatenated, one
matrix product: `bluediff.models.conv.conv_im2col`, kept only for tiny maps),
and Winograd F(4x4, 3x3) / F(2x2, 3x3) (`bluediff.models.winograd`, what
bluediff runs on the CPU; see BUILD_NOTES.md) -- under each XLA:CPU flag set (each in its own process, since XLA reads
XLA_FLAGS once; bluediff's own default flag is switched off so that "default"
means XLA's), and PyTorch's when it is installed.
"""
import argparse
import json
import os
import subprocess
import sys

FLAG_SETS = {
    "default": "",
    "onednn": "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true",
    "xnn graph": "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY",
    "ynn dot": "--xla_cpu_experimental_ynn_fusion_type=dot",
    "ynn dot+reduce": "--xla_cpu_experimental_ynn_fusion_type=dot,reduce",
    "ynn all": "--xla_cpu_experimental_ynn_fusion_type=dot,eltwise,reduce",
}


def measure_jax(impl: str, batch: int, size: int, channels: int) -> dict:
  import jax
  import jax.numpy as jnp

  from timing import best_seconds

  from bluediff.models.conv import conv_im2col
  from bluediff.models.winograd import winograd_conv3x3

  def conv3x3(x, w, impl):
    if impl == "xla":
      return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                          dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if impl.startswith("winograd"):     # winograd = F(4x4, 3x3), winograd2 = F(2x2, 3x3)
      return winograd_conv3x3(x, w, 2 if impl == "winograd2" else 4)
    return conv_im2col(x, w)

  x = jax.random.normal(jax.random.key(0), (batch, size, size, channels))
  w = jax.random.normal(jax.random.key(1), (3, 3, channels, channels)) * 0.05

  @jax.jit
  def fwd_bwd(x, w):
    return jax.grad(lambda x, w: jnp.sum(conv3x3(x, w, impl=impl) ** 2), argnums=(0, 1))(x, w)

  seconds = best_seconds(lambda: jax.block_until_ready(fwd_bwd(x, w)), iters=10)
  return {"seconds": seconds}


def measure_torch(batch: int, size: int, channels: int) -> dict:
  import torch

  from timing import best_seconds
  torch.manual_seed(0)
  x = torch.randn(batch, channels, size, size, requires_grad=True)
  conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)

  def step():
    x.grad, conv.weight.grad = None, None
    (conv(x) ** 2).sum().backward()

  return {"seconds": best_seconds(step, iters=10)}


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--batch", type=int, default=32)
  ap.add_argument("--size", type=int, default=32)
  ap.add_argument("--channels", type=int, default=64)
  ap.add_argument("--impls", default="xla,im2col,winograd,winograd2")
  ap.add_argument("--flag_sets", default=",".join(FLAG_SETS))
  ap.add_argument("--child", default="")  # internal: "impl" or "torch"
  args = ap.parse_args()
  shape = (args.batch, args.size, args.channels)
  if args.child:
    out = (measure_torch(*shape) if args.child == "torch" else measure_jax(args.child, *shape))
    print(json.dumps(out))
    return
  # fwd + bwd = 3 convolutions of 2 * 9 * C^2 FLOPs per output pixel each.
  gflop = 3 * 2 * 9 * args.channels**2 * args.size**2 * args.batch / 1e9
  here = os.path.dirname(os.path.abspath(__file__))
  env0 = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.path.dirname(here)]),
          "BLUEDIFF_XLA_CPU_FLAGS": ""}

  def child(kind: str, flags: str) -> dict | None:
    env = {**env0, "XLA_FLAGS": (env0.get("XLA_FLAGS", "") + " " + flags).strip()}
    cmd = [sys.executable, __file__, f"--child={kind}", f"--batch={args.batch}",
           f"--size={args.size}", f"--channels={args.channels}"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode:
      print(f"  ({kind} with {flags or 'no flags'} failed: {r.stderr.strip().splitlines()[-1]})")
      return None
    return json.loads(r.stdout.strip().splitlines()[-1])

  print(f"3x3 conv fwd+bwd, batch {args.batch}, {args.size}x{args.size}, {args.channels} -> "
        f"{args.channels} channels ({gflop:.2f} GFLOP per step)\n")
  print("| lowering | XLA flags | ms | images/s | GFLOP/s |\n|---|---|---|---|---|")
  rows = []
  for flag_name in args.flag_sets.split(","):
    for impl in args.impls.split(","):
      rows.append((impl, flag_name, child(impl, FLAG_SETS[flag_name])))
  try:
    import torch  # noqa: F401
    rows.append(("pytorch", "-", child("torch", "")))
  except ImportError:
    pass
  for impl, flag_name, r in rows:
    if r:
      s = r["seconds"]
      print(f"| {impl} | {flag_name} | {s * 1e3:.1f} | {args.batch / s:.1f} | {gflop / s:.0f} |")


if __name__ == "__main__":
  main()
