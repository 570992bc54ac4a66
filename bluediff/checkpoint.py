"""Checkpoints: one small class over Orbax's CheckpointManager.

Each step directory holds three items: `state` (the TrainState, restored
into an abstract state that carries the current mesh's shardings, so a run
can resume on another device count), `data` (the Grain iterator's JSON state,
for an exact resume) and `meta` (what the weights mean: process, noise,
model config). Orbax writes to a temporary directory and renames it when
complete, so a run killed mid-save never leaves a step that looks finished.

Orbax keeps no checksums, so every finished step also gets a manifest
(`bluediff_manifest.json`), written once the save is complete: each file's size
and, locally, its sha256; on object storage the MD5 and CRC32C that the object
listing reports (so sealing and checking a step downloads nothing). A step whose
manifest is missing or does not match (a truncated, missing or altered file) is
skipped with a warning and never loaded. On a writable run a damaged local step
is renamed `<step>.damaged`; object storage has no rename, so a remote one gets
a marker object `<step>.damaged` beside it instead, and its objects are deleted
only when training writes that step anew.

The directory may be local or gs:// (bluediff.storage).
"""
from __future__ import annotations

import threading
from typing import Any

import jax
import orbax.checkpoint as ocp

from bluediff import signature, storage

MANIFEST = "bluediff_manifest.json"
DAMAGED = ".damaged"


class CheckpointMismatchError(RuntimeError):
  """A checkpoint was written for a different model or process."""


class Checkpointer:
  """Saves and restores (state, data iterator state, meta) by step."""

  def __init__(self, directory: str, max_to_keep: int = 3, async_save: bool = True,
               read_only: bool = False):
    self.directory = str(storage.run_path(directory))
    self.remote = storage.is_remote(self.directory)
    self._read_only = read_only
    self._lock = threading.Lock()
    self._sealer: threading.Thread | None = None
    storage.forget_listings(self.directory)   # what other processes did since we last looked
    if read_only and not storage.isdir(self.directory):
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=not read_only, read_only=read_only,
        enable_async_checkpointing=async_save,
        cleanup_tmp_directories=not read_only)   # leftovers of a save that was killed
    self._manager = ocp.CheckpointManager(
        storage.run_path(self.directory), options=options, item_names=("state", "data", "meta"))

  def latest_step(self) -> int | None:
    """The newest step whose manifest verifies (damaged or unfinished ones are skipped)."""
    if not self._read_only:
      self.wait()                             # seal this process's own finished saves first
    storage.forget_listings(self.directory)
    self._manager.reload()
    for step in sorted(self._manager.all_steps(), reverse=True):
      problem = self.verify(step)
      if problem is None:
        return step
      print(f"warning: checkpoint {self.directory}/{step} is skipped: {problem}")
      if not self._read_only and jax.process_index() == 0:
        self._set_aside(step, problem)
    return None

  def _set_aside(self, step: int, problem: str) -> None:
    """Keeps a damaged step out of every later listing, losing nothing."""
    if self.remote:
      if not storage.exists(self._marker(step)):
        storage.write_text(self._marker(step), problem + "\n")
    else:
      storage.rename_local(self._step_dir(step), self._step_dir(step) + DAMAGED)
      self._manager.reload()

  def _marker(self, step: int) -> str:
    return storage.join(self.directory, f"{step}{DAMAGED}")

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def _step_dir(self, step: int) -> str:
    return storage.join(self.directory, str(step))

  def _listing(self, step: int) -> dict[str, dict]:
    return {f: v for f, v in storage.listing(self._step_dir(step)).items() if f != MANIFEST}

  def write_manifests(self) -> None:
    """Manifests for every finished step that lacks one (call after the saves completed)."""
    if self._read_only or jax.process_index() != 0:
      return
    with self._lock:
      self._write_manifests_locked()

  def _write_manifests_locked(self) -> None:
    for step in self._manager.all_steps():
      path = storage.join(self._step_dir(step), MANIFEST)
      if storage.exists(path) or (self.remote and storage.exists(self._marker(step))):
        continue
      files = {}
      for f, info in self._listing(step).items():
        entry = {"size": info["size"]}
        if self.remote:      # what the listing reports: nothing is downloaded
          entry.update(md5=info["md5"], crc32c=info["crc32c"])
        else:
          entry["sha256"] = storage.sha256(storage.join(self._step_dir(step), f))
        files[f] = entry
      storage.write_json(path, {"files": files}, indent=None)   # one whole object

  def verify(self, step: int) -> str | None:
    """None if the step's files match its manifest, else what is wrong."""
    if self.remote and storage.exists(self._marker(step)):
      return "marked damaged (" + storage.read_text(self._marker(step)).strip() + ")"
    path = storage.join(self._step_dir(step), MANIFEST)
    if not storage.exists(path):
      return "no manifest (the save did not finish)"
    try:
      manifest = storage.read_json(path)
      expected = (manifest["files"] if "files" in manifest      # since issue 18
                  else {f: {"sha256": d} for f, d in manifest["sha256"].items()})
    except (OSError, ValueError, KeyError, TypeError) as e:
      return f"unreadable manifest ({e})"
    present = self._listing(step)
    missing = sorted(set(expected) - set(present))
    if missing:
      return f"missing file {missing[0]}"
    for f, want in expected.items():
      got = present[f]
      if "size" in want and want["size"] != got["size"]:
        return f"{f} has {got['size']} bytes, its manifest {want['size']} (truncated or altered)"
      for key in ("md5", "crc32c"):      # the listing's hashes, when both sides have one
        if want.get(key) and got.get(key):
          if want[key] != got[key]:
            return f"{f} does not match its {key} (altered)"
          break
      else:
        if want.get("sha256") and storage.sha256(storage.join(self._step_dir(step), f)) != want["sha256"]:
          return f"{f} does not match its hash (truncated or altered)"
    return None

  def save(self, step: int, state, data_state: dict, meta: dict) -> None:
    """Starts an (asynchronous) save; a background thread seals it with its manifest as
    soon as it is complete, so a kill leaves at most that one step unsealed."""
    self._join_sealer()
    if self.remote:
      # a damaged remote step being written anew: its old objects go now (process 0
      # decides; the others wait for it, so no one writes into the old objects)
      cleared = jax.process_index() == 0 and storage.exists(self._marker(step))
      if cleared:
        storage.remove(self._step_dir(step))
        storage.remove(self._marker(step))
      if jax.process_count() > 1:      # only process 0 knows: everyone waits and relists
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(f"bluediff-clear-step-{step}")
        cleared = True
      if cleared:
        self._manager.reload()
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
    path = storage.join(storage.parent(self.directory), "config.json")
    try:
      return storage.read_json(path)
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
