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
fields, a checkpoint records those its process reads (`RELEVANT`), so an IADB
checkpoint is not refused for a change to the blur-diffusion schedule.

Signatures carry `format`; checkpoints and exports written before it
(bluediff <= 0.1, format 1) recorded no process fields: they are accepted
only where the config reproduces what that version computed (`LEGACY`), and
refused otherwise with a line naming the override that restores their meaning.
"""
from __future__ import annotations

import json

FORMAT = 2
MEANING, TRAINING, SAMPLING = "meaning", "training", "sampling"

_GAMMA = ("gamma", "gamma_start", "gamma_end", "gamma_tau", "gamma_value", "learn_gamma")

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
        "beta_start": MEANING, "beta_end": MEANING,
        "ddim_eta": SAMPLING, "ddpm_time_varying": MEANING,
    },
    "degradation": {
        "kind": MEANING, "num_steps": MEANING, "blur_schedule": MEANING, "blur_std": MEANING,
        "blur_std_step": MEANING, "kernel_size": MEANING, "padding": MEANING,
        "mean_at_end": MEANING, "mask_std": MEANING, "mask_initial": MEANING,
        "random_centre": MEANING, "colour_fill": MEANING,
        "blend_dataset": MEANING, "blend_split": MEANING,
        "blend_data_dir": TRAINING,          # where the targets are read, not what they are
        "blend_targets": MEANING,
    },
}

#: the meaning fields each process reads ("degradation" = all of that section's).
RELEVANT: dict[str, tuple[str, ...]] = {
    "iadb": ("time_scale", "sr_factor"),
    "blue_noise": ("time_scale", "sr_factor", "blend", "parametrisation", "heads",
                   "train_steps") + _GAMMA,
    "ddpm": ("time_scale", "train_steps", "beta_start", "beta_end", "ddpm_time_varying") + _GAMMA,
    "cold": ("time_scale", "degradation"),
    "blur_diffusion": ("time_scale", "train_steps", "beta_start", "beta_end", "basis",
                       "blur_schedule", "blur_s0", "blur_s_max", "blur_f_max", "blur_kernel_size",
                       "blur_d", "hoogeboom_s_max"),
}

#: what format-1 checkpoints computed, as (field, value, override restoring it), per process
#: (None: all); and processes whose format-1 math differs under any config (retrain).
LEGACY = (("process.time_scale", 1.0, "--config.process.time_scale=1"),)
LEGACY_CHANGED = (   # (field, value, what changed)
    ("degradation.kind", "inpaint", "the inpainting mask index now runs i = 0..T-1 as in the reference"),
    ("process.blur_schedule", "hoogeboom", "the hoogeboom preset's noise is isotropic now"),
)


def meaning_fields(config, time_scale: float | None = None) -> dict:
  """{"process.time_scale": 1.0, ...}: the meaning fields `config`'s process reads.

  time_scale: the value the built process resolved (a config's 0 means the process's
  default), so the record says what the network saw, not what the config said.
  """
  p = config.process
  out = {}
  for name in RELEVANT[p.name]:
    if name == "degradation":
      out.update({f"degradation.{k}": _plain(config.degradation[k])
                  for k, role in ROLES["degradation"].items()
                  if role == MEANING and k in config.degradation})
    elif name in p:
      out[f"process.{name}"] = _plain(p[name])
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
      "noise": config.noise.to_dict(),
      "model": json.loads(config.model.to_json()),
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


def mismatch(saved: dict, current: dict) -> str | None:
  """One line naming every field whose saved value differs from the config's, or None.

  saved: the signature a checkpoint or export recorded; current: this config's.
  Format-1 signatures are judged by `LEGACY`.
  """
  if "format" not in saved:
    return _legacy_mismatch(saved, current)
  a, b = _flat(saved), _flat(current)
  diff = sorted(k for k in set(a) | set(b) if a.get(k, "<unset>") != b.get(k, "<unset>"))
  if not diff:
    return None
  return ("it was written with " + ", ".join(f"{k}={a.get(k, '<unset>')!r}" for k in diff)
          + "; this config has " + ", ".join(f"{k}={b.get(k, '<unset>')!r}" for k in diff))


def _legacy_mismatch(saved: dict, current: dict) -> str | None:
  """Format 1: compare what it recorded, then what its version computed (`LEGACY`)."""
  problem = mismatch({**saved, "format": FORMAT, "fields": {}},
                     {k: v for k, v in current.items() if k in saved} | {"format": FORMAT, "fields": {}})
  if problem:
    return problem
  fields = current.get("fields", {})
  for k, v, why in LEGACY_CHANGED:
    if fields.get(k) == v:
      return (f"it predates bluediff's recorded process fields and its math changed since "
              f"({why}): retrain it")
  wrong = [(k, v, hint) for k, v, hint in LEGACY if k in fields and fields[k] != v]
  if wrong:
    return ("it predates bluediff's recorded process fields (format 1), when the network saw "
            + ", ".join(f"{k}={v!r}" for k, v, _ in wrong) + "; this config has "
            + ", ".join(f"{k}={fields[k]!r}" for k, _, _ in wrong) + ": rerun with "
            + " ".join(hint for _, _, hint in wrong))
  return None


def is_legacy(saved: dict) -> bool:
  return "format" not in saved
