"""Orbax checkpoints: round trip, exact resume, other device counts, mismatches."""
import json
import os

import jax
import numpy as np
import pytest

from bluediff.checkpoint import CheckpointMismatchError, Checkpointer
from bluediff.train import build_experiment, restore_or_init, train


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
