"""Checkpoints: one small class over Orbax's CheckpointManager.

Each step directory holds three items: `state` (the TrainState, restored
into an abstract state that carries the current mesh's shardings, so a run
can resume on another device count), `data` (the Grain iterator's JSON state,
for an exact resume) and `meta` (what the weights mean: process, noise,
model config). Orbax writes to a temporary directory and renames it when
complete, so a run killed mid-save never leaves a step that looks finished.

Orbax keeps no checksums, so every finished step also gets a manifest
(`bluediff_manifest.json`: the sha256 of each of its files), written once the
save is complete. A step whose manifest is missing or does not match (a
truncated, missing or altered file) is skipped with a warning and never
loaded; on a writable run it is renamed `<step>.damaged` so training rewrites it.
"""
from __future__ import annotations

import json
import os
import threading
from typing import Any

import jax
import orbax.checkpoint as ocp

from bluediff import signature
from bluediff.cache import sha256_file

MANIFEST = "bluediff_manifest.json"


class CheckpointMismatchError(RuntimeError):
  """A checkpoint was written for a different model or process."""


class Checkpointer:
  """Saves and restores (state, data iterator state, meta) by step."""

  def __init__(self, directory: str, max_to_keep: int = 3, async_save: bool = True,
               read_only: bool = False):
    self.directory = os.path.abspath(directory)
    self._read_only = read_only
    self._lock = threading.Lock()
    self._sealer: threading.Thread | None = None
    if read_only and not os.path.isdir(self.directory):
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=not read_only, read_only=read_only,
        enable_async_checkpointing=async_save,
        cleanup_tmp_directories=not read_only)   # leftovers of a save that was killed
    self._manager = ocp.CheckpointManager(
        self.directory, options=options, item_names=("state", "data", "meta"))

  def latest_step(self) -> int | None:
    """The newest step whose manifest verifies (damaged or unfinished ones are skipped)."""
    if not self._read_only:
      self.wait()                             # seal this process's own finished saves first
    for step in sorted(self._manager.all_steps(), reverse=True):
      problem = self.verify(step)
      if problem is None:
        return step
      print(f"warning: checkpoint {self.directory}/{step} is skipped: {problem}")
      if not self._read_only and jax.process_index() == 0:
        os.replace(self._step_dir(step), self._step_dir(step) + ".damaged")
        self._manager.reload()
    return None

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def _step_dir(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def _files(self, step: int) -> list[str]:
    root = self._step_dir(step)
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root)
                  for f in fs if f != MANIFEST)

  def write_manifests(self) -> None:
    """Manifests for every finished step that lacks one (call after the saves completed)."""
    if self._read_only or jax.process_index() != 0:
      return
    with self._lock:
      self._write_manifests_locked()

  def _write_manifests_locked(self) -> None:
    for step in self._manager.all_steps():
      path = os.path.join(self._step_dir(step), MANIFEST)
      if not os.path.exists(path):
        files = {f: sha256_file(os.path.join(self._step_dir(step), f)) for f in self._files(step)}
        with open(path + ".tmp", "w") as fh:
          json.dump({"sha256": files}, fh)
        os.replace(path + ".tmp", path)

  def verify(self, step: int) -> str | None:
    """None if the step's files match its manifest, else what is wrong."""
    path = os.path.join(self._step_dir(step), MANIFEST)
    if not os.path.exists(path):
      return "no manifest (the save did not finish)"
    try:
      with open(path) as fh:
        expected = json.load(fh)["sha256"]
    except (OSError, ValueError, KeyError) as e:
      return f"unreadable manifest ({e})"
    present = set(self._files(step))
    missing = sorted(set(expected) - present)
    if missing:
      return f"missing file {missing[0]}"
    for f, digest in expected.items():
      if sha256_file(os.path.join(self._step_dir(step), f)) != digest:
        return f"{f} does not match its hash (truncated or altered)"
    return None

  def save(self, step: int, state, data_state: dict, meta: dict) -> None:
    """Starts an (asynchronous) save; a background thread seals it with its manifest as
    soon as it is complete, so a kill leaves at most that one step unsealed."""
    self._join_sealer()
    if jax.process_count() > 1:
      # Orbax's wait may hold a cross-process barrier: never from a side thread. Seal the
      # previous step here instead (a kill then loses at most two unsealed steps).
      self._seal()
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=ocp.args.JsonSave(data_state),
        meta=ocp.args.JsonSave(meta)), force=True)
    if jax.process_count() == 1:
      self._sealer = threading.Thread(target=self._seal, daemon=True)
      self._sealer.start()

  def _seal(self) -> None:
    self._manager.wait_until_finished()
    self.write_manifests()

  def _join_sealer(self) -> None:
    if self._sealer is not None:
      self._sealer.join()
      self._sealer = None

  def read_meta(self, step: int) -> dict:
    return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

  def restore(self, abstract_state, step: int | None = None,
              expected_meta: dict | None = None) -> tuple[Any, dict, dict]:
    """(state, data_state, meta) at `step` (default: the latest).

    abstract_state: a pytree of jax.ShapeDtypeStruct with shardings.
    expected_meta: this config's signature (bluediff.signature); a saved one that differs
      in any meaning field is refused with one line naming the fields.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no usable checkpoint in {self.directory}")
    problem = self.verify(step)
    if problem is not None:
      raise CheckpointMismatchError(f"checkpoint {self.directory}/{step} is damaged: {problem}")
    meta = self.read_meta(step)
    if expected_meta is not None:
      problem = signature.mismatch(meta, expected_meta, self._training_config())
      if problem:
        raise CheckpointMismatchError(
            f"checkpoint {self.directory}/{step} does not fit this config: {problem} "
            f"(use the matching config or a fresh --workdir)")
      if signature.is_legacy(meta):
        where = ("against the run's config.json" if self._training_config() is not None
                 else "only as far as its model, noise and data settings go")
        print(f"warning: checkpoint {self.directory}/{step} predates recorded process fields; "
              f"checked {where}")
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

  def _training_config(self) -> dict | None:
    """The run's config.json beside `checkpoints/` (written once a run has restored or
    initialised its state, so it is the config the checkpoints were trained with)."""
    path = os.path.join(os.path.dirname(self.directory), "config.json")
    try:
      with open(path) as f:
        return json.load(f)
    except (OSError, ValueError):
      return None

  def wait(self) -> None:
    self._join_sealer()
    self._manager.wait_until_finished()
    self.write_manifests()

  def close(self) -> None:
    self.wait()
    self._manager.close()

  def __enter__(self) -> "Checkpointer":
    return self

  def __exit__(self, *exc) -> None:
    self.close()   # also on errors: Orbax's background threads must not outlive us


def abstract_like(tree, sharding) -> Any:
  """ShapeDtypeStructs of `tree` (arrays or ShapeDtypeStructs) placed with `sharding`."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)
