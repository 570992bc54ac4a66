"""Portable model directories: `--mode=export` writes one, `load_pretrained` reads it.

An export directory holds
  weights.safetensors   the network parameters (EMA by default), names "a/b/c"
  process.safetensors   every array the process samples with (noise statistics:
                        the blue-noise FFT amplitude or Cholesky factor; a cold
                        generation prior; learned schedule values), by tree path
  config.json           the full config
  meta.json             the model signature (process, noise root and digest, model),
                        the checkpoint step, which weights, and the sha256 of each
                        of the three other files
and nothing else: no pickle, no Orbax. The directory may be local or gs://
(bluediff.storage). meta.json is written last and removed first when an export
is replaced, so a reader never takes a half-written export, or a mix of two,
for a good one (locally the whole directory is also written aside and renamed).
`load_pretrained(path)` rebuilds the network and the process skeleton from the
config, puts the exported arrays in (so no statistics are rebuilt or re-fitted)
and returns a sampler:

    model = bluediff.load_pretrained("runs/digits_tv/export")
    images = model.sample(16, seed=0)          # float [16, H, W, C] in [-1, 1]
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import traverse_util

from bluediff import storage

WEIGHTS, PROCESS, CONFIG, META = "weights.safetensors", "process.safetensors", "config.json", "meta.json"
FORMAT = "bluediff-export-v1"


def _path_key(path) -> str:
  return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def process_arrays(process) -> dict[str, np.ndarray]:
  """Every array leaf of a process pytree, by tree path."""
  return {_path_key(p): np.asarray(v) for p, v in jax.tree_util.tree_leaves_with_path(process)}


def export(config, workdir: str, out_dir: str = "", step: int | None = None,
           use_ema: bool = True) -> str:
  """Writes the export directory (default <workdir>/export) from the run's checkpoint."""
  from safetensors.numpy import save

  from bluediff.sampling import load_params
  from bluediff.experiment import build_experiment
  exp = build_experiment(config)
  params, restored = load_params(exp, workdir, step, use_ema)
  out_dir = str(storage.run_path(out_dir or storage.join(workdir, "export")))
  flat = {"/".join(k): np.asarray(v) for k, v in
          traverse_util.flatten_dict(jax.device_get(params)).items()}
  arrays = process_arrays(jax.device_get(exp.process))
  files = {WEIGHTS: save(flat, metadata={"format": FORMAT}),
           PROCESS: save({k: np.ascontiguousarray(v) for k, v in arrays.items()},
                         metadata={"format": FORMAT}),
           CONFIG: config.to_json_best_effort(indent=2).encode()}
  meta = {"format": FORMAT, "signature": exp.signature, "checkpoint_step": restored,
          "weights": "ema" if use_ema else "raw",
          "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}
  prior = getattr(exp.process, "prior", None)
  if prior is not None:         # its static fields (the arrays are in process.safetensors)
    meta["cold_prior"] = {"kind": prior.kind, "low_res": list(prior.low_res)}
  files[META] = json.dumps(meta, indent=2).encode()
  if jax.process_index() == 0:
    _write_export(out_dir, files)
    print(f"exported step {restored} ({'EMA' if use_ema else 'raw'} weights) to {out_dir}")
  return out_dir


def _write_export(out_dir: str, files: dict[str, bytes]) -> None:
  """Writes the export's files, meta.json last: a reader never sees a partial export."""
  if storage.is_remote(out_dir):
    storage.remove(storage.join(out_dir, META))     # the old export is no longer one
    for name, data in files.items():                # META is the last key
      storage.write_bytes(storage.join(out_dir, name), data)
    return
  tmp = f"{out_dir.rstrip('/')}.tmp{uuid.uuid4().hex[:8]}"
  storage.remove(tmp)
  for name, data in files.items():
    storage.write_bytes(storage.join(tmp, name), data)
  storage.remove(out_dir)
  storage.rename_local(tmp, out_dir)                # never a half-written export under the name


@dataclasses.dataclass
class Pretrained:
  """An exported model: its config, network, process and parameters, and a sampler."""
  config: ml_collections.ConfigDict
  model: object
  process: object
  params: dict
  meta: dict

  @property
  def image_shape(self) -> tuple[int, int, int]:
    from bluediff.data.sources import dataset_spec
    size = self.config.data.image_size
    return (size, size, dataset_spec(self.config.data.dataset).channels)

  def sample(self, num: int, seed: int = 0, method: str | None = None,
             num_steps: int | None = None, cond=None, key=None) -> jax.Array:
    """Images [num, H, W, C] in [-1, 1]; key defaults to jax.random.key(seed)."""
    sc = self.config.sampling
    method, num_steps = method or sc.method, num_steps or sc.num_steps
    key = jax.random.key(seed) if key is None else key
    fn = _jitted_sampler(self.model, (num, *self.image_shape), method, num_steps)
    return fn(self.process, self.params, key, cond)


_SAMPLERS: dict = {}


def _jitted_sampler(model, shape, method, num_steps):
  k = (id(model), shape, method, num_steps)
  if k not in _SAMPLERS:
    def sample(process, params, key, cond):
      net = lambda x, t: model.apply({"params": params}, x, t)   # noqa: E731
      return process.sample(net, key, shape, method=method, num_steps=num_steps, cond=cond)
    _SAMPLERS[k] = jax.jit(sample)
  return _SAMPLERS[k]


def _skeleton_process(config):
  """The process a config builds, without building noise statistics or fitting priors:
  their arrays are placeholders replaced by the exported ones."""
  from bluediff import noise as noise_lib
  from bluediff.processes import build_process
  orig = noise_lib.build_noise

  def placeholder_noise(noise_config, image_size):
    if noise_config.kind == "blue":
      if noise_config.root == "fft":
        return noise_lib.SpectralNoise(jnp.zeros((image_size, image_size // 2 + 1)), image_size)
      tile = min(image_size, 64)
      return noise_lib.CholeskyNoise(jnp.zeros((tile * tile, tile * tile)), tile)
    return orig(noise_config, image_size)

  import bluediff.processes as processes_pkg
  processes_pkg.build_noise = placeholder_noise
  try:
    process = build_process(config)
  finally:
    processes_pkg.build_noise = orig
  return process


def load_pretrained(path: str, overrides: dict | None = None) -> Pretrained:
  """Reads an export directory (see module doc). Needs neither Orbax nor the training code.

  overrides: config fields to change, e.g. {"process.ddim_eta": 1.0} or
  {"sampling.num_steps": 50}. Sampling-only fields are free; one that changes what
  the network means (bluediff.signature) is refused with one line naming it.
  """
  from safetensors.numpy import load

  from bluediff import signature as signature_lib
  from bluediff.checkpoint import CheckpointMismatchError
  from bluediff.config import config_from_dict
  from bluediff.models import build_model
  path = str(storage.run_path(path))
  if not storage.isfile(storage.join(path, META)):
    raise FileNotFoundError(f"{path} is not a bluediff export: {META} is missing "
                            f"(make one with --mode=export)")
  meta = json.loads(storage.read_bytes(storage.join(path, META)))
  blobs = {}
  for name in (WEIGHTS, PROCESS, CONFIG):
    if not storage.isfile(storage.join(path, name)):
      raise FileNotFoundError(f"{path} is not a bluediff export: {name} is missing "
                              f"(make one with --mode=export)")
    blobs[name] = storage.read_bytes(storage.join(path, name))
    want = meta.get("sha256", {}).get(name)     # exports before issue 18 have no hashes
    if want and hashlib.sha256(blobs[name]).hexdigest() != want:
      raise CheckpointMismatchError(f"export {path}: {name} does not match the hash in "
                                    f"{META} (damaged, or from another export)")
  trained = json.loads(blobs[CONFIG])
  config = config_from_dict(trained, overrides)
  if "signature" not in meta:
    raise CheckpointMismatchError(f"export {path}: meta.json has no signature (not a bluediff export)")
  process = _skeleton_process(config)
  saved = meta["signature"]
  current = signature_lib.model_signature(config, saved.get("noise_digest", ""),
                                          getattr(process, "time_scale", None))
  problem = signature_lib.mismatch(saved, current, trained_config=trained)
  if problem:
    raise CheckpointMismatchError(f"export {path} does not fit this config: {problem}")
  if signature_lib.is_legacy(saved):
    print(f"warning: export {path} predates recorded process fields; they were checked "
          f"against its config.json")
  arrays = load(blobs[PROCESS])
  if "cold_prior" in meta:      # a fitted prior: rebuilt from its arrays and static fields
    from bluediff.processes.cold_prior import MixturePrior
    from bluediff.processes.cold_prior import symmetry_std_of
    p = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("prior/")}
    arrays = {k: v for k, v in arrays.items() if not k.startswith("prior/symmetry_")}
    arrays["prior/symmetry_std"] = np.asarray(symmetry_std_of(p), np.float32)   # any export's form
    process = process.replace(prior=MixturePrior(
        jnp.asarray(p["log_weights"]), jnp.asarray(p["means"]), jnp.asarray(p["chols"]),
        jnp.asarray(arrays["prior/symmetry_std"]), meta["cold_prior"]["kind"],
        tuple(meta["cold_prior"]["low_res"])))
  leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(process)
  keys = [_path_key(p) for p, _ in leaves_with_path]
  if set(keys) != set(arrays):
    raise ValueError(f"{path}: exported process arrays {sorted(arrays)} do not fit the config's "
                     f"process {sorted(keys)}")
  process = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(arrays[k]) for k in keys])
  if getattr(process, "noise", None) is not None and hasattr(process.noise, "digest"):
    digest = meta["signature"].get("noise_digest", "").split(":")[-1]
    process = process.replace(noise=process.noise.replace(digest=digest))
  flat = load(blobs[WEIGHTS])
  params = traverse_util.unflatten_dict({tuple(k.split("/")): jnp.asarray(v) for k, v in flat.items()})
  from bluediff.data.sources import dataset_spec
  channels = dataset_spec(config.data.dataset).channels
  model = build_model(config.model, process.output_channels(channels))
  return Pretrained(config, model, process, params, meta)
