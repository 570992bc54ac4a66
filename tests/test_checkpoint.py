"""Orbax checkpoints: round trip, exact resume, other device counts, mismatches."""
import json
import os

import jax
import numpy as np
import pytest

from bluediff.checkpoint import CheckpointMismatchError, Checkpointer
from bluediff.experiment import build_experiment, restore_or_init
from bluediff.train import train


def read_losses(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return {r["step"]: r["loss"] for r in map(json.loads, f)}


@pytest.fixture(scope="module")
def uninterrupted(tiny_config, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("full"))
  train(tiny_config(), workdir)
  return workdir


def test_run_leaves_checkpoints_logs_and_grid(uninterrupted):
  ckpt = Checkpointer(os.path.join(uninterrupted, "checkpoints"))
  assert ckpt.all_steps() == [3, 6]
  assert os.path.exists(os.path.join(uninterrupted, "samples.png"))
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(uninterrupted, "tb")))
  assert sorted(read_losses(uninterrupted)) == [2, 3, 4, 6]   # log steps and save steps


def test_resumed_run_reproduces_the_uninterrupted_losses(tiny_config, uninterrupted, tmp_path):
  c = tiny_config()
  c.training.num_steps = 3
  train(c, str(tmp_path))
  train(tiny_config(), str(tmp_path))     # picks up at step 3
  full, resumed = read_losses(uninterrupted), read_losses(tmp_path)
  for s in (4, 6):
    assert resumed[s] == pytest.approx(full[s], rel=1e-6), (s, resumed[s], full[s])


def test_logged_rate_counts_the_steps_still_in_flight(tiny_config, tmp_path, monkeypatch):
  """Steps run asynchronously: reading the metrics waits for those in flight, so the
  interval is timed after that read. A clock that only moves while the metrics are
  read (1 s each) must give steps_per_sec = steps in the interval / 1 s."""
  import types

  import bluediff.train as train_mod
  clock = [0.0]

  def device_get(x):
    clock[0] += 1.0
    return jax.device_get(x)

  monkeypatch.setattr(train_mod, "jax", types.SimpleNamespace(
      **{k: getattr(jax, k) for k in dir(jax) if not k.startswith("__") and k != "device_get"},
      device_get=device_get))
  monkeypatch.setattr(train_mod, "time", types.SimpleNamespace(
      perf_counter=lambda: clock[0], time=__import__("time").time))
  train(tiny_config(), str(tmp_path))
  with open(os.path.join(tmp_path, "metrics.jsonl")) as f:
    rates = {r["step"]: r["steps_per_sec"] for r in map(json.loads, f)}
  assert rates == {2: 2.0, 3: 1.0, 4: 1.0, 6: 2.0}


def test_restore_round_trip_on_another_device_count(tiny_config, uninterrupted):
  c4, c1 = tiny_config(), tiny_config()
  c4.mesh.data, c1.mesh.data = 4, 1
  ckpt = Checkpointer(os.path.join(uninterrupted, "checkpoints"))
  s4, data4, step4 = restore_or_init(build_experiment(c4), ckpt)
  s1, data1, step1 = restore_or_init(build_experiment(c1), ckpt)
  assert step4 == step1 == 6 and int(s1.step) == 6 and data4 == data1
  assert len(s1.params["Conv_0"]["kernel"].sharding.device_set) == 1
  assert len(s4.params["Conv_0"]["kernel"].sharding.device_set) == 4
  for a, b in zip(jax.tree.leaves(s4), jax.tree.leaves(s1)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_checkpoint_of_another_model_is_refused(tiny_config, uninterrupted):
  c = tiny_config()
  c.model.channels = 16
  ckpt = Checkpointer(os.path.join(uninterrupted, "checkpoints"))
  with pytest.raises(CheckpointMismatchError, match="model"):
    restore_or_init(build_experiment(c), ckpt)


def test_checkpoint_of_another_state_layout_is_one_clear_error(tiny_config, uninterrupted):
  """A state pytree of another layout (e.g. an older bluediff) is refused with one line."""
  from bluediff.state import TrainState
  exp = build_experiment(tiny_config())
  abstract, _ = exp.abstract_state()
  other = {"params": abstract.params, "step": abstract.step}    # not a TrainState
  assert not isinstance(other, TrainState)
  with Checkpointer(os.path.join(uninterrupted, "checkpoints"), read_only=True) as ckpt:
    with pytest.raises(CheckpointMismatchError, match="another layout"):
      ckpt.restore(other)


@pytest.mark.parametrize("field,value,named", [
    ("process.time_scale", 10.0, "process.time_scale"),
    ("process.sr_factor", 2, "process.sr_factor"),
    ("process.name", "ddpm", "process="),
    ("noise.kind", "red", "noise.kind"),
])
def test_a_config_that_changes_the_networks_meaning_is_refused(tiny_config, uninterrupted,
                                                               field, value, named):
  c = tiny_config()
  section, name = field.split(".")
  c[section][name] = value
  if value == "ddpm":
    c.sampling.method = "ddim"
  with Checkpointer(os.path.join(uninterrupted, "checkpoints"), read_only=True) as ckpt:
    with pytest.raises(CheckpointMismatchError, match=named) as e:
      restore_or_init(build_experiment(c), ckpt)
  assert "\n" not in str(e.value)


def test_sampling_and_training_fields_restore(tiny_config, uninterrupted):
  c = tiny_config()
  c.sampling.num_steps, c.process.pairing, c.optim.lr, c.process.ddim_eta = 2, "greedy", 1.0, 1.0
  with Checkpointer(os.path.join(uninterrupted, "checkpoints"), read_only=True) as ckpt:
    _, _, step = restore_or_init(build_experiment(c), ckpt)
  assert step == 6


def test_a_format1_checkpoint_needs_the_old_time_scale(tiny_config, uninterrupted, tmp_path, capsys):
  """A checkpoint written before process fields were recorded restores at time_scale 1
  (with a warning) and is refused, naming the override, at another."""
  exp = build_experiment(tiny_config())
  with Checkpointer(os.path.join(uninterrupted, "checkpoints"), read_only=True) as ckpt:
    state, data_state, _ = restore_or_init(exp, ckpt)
  legacy = {k: v for k, v in exp.signature.items() if k not in ("format", "fields")}
  with Checkpointer(str(tmp_path / "old"), async_save=False) as ckpt:
    ckpt.save(6, state, data_state, legacy)
  old, new = tiny_config(), tiny_config()
  old.process.time_scale, new.process.time_scale = 1.0, 1000.0
  with Checkpointer(str(tmp_path / "old"), read_only=True) as ckpt:
    restore_or_init(build_experiment(old), ckpt)
    assert "predates recorded process fields" in capsys.readouterr().out
    with pytest.raises(CheckpointMismatchError, match="--config.process.time_scale=1"):
      restore_or_init(build_experiment(new), ckpt)


def test_load_pretrained_refuses_meaning_overrides_and_takes_sampling_ones(tiny_config, uninterrupted,
                                                                          tmp_path):
  import bluediff
  from bluediff.export import export
  out = export(tiny_config(), uninterrupted, str(tmp_path / "export"))
  for field, value in (("process.time_scale", 10.0), ("process.sr_factor", 2), ("noise.kind", "red")):
    with pytest.raises(CheckpointMismatchError, match=field) as e:
      bluediff.load_pretrained(out, {field: value})
    assert "\n" not in str(e.value)
  model = bluediff.load_pretrained(out, {"sampling.num_steps": 2})
  assert model.config.sampling.num_steps == 2
  # an export from before process fields were recorded: the old time scale, or the hint
  meta = json.load(open(f"{out}/meta.json"))
  meta["signature"] = {k: v for k, v in meta["signature"].items() if k not in ("format", "fields")}
  json.dump(meta, open(f"{out}/meta.json", "w"))
  bluediff.load_pretrained(out)                 # its config.json says what it was trained with
  trained = tiny_config().process.time_scale
  with pytest.raises(CheckpointMismatchError, match=f"trained with process.time_scale={trained!r}"):
    bluediff.load_pretrained(out, {"process.time_scale": 10.0})
  with pytest.raises(Exception, match="no config field"):
    bluediff.load_pretrained(out, {"process.gamma.g": 1})
