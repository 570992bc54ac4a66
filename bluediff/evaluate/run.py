"""mode=evaluate: score a run (sampling with the fixed protocol) or a samples.npz.

Every metric is a function `(EvalContext) -> {name: scalar}` in `METRICS`,
chosen by `config.eval.metrics`; expensive shared work (Inception features,
reference features) is computed once per evaluation by the context.

Outputs, for a run directory:
  <workdir>/eval/<tag>/metrics.json, report.md, samples_grid.png, spectra.png
  <workdir>/metrics.json          the latest evaluation (same content)
  <workdir>/evaluations.jsonl     one line per evaluation: what `bluediff.compare` reads
where <tag> = step<S>-<sampler><steps> (or samples-<file> for --samples).
"""
from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import time
import zipfile
from typing import Callable

import jax
import numpy as np

from bluediff import storage
from bluediff.config import ConfigError
from bluediff.data.sources import check_prepared, to_uint8
from bluediff.images import save_grid
from bluediff.sampling import generate, load_params, restore
from bluediff.experiment import Experiment, build_experiment

INCEPTION_METRICS = ("fid", "kid", "precision_recall", "inception_score")
MIN_REFERENCE = 10_000   # fewer reference images: a rank-deficient 2048-d covariance


def load_samples(path: str, image_shape) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """(images uint8 [N, H, W, C] checked against the config, the file's other arrays)
  from a samples.npz, read once."""
  if not storage.isfile(path):
    raise FileNotFoundError(f"--samples={path} does not exist")
  not_npz = ConfigError(f"--samples={path} is not an .npz file (mode=sample writes one: "
                        f"np.savez with an 'images' array)")
  try:   # np.load reads any other file as a pickle, which allow_pickle=False refuses
    f = np.load(io.BytesIO(storage.read_bytes(path)), allow_pickle=False)
  except (ValueError, OSError, EOFError, zipfile.BadZipFile):
    raise not_npz from None
  if not isinstance(f, np.lib.npyio.NpzFile):   # a bare .npy array
    raise not_npz
  with f:
    if "images" not in f.files:
      raise ConfigError(f"{path} has no 'images' array (it has {f.files})")
    try:
      arrays = {k: f[k] for k in f.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:   # a damaged member
      raise ConfigError(f"--samples={path}: cannot read its arrays ({type(e).__name__})") from None
  images = arrays.pop("images")
  if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != tuple(image_shape):
    raise ConfigError(f"--samples={path}: expected images uint8 [N, {', '.join(map(str, image_shape))}], "
                     f"got {images.dtype} {list(images.shape)}")
  return images, arrays


def protocol(config, conditional: bool, num_steps: int | None = None) -> dict:
  """The fixed evaluation protocol, printed and stored with the metrics."""
  return {"num_samples": config.eval.num_samples, "seed": config.eval.seed,
          "sampler": config.sampling.method,
          "num_steps": num_steps or config.sampling.num_steps,
          "weights": "ema" if config.sampling.use_ema else "raw",
          "metrics": list(config.eval.metrics),
          "reference": f"{config.data.dataset}/{reference_split(config, conditional)}"}


def reference_split(config, conditional: bool) -> str:
  """The split the reference statistics come from: eval.reference_split, else the
  training split for generation (as the papers' FIDs: a held-out split is often a few
  hundred images) and the held-out split a conditional process restores."""
  if config.eval.reference_split:
    return config.eval.reference_split
  return config.data.eval_split if conditional else config.data.train_split


def warn_small_reference(count: int, name: str) -> None:
  """One printed line when the reference holds fewer than MIN_REFERENCE images."""
  if count < MIN_REFERENCE:
    print(f"warning: the FID/KID reference {name} holds {count} images (< {MIN_REFERENCE}): "
          f"its 2048-d covariance is rank-deficient and the scores are not comparable "
          f"with published ones")


@dataclasses.dataclass
class EvalContext:
  """What metrics share: the samples, the config and lazily computed features."""
  config: object
  exp: Experiment
  images: np.ndarray            # uint8 [N, H, W, C]
  outdir: str
  plots: dict = dataclasses.field(default_factory=dict)   # caption -> png path
  references: np.ndarray | None = None     # conditional processes: the clean held-out images
  observations: np.ndarray | None = None   # ... and what the process restored them from
  other_restorations: dict = dataclasses.field(default_factory=dict)   # e.g. {"direct": uint8}
  params: dict | None = None               # the sampling weights, when the run was sampled here
  reference_info: dict = dataclasses.field(default_factory=dict)   # split, count: once features exist

  @functools.cached_property
  def inception(self):
    from bluediff.evaluate.features import InceptionFeatures
    from bluediff.evaluate.inception_weights import load_params as load_inception
    params, digest = load_inception(self.config.eval.inception_weights)
    return InceptionFeatures(params, digest, self.exp.mesh, self.config.eval.inception_batch)

  @functools.cached_property
  def sample_outputs(self) -> tuple[np.ndarray, np.ndarray]:
    return self.inception(self.images, desc="inception samples")

  @property
  def ref_split(self) -> str:
    return reference_split(self.config, self.exp.process.conditional)

  @functools.cached_property
  def reference_features(self) -> np.ndarray:
    """Inception features [M, 2048] of the reference; records its split and size in
    `reference_info` (stored in the protocol) and warns when M < MIN_REFERENCE."""
    from bluediff.evaluate.features import reference_features
    c = self.config
    feats = reference_features(self.inception, c.data.dataset, self.ref_split,
                               c.data.image_size, c.eval.reference_samples, c.data.data_dir)
    self.reference_info = {"reference_split": self.ref_split, "reference_count": len(feats)}
    if self.exp.is_chief:
      warn_small_reference(len(feats), f"{c.data.dataset}/{self.ref_split}")
    return feats

  @functools.cached_property
  def reference_images(self) -> np.ndarray:
    """uint8 reference images (the FID reference subset, at most as many as samples)."""
    from bluediff.evaluate.features import load_reference_images
    c = self.config
    return load_reference_images(c.data.dataset, self.ref_split, c.data.image_size,
                                 c.eval.reference_samples, c.data.data_dir, limit=len(self.images))


def _digits(ctx: EvalContext) -> dict:
  """Both digits judges (the calibrated CNN ensemble and the kernel judge on 8x8
  means), the copy rate, and one verdict line against the default's targets."""
  from bluediff.evaluate import digits_judge as dj
  from bluediff.evaluate.digits_kernel_judge import KERNEL_VERSION, evaluate_kernel
  c = ctx.config
  judge = dj.get_judge(c.data.image_size, c.data.data_dir)
  print(judge.summary())
  report = dj.evaluate_digits(ctx.images, c.data.image_size, c.data.data_dir)
  kernel = evaluate_kernel(ctx.images, c.data.image_size, c.data.data_dir)
  print(report.summary())
  print(f"kernel judge v{KERNEL_VERSION} (8x8 means): {kernel['confident']:.1%} confident, "
        f"classes [{min(kernel['class_shares']):.1%}, {max(kernel['class_shares']):.1%}], "
        f"Frechet {kernel['frechet_ratio']:.2f}x")
  ctx.reference_info["digits_judge_version"] = dj.JUDGE_VERSION
  ctx.reference_info["digits_kernel_judge_version"] = KERNEL_VERSION
  return {"digits_confident": report.confident_share, "digits_frechet": report.frechet,
          "digits_frechet_ratio": report.frechet_ratio, "digits_passes": report.passes,
          "digits_min_class_share": min(report.class_shares),
          "digits_max_class_share": max(report.class_shares),
          "digits_copy_rate": report.copy_rate,
          "digits_kernel_confident": kernel["confident"],
          "digits_kernel_min_class_share": min(kernel["class_shares"]),
          "digits_kernel_max_class_share": max(kernel["class_shares"]),
          "digits_kernel_frechet_ratio": kernel["frechet_ratio"]}


def _fid(ctx: EvalContext) -> dict:
  from bluediff.evaluate.frechet import frechet_distance_of
  return {"fid": frechet_distance_of(ctx.sample_outputs[0], ctx.reference_features)}


def _kid(ctx: EvalContext) -> dict:
  from bluediff.evaluate.feature_metrics import kid
  e = ctx.config.eval
  mean, std = kid(ctx.sample_outputs[0], ctx.reference_features, e.kid_subsets, e.kid_subset_size)
  return {"kid": mean, "kid_std": std}   # the spread over subsets (was kid_std_err: std / sqrt(subsets))


def _precision_recall(ctx: EvalContext) -> dict:
  from bluediff.evaluate.feature_metrics import precision_recall
  # precision_recall subsamples the larger set: the k-NN radii depend on the density
  precision, recall = precision_recall(ctx.reference_features, ctx.sample_outputs[0],
                                       ctx.config.eval.pr_k)
  return {"precision": precision, "recall": recall}


def _inception_score(ctx: EvalContext) -> dict:
  from bluediff.evaluate.feature_metrics import inception_score
  mean, std = inception_score(ctx.sample_outputs[1], ctx.config.eval.is_splits)
  return {"is_mean": mean, "is_std": std}


def _spectra(ctx: EvalContext) -> dict:
  """Spectra of samples vs data (and of the run's noise); scalar: mean |log10 ratio|."""
  from bluediff.evaluate.spectra import plot_spectra, spectral_log_error
  real = ctx.reference_images
  to_float = lambda u8: u8.astype(np.float64) / 127.5 - 1.0   # noqa: E731
  curves = {"data": to_float(real), "samples": to_float(ctx.images)}
  shape = (min(len(ctx.images), 256),) + ctx.images.shape[1:]
  for name, field in ctx.exp.process.noise_fields(jax.random.key(ctx.config.eval.seed), shape).items():
    curves[name] = np.asarray(field)
  ctx.plots["power spectra (samples, data, noise)"] = plot_spectra(
      curves, storage.join(ctx.outdir, "spectra.png"))
  return {"spectral_log_error": spectral_log_error(curves["samples"], curves["data"])}


def _restoration(ctx: EvalContext) -> dict:
  """Against the clean references: PSNR / SSIM / RMSE (and, on digits, the judge's
  Frechet distance) of the restorations, of other samplers' restorations (cold
  diffusion's one-shot "direct") and of the observations themselves - the
  shape of cold diffusion's Table 1 (degraded / direct / sampled)."""
  from bluediff.evaluate import image_metrics as im
  if ctx.references is None:
    raise ConfigError("the 'restoration' metric needs a conditional process "
                      "(super-resolution or a cold-diffusion restoration)")
  c = ctx.config
  ref = ctx.references.astype(np.float32) / 127.5 - 1.0
  sets = {"restored": ctx.images, **ctx.other_restorations, "observed": ctx.observations}
  out = {}
  for name, images in sets.items():
    x = images.astype(np.float32) / 127.5 - 1.0
    out[f"psnr_{name}"] = float(np.mean(np.asarray(im.psnr(x, ref))))
    out[f"ssim_{name}"] = float(np.mean(np.asarray(im.ssim(x, ref))))
    out[f"rmse_{name}"] = float(np.mean(np.asarray(im.rmse(x, ref))))
    if c.data.dataset == "digits":
      from bluediff.evaluate.digits_judge import JUDGE_VERSION, evaluate_digits
      ctx.reference_info["digits_judge_version"] = JUDGE_VERSION
      out[f"digits_frechet_{name}"] = evaluate_digits(images, c.data.image_size,
                                                      c.data.data_dir).frechet
    if "fid" in c.eval.metrics:
      from bluediff.evaluate.frechet import frechet_distance_of
      feats = ctx.sample_outputs[0] if name == "restored" else ctx.inception(images, desc=name)[0]
      out[f"fid_{name}"] = frechet_distance_of(feats, ctx.reference_features)
  return out


def _trajectory(ctx: EvalContext) -> dict:
  """A strip of intermediate iterates (rows: samples, columns: time) for processes whose
  sampler can return them (blur diffusion: coarse structure should appear first), and
  when each frequency band settles: settle_{low,mid,high}, the fraction of the sampling
  steps after which the band is within half its starting distance of the sample."""
  import inspect

  from bluediff.evaluate.spectra import BANDS, band_settling, plot_band_settling, settle_time
  if "trajectory_frames" not in inspect.signature(ctx.exp.process.sample).parameters:
    raise ConfigError(f"the 'trajectory' metric needs a sampler that returns its iterates "
                      f"(blur_diffusion), not {ctx.config.process.name}")
  if ctx.params is None:
    return {}                                  # scoring a samples file: nothing to trace
  c, model = ctx.config, ctx.exp.model
  shape = (8, *ctx.exp.image_shape)

  @jax.jit
  def run(params, key):
    net = lambda x, t: model.apply({"params": params}, x, t)   # noqa: E731
    return ctx.exp.process.sample(net, key, shape, method=c.sampling.method,
                                  num_steps=c.sampling.num_steps, trajectory_frames=17)
  _, traj = run(jax.device_get(ctx.params), jax.random.key(c.eval.seed))
  frames = np.asarray(traj["iterates"])                          # [17, 8, H, W, C]
  d = band_settling(frames)
  names = {"trajectory.png": "intermediate iterates (left: noise, right: sample)",
           "trajectory_x0.png": "the network's x0 estimate along the way (left to right)",
           "trajectory_bands.png": "when each frequency band settles"}
  if ctx.exp.is_chief:
    for name, series in (("trajectory.png", frames), ("trajectory_x0.png", traj["x0_hat"])):
      strip = np.concatenate(list(to_uint8(np.asarray(series)[::2])), axis=2)   # [8, H, 9 W, C]
      save_grid(strip, storage.join(ctx.outdir, name), ncol=1)
    plot_band_settling(d, storage.join(ctx.outdir, "trajectory_bands.png"))
  for name, title in names.items():
    ctx.plots[title] = storage.join(ctx.outdir, name)
  return {f"settle_{name}": settle_time(curve) for name, curve in zip(BANDS, d)}


METRICS: dict[str, Callable[[EvalContext], dict]] = {
    "trajectory": _trajectory,
    "restoration": _restoration,
    "digits": _digits, "fid": _fid, "kid": _kid, "precision_recall": _precision_recall,
    "inception_score": _inception_score, "spectra": _spectra,
}


def check_metrics(config) -> None:
  """Unknown metric names, missing Inception weights, unprepared reference data:
  one line each, before anything is sampled or compiled."""
  for name in config.eval.metrics:
    if name not in METRICS:
      raise ConfigError(f"config.eval.metrics: {name!r} is unknown; choose from {sorted(METRICS)}")
  if any(m in INCEPTION_METRICS for m in config.eval.metrics):
    from bluediff.evaluate.inception_weights import require_weights
    require_weights(config.eval.inception_weights)
  check_prepared(config.data.dataset, config.data.data_dir)


def source_revision() -> dict:
  """The git commit of the bluediff source tree and whether it had uncommitted changes
  (tracked files), or {"commit": None} outside a git checkout."""
  import subprocess
  here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                            text=True, timeout=10, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10, check=True).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return {"commit": None, "dirty": None}
  return {"commit": commit, "dirty": bool(dirty)}


def provenance(proto: dict, reference_info: dict) -> dict:
  """What produced these numbers: code, library versions, judge, checkpoint and sampler."""
  import importlib.metadata as md
  import flax

  def version(name):
    try:
      return md.version(name)
    except md.PackageNotFoundError:
      return None
  return {**source_revision(), "bluediff": version("bluediff"), "jax": jax.__version__,
          "flax": flax.__version__,
          "digits_judge_version": reference_info.get("digits_judge_version"),
          "checkpoint_step": proto.get("checkpoint_step"), "sampler": proto.get("sampler"),
          "num_steps": proto.get("num_steps"), "weights": proto.get("weights"),
          "source": proto.get("source")}


def write_report(outdir: str, results: dict, grid: str | None, plots: dict) -> str:
  p = results["protocol"]
  lines = [f"# Evaluation: {p.get('source', 'step ' + str(p.get('checkpoint_step')))}", "",
           "| protocol | |", "|---|---|"]
  lines += [f"| {k} | {v} |" for k, v in p.items()]
  lines += ["", "| metric | value |", "|---|---|"]
  lines += [f"| {k} | {v:.5g} |" if isinstance(v, float) else f"| {k} | {v} |"
            for k, v in results["metrics"].items()]
  if grid:
    lines += ["", "## Samples", "", f"![samples]({storage.basename(grid)})"]
  for caption, path in plots.items():
    lines += ["", f"## {caption[0].upper() + caption[1:]}", "", f"![{caption}]({storage.basename(path)})"]
  return storage.write_text(storage.join(outdir, "report.md"), "\n".join(lines) + "\n")


def evaluate_images(config, exp: Experiment, images: np.ndarray, proto: dict, workdir: str,
                    tag: str, references: np.ndarray | None = None,
                    observations: np.ndarray | None = None,
                    other_restorations: dict | None = None, params=None) -> dict:
  """Scores images uint8 [N, H, W, C]; writes metrics.json, report.md and the scored
  samples.npz under workdir/eval/tag.

  references / observations (uint8, same shape): for conditional processes.
  """
  outdir = storage.join(workdir, "eval", tag)
  if exp.is_chief:
    storage.makedirs(outdir)
  ctx = EvalContext(config, exp, images, outdir, references=references, observations=observations,
                    other_restorations=other_restorations or {}, params=params)
  metrics = {}
  for name in config.eval.metrics:
    metrics.update(METRICS[name](ctx))
  results = {"protocol": {**proto, **ctx.reference_info},
             "provenance": provenance(proto, ctx.reference_info), "metrics": metrics}
  if exp.is_chief:
    shown = images[:config.training.grid_size]
    if observations is not None:   # observation | (direct |) restoration | reference
      n = len(shown)
      parts = [observations[:n], *(v[:n] for v in (other_restorations or {}).values()),
               shown, references[:n]]
      shown = np.concatenate(parts, axis=2)
    # the scored images themselves, so a table can be re-scored later without resampling
    extra = {} if observations is None else {"observations": observations, "references": references}
    storage.save_npz(storage.join(outdir, "samples.npz"), compressed=True, images=images, **extra)
    grid = save_grid(shown, storage.join(outdir, "samples_grid.png"))
    write_report(outdir, results, grid, ctx.plots)
    for path in (storage.join(outdir, "metrics.json"), storage.join(workdir, "metrics.json")):
      storage.write_json(path, results)
    row = {k: proto.get(k) for k in ("checkpoint_step", "sampler", "num_steps", "num_samples")}
    row.update(ctx.reference_info)
    row["provenance"] = results["provenance"]
    storage.append_line(storage.join(workdir, "evaluations.jsonl"),
                        json.dumps({**row, "tag": tag, "time": time.time(), "metrics": metrics}))
    shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
    print(f"[{tag}] {shown}\nreport: {storage.join(outdir, 'report.md')}")
  return results


def run_evaluate(config, workdir: str, samples_path: str = "", step: int | None = None) -> list[dict]:
  """Computes config.eval.metrics for the given samples, or for fresh samples of the
  run at each of config.eval.sampling_steps (default: config.sampling.num_steps)."""
  check_metrics(config)
  exp = build_experiment(config)
  if samples_path:
    images, f = load_samples(samples_path, exp.image_shape)
    refs = obs = None
    if exp.process.conditional:
      if not {"references", "observations"} <= set(f):
        raise ConfigError(f"{samples_path}: a conditional process's samples need "
                          f"'references' and 'observations' arrays (mode=sample writes them)")
      refs, obs = f["references"], f["observations"]
    proto = {**protocol(config, exp.process.conditional), "source": str(storage.run_path(samples_path)),
             "num_samples": len(images)}
    for k in ("sampler", "num_steps", "seed", "weights"):
      proto.pop(k)
    tag = "samples-" + storage.basename(samples_path).rsplit(".", 1)[0]
    return [evaluate_images(config, exp, images, proto, workdir, tag, refs, obs)]
  params, restored = load_params(exp, workdir, step, config.sampling.use_ema)
  refs = None
  if exp.process.conditional:
    from bluediff.sampling import held_out_references
    refs = held_out_references(exp, config.eval.num_samples)
  out = []
  for num_steps in (config.eval.sampling_steps or (config.sampling.num_steps,)):
    proto = {**protocol(config, exp.process.conditional, num_steps), "checkpoint_step": restored}
    print("evaluation protocol: " + json.dumps(proto))
    tag = f"step{restored}-{config.sampling.method}{num_steps}"
    if refs is None:
      images = generate(exp, params, config.eval.num_samples, config.eval.seed, num_steps=num_steps)
      out.append(evaluate_images(config, exp, images, proto, workdir, tag, params=params))
      continue
    images, obs = restore(exp, params, refs, config.eval.seed, num_steps=num_steps)
    extra = {}
    if "direct" in exp.process.samplers and config.sampling.method != "direct":
      extra["direct"], _ = restore(exp, params, refs, config.eval.seed, method="direct")
    out.append(evaluate_images(config, exp, images, proto, workdir, tag, to_uint8(refs), obs,
                               extra))
  return out
