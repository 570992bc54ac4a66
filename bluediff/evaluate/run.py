"""mode=evaluate: score a run (sampling with the fixed protocol) or a samples.npz."""
from __future__ import annotations

import json
import os

import numpy as np

from bluediff.sampling import generate, load_params
from bluediff.train import build_experiment


def load_samples(path: str, image_shape) -> np.ndarray:
  """images uint8 [N, H, W, C] from a samples.npz, checked against the config."""
  with np.load(path, allow_pickle=False) as f:
    if "images" not in f.files:
      raise ValueError(f"{path} has no 'images' array (it has {f.files})")
    images = f["images"]
  if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != tuple(image_shape):
    raise ValueError(f"{path}: expected images uint8 [N, {', '.join(map(str, image_shape))}], "
                     f"got {images.dtype} {list(images.shape)}")
  return images


def protocol(config) -> dict:
  """The fixed evaluation protocol, printed and stored with the metrics."""
  return {"num_samples": config.eval.num_samples, "seed": config.eval.seed,
          "sampler": config.sampling.method, "num_steps": config.sampling.num_steps,
          "weights": "ema" if config.sampling.use_ema else "raw",
          "metrics": list(config.eval.metrics)}


def run_evaluate(config, workdir: str, samples_path: str = "", step: int | None = None) -> dict:
  """Computes config.eval.metrics; writes <workdir>/metrics.json. Returns it."""
  exp = build_experiment(config)
  proto = protocol(config)
  if samples_path:
    images = load_samples(samples_path, exp.image_shape)
    proto["source"] = os.path.abspath(samples_path)
  else:
    print("evaluation protocol: " + json.dumps(proto))
    params, restored = load_params(exp, workdir, step, config.sampling.use_ema)
    proto["checkpoint_step"] = restored
    images = generate(exp, params, config.eval.num_samples, config.eval.seed)
  results = {"protocol": proto}
  for name in config.eval.metrics:
    if name == "digits":
      from bluediff.evaluate.digits_judge import evaluate_digits
      report = evaluate_digits(images, config.data.image_size, config.data.data_dir)
      print(report.summary())
      results["digits"] = report.as_dict()
    else:
      raise ValueError(f"config.eval.metrics: {name!r} is unknown; choose from ['digits']")
  if exp.is_chief:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "metrics.json"), "w") as f:
      json.dump(results, f, indent=2)
  return results
