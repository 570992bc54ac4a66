"""What a network's weights mean, and refusing a config that means something else.

A checkpoint or export is only usable with a config under which its network's
input and output mean what they meant in training: the same process, noise
law, time input, schedules, parametrisation, degradation. Every field of the
`process` and `degradation` config sections is classified here as

  meaning    changes what the network sees or predicts (recorded and compared)
  training   only changes how it is trained (pairing, antithetic steps, loss)
  sampling   only changes how samples are drawn (ddim_eta, x0_min_abar, ...)

`tests/test_signature.py` checks that the classification covers every field
of `configs/base.py`, so a new field cannot be forgotten. Of the meaning
fields, a checkpoint records those its process reads (`relevant(config)`), so an
IADB checkpoint is not refused for a change to the blur-diffusion schedule; the
model's compute dtype, convolution algorithm and dropout are not compared.

Signatures carry `format`; checkpoints and exports written before it
(bluediff <= 0.1, format 1) recorded no process fields: they are compared with
the training config beside them (the run's or the export's config.json) when
there is one, else with what that version fed by default (`LEGACY`), and
refused with a line naming the fields, or the override that restores their
meaning. A field added since a signature was written counts as its default.
"""
from __future__ import annotations

import json

FORMAT = 3
MEANING, TRAINING, SAMPLING = "meaning", "training", "sampling"

#: every field of config.process and config.degradation, by role.
ROLES: dict[str, dict[str, str]] = {
    "process": {
        "name": MEANING, "time_scale": MEANING,
        "gamma": MEANING, "gamma_start": MEANING, "gamma_end": MEANING, "gamma_tau": MEANING,
        "gamma_value": MEANING, "learn_gamma": MEANING, "learn_lr": TRAINING,
        "blend": MEANING, "parametrisation": MEANING, "heads": MEANING, "train_steps": MEANING,
        "antithetic": TRAINING, "pairing": TRAINING, "pairing_scope": TRAINING,
        "basis": MEANING, "blur_schedule": MEANING, "blur_s0": MEANING, "blur_s_max": MEANING,
        "blur_f_max": MEANING, "blur_kernel_size": MEANING, "blur_d": MEANING,
        "hoogeboom_s_max": MEANING,
        "x0_min_abar": SAMPLING,
        "loss": TRAINING,
        # cold generation trains the same restoration network; the prior only starts sampling
        "generate": SAMPLING, "prior_components": SAMPLING,
        "sr_factor": MEANING,
        "alpha_sampling": TRAINING,
        "beta_start": MEANING, "beta_end": MEANING,
        "ddim_eta": SAMPLING, "ddpm_time_varying": MEANING,
    },
    "degradation": {
        "kind": MEANING, "num_steps": MEANING, "blur_schedule": MEANING, "blur_std": MEANING,
        "blur_std_step": MEANING, "kernel_size": MEANING, "padding": MEANING,
        "mean_at_end": MEANING, "mask_std": MEANING, "mask_initial": MEANING,
        "random_centre": MEANING, "colour_fill": MEANING, "reverse": MEANING,
        "blend_dataset": MEANING, "blend_split": MEANING,
        "blend_data_dir": TRAINING,          # where the targets are read, not what they are
        "blend_targets": MEANING,
    },
}

#: degradation fields each kind reads (besides `kind`).
DEGRADATION_FIELDS: dict[str, tuple[str, ...]] = {
    "blur": ("num_steps", "blur_schedule", "blur_std", "blur_std_step", "kernel_size", "padding",
             "mean_at_end"),
    "inpaint": ("num_steps", "mask_std", "mask_initial", "random_centre", "colour_fill",
                "reverse"),
    "sr": ("num_steps",), "desaturate": ("num_steps",), "snow": ("num_steps",),
    "noise": ("num_steps",),
    "blend": ("num_steps", "blend_dataset", "blend_split", "blend_targets"),
}
#: model fields that do not change what the weights mean: the compute dtype and the
#: convolution algorithm (same parameters), dropout (training only).
MODEL_NOT_MEANING = ("dtype", "conv_algorithm", "dropout")


def relevant(config) -> tuple[str, ...]:
  """The meaning fields, as "section.field", that config's process reads (each process
  module's `meaning_fields`)."""
  from bluediff.processes import process_module
  return tuple(process_module(config.process.name).meaning_fields(config))


def reads_noise(config) -> bool:
  """Whether config.noise is part of what config's process's network means."""
  from bluediff.processes import process_module
  return process_module(config.process.name).READS_NOISE


#: what format-1 code fed the network by default, as (field, value, override restoring it),
#: for format-1 checkpoints without their training config; and the configurations whose
#: format-1 math differs under any config (retrain).
LEGACY = (("process.time_scale", 1.0, "--config.process.time_scale=1"),)

#: (format, field, value, what changed): a signature older than `format` (format 1: no
#: "format" key) whose config has field = value meant something else: retrain.
CHANGED_SINCE = (
    (2, "degradation.kind", "inpaint", "the inpainting mask index now runs i = 0..T-1 as "
     "in the reference"),
    (2, "process.blur_schedule", "hoogeboom", "the hoogeboom preset's noise is isotropic now"),
    (3, "degradation.kind", "inpaint", "the inpainting mask centre now lies on the "
     "reference's pixel grid: N/2 - 1, or an integer in -1..N-1"),
)


def _changed_since(saved_format: int, fields: dict) -> str | None:
  """What changed since a signature of `saved_format` for this config, if anything."""
  why = [w for fmt, k, v, w in CHANGED_SINCE if saved_format < fmt and fields.get(k) == v]
  return "; ".join(why) or None


def meaning_fields(config, time_scale: float | None = None) -> dict:
  """{"process.time_scale": 1.0, ...}: the meaning fields `config`'s process reads.

  time_scale: the value the built process holds (recorded, so the record says what the
  network saw); None takes config.process.time_scale.
  """
  out = {}
  for dotted in relevant(config):
    section, name = dotted.split(".")
    out[dotted] = _plain(config[section][name])
  if time_scale is not None:
    out["process.time_scale"] = float(time_scale)
  return out


def _plain(v):
  """JSON-comparable form (tuples become lists, as they come back from meta.json)."""
  return json.loads(json.dumps(v))


def model_signature(config, noise_digest: str = "", time_scale: float | None = None) -> dict:
  """What a checkpoint's weights depend on; a restore with another one is refused.

  noise_digest identifies the noise statistics (the blue-noise spectrum's hash):
  with config.noise.root, it pins the exact law the model was trained with.
  """
  return {
      "format": FORMAT,
      "noise_digest": noise_digest,
      "process": config.process.name,
      "fields": meaning_fields(config, time_scale),
      "noise": _plain(config.noise.to_dict()) if reads_noise(config) else {},
      "model": {k: v for k, v in json.loads(config.model.to_json()).items()
                if k not in MODEL_NOT_MEANING},
      "image_size": config.data.image_size,
      "dataset": config.data.dataset,
  }


def _flat(signature: dict) -> dict:
  """{"noise.kind": ..., "model.channels": ..., "process.time_scale": ...}: dotted leaves."""
  out = {}
  for k, v in signature.items():
    if k == "fields":
      out.update(v)                              # already dotted
    elif isinstance(v, dict):
      out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
    else:
      out[k] = v
  return out


_UNSET = object()


def _default(dotted: str):
  """configs/base.py's default for "section.field" (_UNSET if there is none)."""
  from configs import base
  section, _, name = dotted.partition(".")
  c = base.get_config()
  if not name or section not in c or name not in c[section]:
    return _UNSET
  return _plain(c[section][name])


def _compare(saved: dict, current: dict) -> str | None:
  """One line naming the fields that differ between two flat dicts. A field the saved
  signature lacks (added to bluediff since) counts as its default; a field only the
  saved one has is no longer read and is not compared."""
  diff = []
  for k in sorted(current):
    have = saved[k] if k in saved else _default(k)
    if have is _UNSET or have != current[k]:
      diff.append((k, "<unset>" if have is _UNSET else have, current[k]))
  if not diff:
    return None
  return ("it was written with " + ", ".join(f"{k}={a!r}" for k, a, _ in diff)
          + "; this config has " + ", ".join(f"{k}={b!r}" for k, _, b in diff))


def mismatch(saved: dict, current: dict, trained_config: dict | None = None) -> str | None:
  """One line naming every meaning field whose saved value differs from the config's.

  saved: the signature a checkpoint or export recorded; current: this config's.
  trained_config: the config the weights were trained with (a run's or an export's
  config.json), used for format-1 signatures, which recorded no process fields.
  """
  if "format" in saved:
    why = _changed_since(saved["format"], current.get("fields", {}))
    if why:
      return f"its math changed since it was written ({why}): retrain it"

    def body(sig):
      return _flat({k: v for k, v in sig.items() if k != "format"})
    return _compare(body(saved), body(current))
  return _legacy_mismatch(saved, current, trained_config)


def _legacy_mismatch(saved: dict, current: dict, trained_config: dict | None) -> str | None:
  """Format 1: what it recorded, then the process fields from the training config
  if there is one, else what format-1 code fed by default (`LEGACY`)."""
  old = {k: v for k, v in saved.items() if k in ("noise_digest", "process", "image_size", "dataset")}
  old["model"] = {k: v for k, v in saved.get("model", {}).items() if k not in MODEL_NOT_MEANING}
  if current["noise"]:                          # format 1 recorded it for every process
    old["noise"] = saved.get("noise", {})
  now = {k: current[k] for k in old}
  problem = _compare(_flat(old), _flat(now))
  if problem:
    return problem
  fields = current.get("fields", {})
  why = _changed_since(1, fields)
  if why:
    return (f"it predates bluediff's recorded process fields and its math changed since "
            f"({why}): retrain it")
  if trained_config is not None:
    from bluediff.config import config_from_dict
    trained = meaning_fields(config_from_dict(trained_config))
    problem = _compare(trained, fields)
    return None if problem is None else problem.replace("it was written with", "it was trained with")
  wrong = [(k, v, hint) for k, v, hint in LEGACY if k in fields and fields[k] != v]
  if wrong:
    return ("it predates bluediff's recorded process fields (format 1) and its training "
            "config is not beside it; with that version's defaults the network saw "
            + ", ".join(f"{k}={v!r}" for k, v, _ in wrong) + ", this config has "
            + ", ".join(f"{k}={fields[k]!r}" for k, _, _ in wrong)
            + ": if it was trained with the defaults, rerun with "
            + " ".join(hint for _, _, hint in wrong) + " (else with the value it was trained with)")
  return None


def is_legacy(saved: dict) -> bool:
  return "format" not in saved
