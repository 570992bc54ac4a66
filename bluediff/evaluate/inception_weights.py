"""FID Inception weights: a one-time conversion, then safetensors only.

Convert the standard pytorch-fid file once (needs PyTorch, CPU build is enough;
it is read with `torch.load(weights_only=True)`, which refuses arbitrary pickles):

    python -m bluediff.evaluate.inception_weights \\
        --from_pytorch=pt_inception-2015-12-05-6726825d.pth

The runtime reads only the converted safetensors file (never a pickle), from
`config.eval.inception_weights`, else $BLUEDIFF_INCEPTION_WEIGHTS, else
`<cache>/fid_inception_v3.safetensors`. Nothing is downloaded.
"""
from __future__ import annotations

import argparse
import hashlib
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from bluediff import storage
from bluediff.cache import cache_dir
from bluediff.evaluate.inception import RESOLUTION, FIDInceptionV3

ENV_VAR = "BLUEDIFF_INCEPTION_WEIGHTS"
DEFAULT_NAME = "fid_inception_v3.safetensors"
PYTORCH_FILE = "pt_inception-2015-12-05-6726825d.pth"

# PyTorch parameter suffix -> (Flax leaf name, array transform)
_LEAF = {
    "conv.weight": ("conv/kernel", lambda w: w.transpose(2, 3, 1, 0)),   # OIHW -> HWIO
    "bn.weight": ("bn_scale", None),
    "bn.bias": ("bn_bias", None),
    "bn.running_mean": ("bn_mean", None),
    "bn.running_var": ("bn_var", None),
    "fc.weight": ("fc/kernel", lambda w: w.T),
    "fc.bias": ("fc/bias", None),
}


class InceptionWeightsError(FileNotFoundError):
  """The converted weights are missing or do not fit the network."""


def weights_path(configured: str = "") -> str:
  return configured or os.environ.get(ENV_VAR) or cache_dir(DEFAULT_NAME)


@functools.cache
def param_shapes() -> dict[str, tuple[int, ...]]:
  """'Mixed_5b/branch1x1/conv/kernel' -> shape, for every parameter of the network."""
  x = jax.ShapeDtypeStruct((1, RESOLUTION, RESOLUTION, 3), jnp.float32)
  tree = jax.eval_shape(FIDInceptionV3().init, jax.random.key(0), x)["params"]
  return {"/".join(k): tuple(v.shape) for k, v in traverse_util.flatten_dict(tree).items()}


def from_torch_state_dict(state_dict) -> dict[str, np.ndarray]:
  """A pytorch-fid state dict (name -> tensor or array) -> flat Flax arrays (float32)."""
  flat = {}
  for name, value in state_dict.items():
    if name.endswith("num_batches_tracked") or name.startswith("AuxLogits"):
      continue
    arr = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value,
                     np.float32)
    for suffix, (leaf, transform) in _LEAF.items():
      if name == suffix or name.endswith("." + suffix):
        module = name[:-len(suffix)].rstrip(".").replace(".", "/")
        key = f"{module}/{leaf}" if module else leaf
        flat[key] = np.ascontiguousarray(transform(arr) if transform else arr)
        break
    else:
      raise ValueError(f"unexpected parameter {name!r} in the PyTorch FID state dict")
  check_flat(flat, "the PyTorch state dict")
  return flat


def check_flat(flat: dict, where: str) -> None:
  expected = param_shapes()
  missing = sorted(set(expected) - set(flat))
  extra = sorted(set(flat) - set(expected))
  wrong = [k for k in expected if k in flat and tuple(flat[k].shape) != expected[k]]
  if missing or extra or wrong:
    raise InceptionWeightsError(
        f"{where} is not the FID Inception-v3: missing {missing[:3]}, unexpected {extra[:3]}, "
        f"wrong shapes {[(k, flat[k].shape, expected[k]) for k in wrong[:3]]}")


def convert_pytorch(src: str, dst: str) -> str:
  """pytorch-fid .pth -> safetensors (Flax names and layouts). Returns dst."""
  try:
    import torch
  except ImportError:
    raise SystemExit("converting needs PyTorch once (a CPU build is enough): pip install torch; "
                     "or convert on another machine and copy the .safetensors file") from None
  from safetensors.numpy import save
  state = torch.load(src, map_location="cpu", weights_only=True)   # a local file: torch reads it
  flat = from_torch_state_dict(state)
  storage.write_bytes(dst, save(flat, metadata={"source": storage.basename(src),
                                                "format": "bluediff-fid-inception-v1"}))
  return dst


def _missing_message(path: str) -> str:
  return (f"FID Inception weights not found at {path}. Convert the pytorch-fid weights once: "
          f"python -m bluediff.evaluate.inception_weights --from_pytorch=<path to {PYTORCH_FILE}> "
          f"--out={path} (or set config.eval.inception_weights / ${ENV_VAR})")


def require_weights(configured: str = "") -> str:
  """The weights path, or one line saying how to make the file (checked before any compile)."""
  path = weights_path(configured)
  if not storage.isfile(path):
    raise InceptionWeightsError(_missing_message(path))
  return path


def load_params(configured: str = "") -> tuple[dict, str]:
  """(Flax params, sha256 of the weights file) from the converted safetensors file."""
  from safetensors import SafetensorError
  from safetensors.numpy import load
  path = require_weights(configured)
  blob = storage.read_bytes(path)
  try:
    flat = load(blob)
  except (SafetensorError, OSError) as e:
    raise InceptionWeightsError(f"{path} is not a readable safetensors file ({e}); "
                                f"convert it again") from None
  check_flat(flat, path)
  params = traverse_util.unflatten_dict({tuple(k.split("/")): jnp.asarray(v)
                                         for k, v in flat.items()})
  return params, hashlib.sha256(blob).hexdigest()


def main(argv=None):
  ap = argparse.ArgumentParser(description="Convert the pytorch-fid Inception weights to safetensors.")
  ap.add_argument("--from_pytorch", required=True, help=f"path to {PYTORCH_FILE}")
  ap.add_argument("--out", default="", help=f"output file (default: {weights_path()})")
  args = ap.parse_args(argv)
  if not storage.isfile(args.from_pytorch):
    raise SystemExit(f"error: {args.from_pytorch} does not exist")
  dst = convert_pytorch(args.from_pytorch, args.out or weights_path())
  print(f"wrote {dst} (sha256 {storage.sha256(dst)[:16]}...)")


if __name__ == "__main__":
  main()
