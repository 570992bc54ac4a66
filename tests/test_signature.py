"""What a checkpoint's network means: every process/degradation field is classified, and
checkpoints or exports are refused (one line naming the fields) under a config that
changes their meaning, never under one that only changes training or sampling."""
import json

import pytest

from bluediff import signature as sig
from configs import base


def test_every_process_and_degradation_field_is_classified():
  c = base.get_config()
  for section in ("process", "degradation"):
    fields = set(c[section].keys())
    assert fields == set(sig.ROLES[section]), (
        f"classify config.{section} fields in bluediff/signature.py ROLES: "
        f"missing {sorted(fields - set(sig.ROLES[section]))}, "
        f"stale {sorted(set(sig.ROLES[section]) - fields)}")
    assert set(sig.ROLES[section].values()) <= {sig.MEANING, sig.TRAINING, sig.SAMPLING}
  # every meaning field of the process section is read by some process configuration
  seen = set()
  from bluediff.processes import PROCESSES
  assert set(PROCESSES) == {"iadb", "blue_noise", "ddpm", "cold", "blur_diffusion"}
  for process in PROCESSES:
    for extra in ({}, {"process__ddpm_time_varying": True}, {"process__blur_schedule": "hoogeboom"},
                  {"process__basis": "svd"}, {"process__blur_d": "discrete"}):
      c = _config(process, **extra)
      for kind in sig.DEGRADATION_FIELDS:
        c.degradation.kind = kind
        for dotted in sig.relevant(c):
          section, name = dotted.split(".")
          assert sig.ROLES[section][name] == sig.MEANING, dotted
          seen.add(dotted)
  meaning = {f"{sec}.{f}" for sec in ("process", "degradation")
             for f, r in sig.ROLES[sec].items() if r == sig.MEANING} - {"process.name"}
  assert meaning <= seen, sorted(meaning - seen)
  assert set(sig.DEGRADATION_FIELDS) == set(__import__("bluediff.degradations",
                                                       fromlist=["DEGRADATIONS"]).DEGRADATIONS)


def _config(process, **fields):
  c = base.get_config()
  c.process.name = process
  for dotted, v in fields.items():
    section, name = dotted.split("__")
    c[section][name] = v
  return c


@pytest.mark.parametrize("process,change,named", [
    ("blue_noise", {"process__gamma_tau": 0.2}, "process.gamma_tau"),
    ("blue_noise", {"process__parametrisation": "paper"}, "process.parametrisation"),
    ("blue_noise", {"process__heads": 1}, "process.heads"),
    ("blue_noise", {"process__blend": "vp"}, "process.blend"),
    ("iadb", {"process__time_scale": 1000.0}, "process.time_scale"),
    ("ddpm", {"process__train_steps": 500}, "process.train_steps"),
    ("blur_diffusion", {"process__blur_schedule": "linear"}, "process.blur_schedule"),
    ("blur_diffusion", {"process__basis": "svd"}, "process.basis"),
    ("cold", {"degradation__blur_std": 1.0}, "degradation.blur_std"),
    ("cold", {"degradation__kind": "inpaint"}, "degradation.kind"),
    ("iadb", {"noise__kind": "blue"}, "noise.kind"),
    ("iadb", {"model__channels": 8}, "model.channels"),
])
def test_a_meaning_change_is_named(process, change, named):
  saved = sig.model_signature(_config(process))
  problem = sig.mismatch(saved, sig.model_signature(_config(process, **change)))
  assert problem is not None and named in problem and "\n" not in problem
  # only the changed field is named
  assert problem.count("=") == 2, problem


@pytest.mark.parametrize("process,change", [
    ("blue_noise", {"process__pairing": "greedy"}),                 # training only
    ("blue_noise", {"process__antithetic": False}),
    ("cold", {"process__loss": "l2"}),
    ("ddpm", {"process__ddim_eta": 1.0}),                           # sampling only
    ("blur_diffusion", {"process__x0_min_abar": 0.0}),
    ("cold", {"process__generate": True}),
    ("iadb", {"process__blur_s0": 1.0}),                            # a field IADB never reads
    ("iadb", {"degradation__blur_std": 3.0}),
    ("iadb", {"optim__lr": 1.0}),
])
def test_training_sampling_and_unread_fields_are_not_compared(process, change):
  saved = sig.model_signature(_config(process))
  assert sig.mismatch(saved, sig.model_signature(_config(process, **change))) is None


def test_format1_signatures_need_the_old_time_scale():
  """Before process fields were recorded, every process fed t x 1: such a checkpoint is
  accepted at time_scale 1 and refused, naming the override, at any other."""
  c = _config("iadb")
  legacy = {k: v for k, v in sig.model_signature(c).items() if k not in ("format", "fields")}
  assert sig.mismatch(legacy, sig.model_signature(c)) is None
  problem = sig.mismatch(legacy, sig.model_signature(c, time_scale=1000.0))
  assert "--config.process.time_scale=1" in problem
  assert "model.channels" in sig.mismatch(legacy, sig.model_signature(_config("iadb", model__channels=8)))
  blur = _config("blur_diffusion", process__blur_schedule="hoogeboom")
  legacy_blur = {k: v for k, v in sig.model_signature(blur).items() if k not in ("format", "fields")}
  assert "retrain" in sig.mismatch(legacy_blur, sig.model_signature(blur))


def test_a_field_added_since_counts_as_its_default():
  """A signature written before a field existed is not refused for it while the config
  keeps the field's default; the compute dtype and conv algorithm are never compared."""
  c = _config("blue_noise")
  saved = sig.model_signature(c)
  del saved["fields"]["process.blend"]
  del saved["model"]["num_heads"]
  assert sig.mismatch(saved, sig.model_signature(c)) is None
  assert "process.blend" in sig.mismatch(saved, sig.model_signature(_config("blue_noise", process__blend="vp")))
  assert sig.mismatch(sig.model_signature(c), sig.model_signature(
      _config("blue_noise", model__dtype="bfloat16", model__conv_algorithm="direct"))) is None


def test_relevance_follows_the_configuration():
  """DDPM reads gamma only in its time-varying form; the Hoogeboom preset reads neither
  the betas nor Lee et al.'s blur fields; cold reads its own degradation kind's fields."""
  assert sig.mismatch(sig.model_signature(_config("ddpm")),
                      sig.model_signature(_config("ddpm", process__gamma_tau=0.2))) is None
  tv = dict(process__ddpm_time_varying=True)
  assert "gamma_tau" in sig.mismatch(sig.model_signature(_config("ddpm", **tv)),
                                     sig.model_signature(_config("ddpm", process__gamma_tau=0.2, **tv)))
  hb = dict(process__blur_schedule="hoogeboom")
  assert sig.mismatch(sig.model_signature(_config("blur_diffusion", **hb)),
                      sig.model_signature(_config("blur_diffusion", process__blur_s0=1.0, **hb))) is None
  assert "hoogeboom_s_max" in sig.mismatch(
      sig.model_signature(_config("blur_diffusion", **hb)),
      sig.model_signature(_config("blur_diffusion", process__hoogeboom_s_max=5.0, **hb)))
  assert sig.mismatch(sig.model_signature(_config("cold")),      # blur never reads mask_std
                      sig.model_signature(_config("cold", degradation__mask_std=0.5))) is None
  assert sig.model_signature(_config("cold"))["noise"] == {}


def test_format1_checkpoints_are_judged_by_their_training_config():
  c = _config("cold", degradation__padding="periodic")
  legacy = {k: v for k, v in sig.model_signature(c).items() if k not in ("format", "fields")}
  legacy["noise"] = c.noise.to_dict()                 # format 1 recorded noise for every process
  trained = json.loads(_config("cold").to_json())     # trained with reflect padding
  problem = sig.mismatch(legacy, sig.model_signature(c), trained_config=trained)
  assert "degradation.padding='reflect'" in problem and "trained with" in problem
  assert sig.mismatch(legacy, sig.model_signature(c), trained_config=json.loads(c.to_json())) is None


def test_format2_inpainting_signatures_are_refused():
  """The inpainting mask centre moved to the reference's pixel grid in format 3."""
  c = _config("cold", degradation__kind="inpaint")
  old = {**sig.model_signature(c), "format": 2}
  assert "mask centre" in sig.mismatch(old, sig.model_signature(c))
  assert sig.mismatch(sig.model_signature(c), sig.model_signature(c)) is None
  blur = _config("cold", degradation__kind="blur")
  assert sig.mismatch({**sig.model_signature(blur), "format": 2}, sig.model_signature(blur)) is None
  assert "degradation.reverse" in sig.mismatch(
      sig.model_signature(c), sig.model_signature(_config("cold", degradation__kind="inpaint",
                                                          degradation__reverse=True)))
