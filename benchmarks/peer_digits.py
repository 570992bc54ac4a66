"""The embedded default beside the IADB reference recipe, same wall budget, same machine, same judge.

    pip install -e '.[bench]'
    python benchmarks/peer_digits.py --budget_s=480 --out=runs/peer

The peer is the reference recipe of IADB (tchambon/IADB, `iadb.py`): a diffusers
`UNet2DModel` of about 1M parameters fed alpha in [0, 1] as its timestep, Adam at
1e-4, batch 64, the loss |D(x_alpha, alpha) - (x1 - x0)|^2 with
x_alpha = alpha x1 + (1 - alpha) x0 (x0 noise, x1 a digit), and Euler sampling
with 128 steps. It trains in PyTorch on the CPU for --budget_s seconds of wall
clock (from its first step). Then bluediff's default (`configs/digits.py`) trains
in this process's shadow, one after the other, with `training.time_budget_s` set
to the same budget (it stops earlier if its num_steps end first). Both sample
1000 digits and are scored by the same judges (`bluediff.evaluate.digits_judge`,
the kernel judge). One table: steps, images seen, steps/s, confident, class
range, Frechet ratio, copy rate, the kernel judge's confident share.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from bluediff.data.sources import load_split, to_uint8
from bluediff.evaluate import digits_judge as dj
from bluediff.evaluate.digits_kernel_judge import evaluate_kernel

BATCH = 64
LR = 1e-4
SAMPLE_STEPS = 128


def peer_unet():
  """diffusers UNet2DModel on 16x16x1, ~1M parameters (the IADB reference's model family)."""
  import torch
  from diffusers import UNet2DModel
  torch.manual_seed(0)
  return UNet2DModel(sample_size=16, in_channels=1, out_channels=1, layers_per_block=2,
                     block_out_channels=(16, 32, 64),
                     down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                     up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                     norm_num_groups=8)


def train_peer(budget_s: float, seed: int, num_samples: int) -> dict:
  import torch
  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(seed)
  x_tr, _ = load_split("digits", "train", 16)
  data = torch.from_numpy(np.ascontiguousarray(x_tr.transpose(0, 3, 1, 2)))  # NCHW in [-1, 1]
  model = peer_unet()
  params = sum(p.numel() for p in model.parameters())
  opt = torch.optim.Adam(model.parameters(), lr=LR)
  gen = torch.Generator().manual_seed(seed)
  steps, began = 0, time.perf_counter()
  while time.perf_counter() - began < budget_s:
    x1 = data[torch.randint(len(data), (BATCH,), generator=gen)]
    x0 = torch.randn(x1.shape, generator=gen)
    alpha = torch.rand(BATCH, generator=gen)
    x_alpha = alpha.view(-1, 1, 1, 1) * x1 + (1 - alpha.view(-1, 1, 1, 1)) * x0
    d = model(x_alpha, alpha).sample
    loss = torch.sum((d - (x1 - x0)) ** 2)
    opt.zero_grad()
    loss.backward()
    opt.step()
    steps += 1
  train_s = time.perf_counter() - began
  model.eval()
  t = time.perf_counter()
  images = []
  with torch.no_grad():
    sgen = torch.Generator().manual_seed(1234)
    for start in range(0, num_samples, 500):
      n = min(500, num_samples - start)
      x = torch.randn((n, 1, 16, 16), generator=sgen)
      for k in range(SAMPLE_STEPS):
        a0, a1 = k / SAMPLE_STEPS, (k + 1) / SAMPLE_STEPS
        x = x + (a1 - a0) * model(x, torch.full((n,), a0)).sample
      images.append(x.numpy().transpose(0, 2, 3, 1))
  return {"arm": f"IADB reference recipe (PyTorch, diffusers UNet2DModel {params / 1e6:.2f}M, "
                 f"Adam 1e-4, Euler {SAMPLE_STEPS})",
          "steps": steps, "images_seen": steps * BATCH, "train_s": train_s,
          "steps_per_s": steps / train_s, "sample_s": time.perf_counter() - t,
          "images": to_uint8(np.concatenate(images))}


def train_bluediff(budget_s: float, seed: int, workdir: str, overrides: list[str],
                   num_samples: int) -> dict:
  base = [sys.executable, "-m", "bluediff.main", "--config=configs/digits.py",
          f"--workdir={workdir}", f"--config.seed={seed}",
          f"--config.eval.num_samples={num_samples}", *overrides]
  t = time.perf_counter()
  subprocess.run(base + [f"--config.training.time_budget_s={budget_s}"], check=True)
  process_s = time.perf_counter() - t
  subprocess.run(base + ["--mode=evaluate", "--config.eval.metrics=('digits',)"], check=True)
  with open(os.path.join(workdir, "metrics.json")) as f:
    m = json.load(f)
  step = m["provenance"]["checkpoint_step"]
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  sps = [r["steps_per_sec"] for r in rows if "steps_per_sec" in r]
  tag = [d for d in os.listdir(os.path.join(workdir, "eval")) if d.startswith(f"step{step}-")][0]
  with np.load(os.path.join(workdir, "eval", tag, "samples.npz")) as f:
    images = f["images"]
  return {"arm": "bluediff default (configs/digits.py" + (", " + " ".join(overrides) if overrides else "")
                 + ")",
          "steps": step, "images_seen": step * 64, "train_s": process_s,
          "steps_per_s": float(np.median(sps)) if sps else float("nan"), "images": images}


def score(row: dict) -> dict:
  r = dj.evaluate_digits(row["images"], 16)
  k = evaluate_kernel(row["images"], 16)
  return {**row, "confident": r.confident_share, "class_min": min(r.class_shares),
          "class_max": max(r.class_shares), "frechet_ratio": r.frechet_ratio,
          "copy_rate": r.copy_rate, "kernel_confident": k["confident"],
          "kernel_frechet_ratio": k["frechet_ratio"], "verdict": r.verdict()}


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--budget_s", type=float, default=480.0)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--out", default="runs/peer")
  ap.add_argument("--bluediff_overrides", default="", help="space-separated --config.* flags")
  ap.add_argument("--num_samples", type=int, default=1000)
  args = ap.parse_args()
  os.makedirs(args.out, exist_ok=True)
  print(dj.get_judge(16).summary())
  peer = train_peer(args.budget_s, args.seed, args.num_samples)
  np.savez_compressed(os.path.join(args.out, "peer_samples.npz"), images=peer["images"])
  ours = train_bluediff(args.budget_s, args.seed, os.path.join(args.out, f"bluediff-s{args.seed}"),
                        args.bluediff_overrides.split(), args.num_samples)
  rows = [score(peer), score(ours)]
  lines = [f"peer_digits.py --budget_s={args.budget_s:g} --seed={args.seed} "
           f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, digits judge "
           f"v{dj.JUDGE_VERSION}); wall s: the training process (bluediff: data, "
           f"compilation and checkpoints included; the peer: its loop)", "",
           "| arm | steps | images seen | steps/s | wall s | confident | classes | "
           "Frechet ratio | copy rate | kernel confident | kernel Frechet |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['arm']} | {r['steps']} | {r['images_seen']} | {r['steps_per_s']:.2f} | "
                 f"{r['train_s']:.0f} | {r['confident']:.3f} | [{r['class_min']:.3f}, "
                 f"{r['class_max']:.3f}] | {r['frechet_ratio']:.2f} | {r['copy_rate']:.3f} | "
                 f"{r['kernel_confident']:.3f} | {r['kernel_frechet_ratio']:.2f} |")
  table = "\n".join(lines)
  print(table)
  for r in rows:
    print(f"{r['arm']}: {r['verdict']}")
  with open(os.path.join(args.out, "table.md"), "w") as f:
    f.write(table + "\n")


if __name__ == "__main__":
  main()
