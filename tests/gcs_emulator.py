"""A local GCS JSON API for the tests: gcp-storage-emulator plus the generation semantics
that TensorStore needs.

Usage: python tests/gcs_emulator.py PORT BUCKET   (serves http://127.0.0.1:PORT in memory)

gcp-storage-emulator (the `test` extra) answers the JSON API, but its object download
sends no `x-goog-generation` header and it ignores the `ifGenerationMatch` /
`ifGenerationNotMatch` preconditions. Real GCS honours both, and TensorStore's OCDBT
(Orbax's array format) relies on them: without the header its reads fail with
"Malformed StorageGeneration", and without the preconditions two writers of one
manifest could overwrite each other unseen. This file adds exactly those semantics,
as GCS documents them, inside the emulator's own process, before it builds its routes;
the clients under test (gcsfs, TensorStore, Orbax) are untouched and talk real HTTP.
"""
import sys
import threading
from http import HTTPStatus

from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects

_LOCK = threading.RLock()     # objects.get calls objects.download


def _current(storage, bucket, name):
  try:
    return storage.get_file_obj(bucket, name)
  except NotFound:
    return None


def _query(request, key):
  v = request.query.get(key)
  return v[0] if v else None


def _precondition_failed(response):
  response.status = HTTPStatus.PRECONDITION_FAILED
  response.json({"error": {"code": 412, "message": "conditionNotMet"}})


def _generation_ok(request, response, obj) -> bool:
  """ifGenerationMatch (0: must not exist) and ifGenerationNotMatch (304 when equal)."""
  match, not_match = _query(request, "ifGenerationMatch"), _query(request, "ifGenerationNotMatch")
  gen = obj["generation"] if obj else "0"
  if match is not None and match != gen:
    _precondition_failed(response)
    return False
  if not_match is not None and obj is not None and not_match == gen:
    response.status = HTTPStatus.NOT_MODIFIED
    response["x-goog-generation"] = gen
    return False
  return True


def _wrap_read(handler):
  def read(request, response, storage, *args, **kwargs):
    with _LOCK:
      obj = _current(storage, request.params["bucket_name"], request.params["object_id"])
      if obj is not None and not _generation_ok(request, response, obj):
        return None
      out = handler(request, response, storage, *args, **kwargs)
      if obj is not None:
        response["x-goog-generation"] = obj["generation"]
        response["x-goog-metageneration"] = obj.get("metageneration", "1")
        response["x-goog-stored-content-length"] = obj.get("size", "0")
      return out
  return read


def _wrap_write(handler, name_of):
  def write(request, response, storage, *args, **kwargs):
    with _LOCK:
      name = name_of(request)
      if name is not None:
        obj = _current(storage, request.params["bucket_name"], name)
        if not _generation_ok(request, response, obj):
          return None
      return handler(request, response, storage, *args, **kwargs)
  return write


def _upload_name(request):
  name = _query(request, "name")
  if name is None and isinstance(getattr(request, "data", None), dict):
    name = (request.data.get("meta") or {}).get("name")
  return name


def install():
  objects.download = _wrap_read(objects.download)
  objects.get = _wrap_read(objects.get)
  objects.insert = _wrap_write(objects.insert, _upload_name)
  objects.delete = _wrap_write(objects.delete, lambda r: r.params["object_id"])


def main():
  import faulthandler, signal
  faulthandler.register(signal.SIGUSR1)
  port, bucket = int(sys.argv[1]), sys.argv[2]
  install()                                   # before the server module builds its routes
  from gcp_storage_emulator.server import create_server
  server = create_server("127.0.0.1", port, in_memory=True, default_bucket=bucket)
  server.run()


if __name__ == "__main__":
  main()
