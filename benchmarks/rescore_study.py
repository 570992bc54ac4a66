"""Re-score a study's committed samples with today's digits judges, without retraining.

    python benchmarks/rescore_study.py docs/studies/blue
    python benchmarks/rescore_study.py docs/studies/blur --order="blur_diffusion,DDPM_twin"

Reads every `<variant>-s<seed>.npz` (what `digits_study.py --keep_samples` writes:
uint8 [N, 16, 16, 1] under "images"), scores it with the calibrated judge, the
kernel judge and the radial spectrum against the training split, and prints one
markdown row per variant (mean +- std over seeds) plus the per-seed values.
"""
from __future__ import annotations

import argparse
import collections
import glob
import os
import re

import numpy as np

from bluediff import storage
from bluediff.evaluate import digits_judge as dj
from bluediff.evaluate.digits_kernel_judge import KERNEL_VERSION, evaluate_kernel
from bluediff.evaluate.features import load_reference_images
from bluediff.evaluate.spectra import spectral_log_error


def score_file(path: str, image_size: int) -> dict:
  images = storage.load_npz(path)["images"]
  r = dj.evaluate_digits(images, image_size)
  k = evaluate_kernel(images, image_size)
  reference = load_reference_images("digits", "train", image_size, 0, "", limit=len(images))
  return {"confident": r.confident_share, "frechet_ratio": r.frechet_ratio,
          "copy_rate": r.copy_rate, "class_min": min(r.class_shares),
          "class_max": max(r.class_shares), "kernel_confident": k["confident"],
          "kernel_frechet_ratio": k["frechet_ratio"],
          "spectral_log_error": spectral_log_error(images, reference), "passes": r.passes}


COLUMNS = ("confident", "frechet_ratio", "copy_rate", "class_min", "class_max",
           "kernel_confident", "kernel_frechet_ratio", "spectral_log_error")


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("folder")
  ap.add_argument("--image_size", type=int, default=16)
  ap.add_argument("--order", default="", help="comma-separated variant slugs, in table order")
  args = ap.parse_args()
  by_variant = collections.defaultdict(dict)
  for path in sorted(glob.glob(os.path.join(args.folder, "*-s*.npz"))):
    m = re.fullmatch(r"(.+)-s(\d+)\.npz", os.path.basename(path))
    if m:
      by_variant[m.group(1)][int(m.group(2))] = score_file(path, args.image_size)
  order = [v for v in args.order.split(",") if v in by_variant] or sorted(by_variant)
  order += [v for v in sorted(by_variant) if v not in order]
  print(f"{args.folder}: digits judge v{dj.JUDGE_VERSION}, kernel judge v{KERNEL_VERSION}, "
        "mean +- std over seeds")
  print("| variant | seeds | " + " | ".join(COLUMNS) + " | passes |")
  print("|---" * (len(COLUMNS) + 3) + "|")
  for v in order:
    rows = [by_variant[v][s] for s in sorted(by_variant[v])]
    cells = [f"{np.mean([r[c] for r in rows]):.3f} +- {np.std([r[c] for r in rows]):.3f}"
             for c in COLUMNS]
    passes = sum(r["passes"] for r in rows)
    print(f"| {v} | {len(rows)} | " + " | ".join(cells) + f" | {passes}/{len(rows)} |")
  print()
  for v in order:
    for s in sorted(by_variant[v]):
      r = by_variant[v][s]
      print(f"{v} s{s}: " + ", ".join(f"{c} {r[c]:.3f}" for c in COLUMNS))


if __name__ == "__main__":
  main()
