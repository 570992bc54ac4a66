"""Checkpoints: one small class over Orbax's CheckpointManager.

Each step directory holds three items: `state` (the TrainState, restored
into an abstract state that carries the current mesh's shardings, so a run
can resume on another device count), `data` (the Grain iterator's JSON state,
for an exact resume) and `meta` (what the weights mean: process, noise,
model config). Orbax writes to a temporary directory and renames it when
complete, so a run killed mid-save never leaves a step that looks finished.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


class CheckpointMismatchError(RuntimeError):
  """A checkpoint was written for a different model or process."""


class Checkpointer:
  """Saves and restores (state, data iterator state, meta) by step."""

  def __init__(self, directory: str, max_to_keep: int = 3, async_save: bool = True,
               read_only: bool = False):
    self.directory = os.path.abspath(directory)
    if read_only and not os.path.isdir(self.directory):
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=not read_only, read_only=read_only,
        enable_async_checkpointing=async_save,
        cleanup_tmp_directories=not read_only)   # leftovers of a save that was killed
    self._manager = ocp.CheckpointManager(
        self.directory, options=options, item_names=("state", "data", "meta"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state, data_state: dict, meta: dict) -> None:
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=ocp.args.JsonSave(data_state),
        meta=ocp.args.JsonSave(meta)), force=True)

  def read_meta(self, step: int) -> dict:
    return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

  def restore(self, abstract_state, step: int | None = None,
              expected_meta: dict | None = None) -> tuple[Any, dict, dict]:
    """(state, data_state, meta) at `step` (default: the latest).

    abstract_state: a pytree of jax.ShapeDtypeStruct with shardings.
    expected_meta: keys that must match the saved meta (else a clear error).
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    meta = self.read_meta(step)
    for k, v in (expected_meta or {}).items():
      if meta.get(k) != v:
        raise CheckpointMismatchError(
            f"checkpoint {self.directory}/{step} was written with {k}={meta.get(k)!r}, "
            f"but this config has {k}={v!r}; use a fresh --workdir or the matching config")
    try:
      items = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state),
          data=ocp.args.JsonRestore()))
    except ValueError as e:
      if "do not match" not in str(e) and "structure" not in str(e):
        raise
      raise CheckpointMismatchError(
          f"checkpoint {self.directory}/{step} holds a train state of another layout (written "
          f"by another bluediff version or model); use a fresh --workdir") from None
    return items["state"], items["data"], meta

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()

  def __enter__(self) -> "Checkpointer":
    return self

  def __exit__(self, *exc) -> None:
    self.close()   # also on errors: Orbax's background threads must not outlive us


def abstract_like(tree, sharding) -> Any:
  """ShapeDtypeStructs of `tree` (arrays or ShapeDtypeStructs) placed with `sharding`."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)
