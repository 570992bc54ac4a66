"""Run paths: one layer over local disk and object storage.

Everything a run reads or writes (checkpoint manifests, metrics, TensorBoard
events, config.json, grids, samples, evaluations, exports, caches) goes through
these functions, so `--workdir=gs://bucket/run` works end to end. Files go
through `etils.epath` (which sends gs:// to gcsfs when TensorFlow is absent:
the backend this project supports and tests, against a local GCS emulator);
arrays of checkpoints go through Orbax and TensorStore, which read gs://
themselves.

Object storage has no append and no atomic rename, so the rules are:
* every write is one whole object (a GCS object appears complete or not at
  all); locally a temporary file and a rename give the same guarantee;
* files that grow (metrics.jsonl, event files) are written in a local staging
  directory and uploaded whole at each log interval and checkpoint (`Staging`);
* nothing is renamed on a remote path: a damaged checkpoint step gets a marker
  object (bluediff.checkpoint), and manifests use the sizes and hashes the
  object listing reports instead of downloading every object to hash it.

Only local paths and gs:// are supported; another scheme is refused with one line.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from typing import Any, Union

import numpy as np
from etils import epath

PathLike = Union[str, os.PathLike, epath.Path]
REMOTE_SCHEMES = ("gs://",)


class StorageError(ValueError):
  """A path that bluediff cannot use (an unsupported scheme, a missing client)."""


def is_remote(path: PathLike) -> bool:
  return str(path).startswith(REMOTE_SCHEMES)


def _check_scheme(s: str) -> None:
  if "://" in s and not s.startswith(REMOTE_SCHEMES):
    raise StorageError(f"{s}: only local paths and gs:// are supported")
  if s.startswith("gs://"):
    try:
      import gcsfs  # noqa: F401   (epath's gs:// backend without TensorFlow)
    except ImportError:
      raise StorageError(f"{s}: gs:// paths need gcsfs (pip install 'bluediff[gcs]')") from None


def run_path(path: PathLike) -> epath.Path:
  """An epath.Path for a run path: local ones absolute (with ~ expanded), gs:// as given."""
  s = os.fspath(path) if not isinstance(path, epath.Path) else str(path)
  _check_scheme(s)
  if is_remote(s):
    return epath.Path(s.rstrip("/"))
  return epath.Path(os.path.abspath(os.path.expanduser(s)))


def join(path: PathLike, *parts: str) -> str:
  """`path/part/...` as a string (a local path stays a plain path)."""
  return str(run_path(path).joinpath(*parts))


def parent(path: PathLike) -> str:
  return str(run_path(path).parent)


def basename(path: PathLike) -> str:
  return run_path(path).name


def exists(path: PathLike) -> bool:
  return run_path(path).exists()


def isdir(path: PathLike) -> bool:
  return run_path(path).is_dir()


def isfile(path: PathLike) -> bool:
  p = run_path(path)
  return p.exists() and not p.is_dir()


def makedirs(path: PathLike) -> None:
  """mkdir -p locally; nothing on object storage (prefixes exist once an object does)."""
  if not is_remote(path):
    os.makedirs(run_path(path), exist_ok=True)


def remove(path: PathLike) -> None:
  """Deletes a file or a whole tree; nothing if it is absent."""
  p = run_path(path)
  if not p.exists():
    return
  if is_remote(p):
    _fs().rm(_bare(p), recursive=True)
  elif p.is_dir():
    shutil.rmtree(p)
  else:
    p.unlink()


def rename_local(src: PathLike, dst: PathLike) -> None:
  """An atomic rename on local disk (object storage has none: never called for it)."""
  if is_remote(src) or is_remote(dst):
    raise StorageError(f"cannot rename {src} -> {dst} on object storage")
  os.replace(run_path(src), run_path(dst))


def listdir(path: PathLike) -> list[str]:
  """Names directly under a directory (empty if it does not exist)."""
  p = run_path(path)
  return sorted(c.name for c in p.iterdir()) if p.exists() else []


# ---------------------------------------------------------------- whole-object reads/writes

def write_bytes(path: PathLike, data: bytes) -> str:
  """Writes `data` as one whole object, or locally to a temporary name then renamed:
  a reader never sees half of it."""
  p = run_path(path)
  if is_remote(p):
    p.write_bytes(data)
  else:
    os.makedirs(p.parent, exist_ok=True)
    tmp = f"{p}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
      f.write(data)
    os.replace(tmp, p)
  return str(p)


def write_text(path: PathLike, text: str) -> str:
  return write_bytes(path, text.encode())


def write_json(path: PathLike, obj: Any, indent: int | None = 2) -> str:
  return write_text(path, json.dumps(obj, indent=indent))


def read_bytes(path: PathLike) -> bytes:
  return run_path(path).read_bytes()


def read_text(path: PathLike) -> str:
  return run_path(path).read_text()


def read_json(path: PathLike) -> Any:
  return json.loads(read_text(path))


def save_npz(path: PathLike, compressed: bool = False, **arrays) -> str:
  buf = io.BytesIO()
  (np.savez_compressed if compressed else np.savez)(buf, **arrays)
  return write_bytes(path, buf.getvalue())


def load_npz(path: PathLike) -> dict[str, np.ndarray]:
  """All arrays of an .npz file (read whole; never unpickles)."""
  with np.load(io.BytesIO(read_bytes(path)), allow_pickle=False) as f:
    return {k: f[k] for k in f.files}


def save_figure(fig, path: PathLike, **kwargs) -> str:
  """A matplotlib figure as one PNG object."""
  buf = io.BytesIO()
  fig.savefig(buf, format="png", **kwargs)
  return write_bytes(path, buf.getvalue())


def append_line(path: PathLike, line: str) -> None:
  """Appends one line: locally an append, remotely a read-modify-write of the object
  (for small, rarely written logs such as evaluations.jsonl)."""
  p = run_path(path)
  if not is_remote(p):
    os.makedirs(p.parent, exist_ok=True)
    with open(p, "a") as f:
      f.write(line.rstrip("\n") + "\n")
    return
  old = p.read_text() if p.exists() else ""
  p.write_text(old + line.rstrip("\n") + "\n")


# ---------------------------------------------------------------- listings for manifests

def _fs():
  """The very gcsfs instance etils.epath uses (fsspec caches one per arguments), so
  that both see one listing cache."""
  import fsspec
  return fsspec.filesystem("gcs", finalize_on_close=True)


def _bare(p: epath.Path) -> str:
  return str(p)[len("gs://"):]


def forget_listings(root: PathLike) -> None:
  """Drops the cached object listings at and under `root` (and its parents), so the
  next look sees what other processes wrote or deleted since. gcsfs caches every
  listing for the life of the process and only its own writes refresh it; TensorStore's
  writes and another process's (a killed run's, a peer host's) would go unseen.
  Local paths: nothing to do."""
  p = run_path(root)
  if not is_remote(p):
    return
  fs = _fs()
  base = _bare(p).rstrip("/")
  for key in [k for k in fs.dircache if k == base or k.startswith(base + "/")]:
    fs.dircache.pop(key, None)
  fs.invalidate_cache(base)        # the parents' listings


def listing(root: PathLike) -> dict[str, dict]:
  """Every file under `root`, by path relative to it: {"size", "md5", "crc32c"}.

  Remote: what the object listing reports (base64 MD5 and CRC32C; composite objects
  have no MD5), without downloading anything. Local: sizes only (md5/crc32c None).
  """
  p = run_path(root)
  out = {}
  if is_remote(p):
    base = _bare(p).rstrip("/") + "/"
    for name, info in _fs().find(_bare(p), detail=True).items():
      if info.get("type") == "directory" or name.endswith("/"):
        continue
      out[name[len(base):]] = {"size": int(info["size"]), "md5": info.get("md5Hash"),
                               "crc32c": info.get("crc32c")}
    return out
  for d, _, files in os.walk(p):
    for f in files:
      full = os.path.join(d, f)
      out[os.path.relpath(full, p)] = {"size": os.path.getsize(full), "md5": None, "crc32c": None}
  return out


def sha256(path: PathLike, chunk: int = 1 << 22) -> str:
  import hashlib
  h = hashlib.sha256()
  with run_path(path).open("rb") as f:
    while block := f.read(chunk):
      h.update(block)
  return h.hexdigest()


# ---------------------------------------------------------------- staging for growing files

class Staging:
  """A local directory that mirrors files which grow (logs, event files) of a run dir.

  Local run dirs are their own staging (sync is a no-op). For a remote run dir the
  files live in a temporary local directory and `sync()` uploads each changed file
  whole, so the remote copy is always a complete prefix of the log.
  """

  def __init__(self, workdir: PathLike):
    self.remote = is_remote(workdir)
    self.workdir = str(run_path(workdir))
    self.local = tempfile.mkdtemp(prefix="bluediff-staging-") if self.remote else self.workdir
    self._uploaded: dict[str, tuple[int, int]] = {}   # relative path -> (size, mtime_ns) sent

  def path(self, *parts: str) -> str:
    """The local path of a staged file (its directory exists)."""
    out = os.path.join(self.local, *parts)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    return out

  def dir(self, *parts: str) -> str:
    """A local staged directory (it exists), e.g. for TensorBoard's event files."""
    out = os.path.join(self.local, *parts)
    os.makedirs(out, exist_ok=True)
    return out

  def fetch(self, *parts: str) -> str | None:
    """Brings the run dir's copy of a staged file into staging; its local path, or None."""
    local = self.path(*parts)
    if self.remote:
      remote = join(self.workdir, *parts)
      if not exists(remote):
        return None
      with open(local, "wb") as f:
        f.write(read_bytes(remote))
    return local if os.path.exists(local) else None

  def open_log(self, name: str, keep) -> Any:
    """The staged log `name` opened for appending, holding only the lines of the run
    dir's copy for which keep(json record) is true (torn or foreign lines dropped)."""
    kept = []
    previous = self.fetch(name)
    if previous:
      with open(previous) as f:
        for line in f:
          try:
            if keep(json.loads(line)):
              kept.append(line.rstrip("\n") + "\n")
          except (ValueError, KeyError, TypeError):
            pass                               # a torn last line of a killed run
    path = self.path(name)
    with open(path, "w") as f:
      f.writelines(kept)
    return open(path, "a")

  def sync(self) -> list[str]:
    """Uploads the staged files changed since their last upload; their relative paths."""
    if not self.remote:
      return []
    sent = []
    for d, _, files in os.walk(self.local):
      for f in files:
        full = os.path.join(d, f)
        rel = os.path.relpath(full, self.local)
        st = os.stat(full)   # before the read: a write in between is sent again next time
        stamp = (st.st_size, st.st_mtime_ns)
        if self._uploaded.get(rel) == stamp:
          continue
        with open(full, "rb") as fh:
          write_bytes(join(self.workdir, *rel.split(os.sep)), fh.read())
        self._uploaded[rel] = stamp
        sent.append(rel)
    return sent

  def close(self) -> None:
    self.sync()
    if self.remote:
      shutil.rmtree(self.local, ignore_errors=True)
