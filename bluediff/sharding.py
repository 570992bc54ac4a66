"""The device mesh and how arrays are laid out on it.

One "data" axis over every device of every process: the batch is split over
it (P('data')) and the train state is replicated (P()). This is the jit + mesh
form of data parallelism; it runs unchanged on one CPU, fake CPU devices, a
GPU host or a TPU pod slice.
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P


def make_mesh(mesh_config) -> Mesh:
  """A 1-D ('data',) mesh over `mesh_config.data` devices (-1: all of them)."""
  devices = jax.devices()
  n = len(devices) if mesh_config.data in (-1, 0) else mesh_config.data
  if n > len(devices) or len(devices) % n:
    raise ValueError(f"config.mesh.data={mesh_config.data} does not fit the "
                     f"{len(devices)} available devices")
  return Mesh(np.asarray(devices[:n]), ("data",), axis_types=(AxisType.Auto,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def check_divisible(batch_size: int, mesh: Mesh, what: str = "training.batch_size") -> None:
  """One clear line, before anything compiles, when a batch can't be split."""
  n = mesh.devices.size
  if batch_size % n:
    raise ValueError(f"config.{what}={batch_size} does not divide over the {n} devices "
                     f"of the mesh; use a multiple of {n}")


def host_to_global(local_batch: np.ndarray, mesh: Mesh) -> jax.Array:
  """This process's rows of the batch -> the global array sharded on 'data'."""
  return jax.make_array_from_process_local_data(batch_sharding(mesh), local_batch)


def to_host(x: jax.Array) -> np.ndarray:
  """A (possibly multi-process) global array, gathered to every host as numpy."""
  if x.is_fully_addressable:
    return np.asarray(x)
  from jax.experimental import multihost_utils
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def shard_replicated_batch(batch: np.ndarray, mesh: Mesh) -> jax.Array:
  """A batch every process holds in full -> the global array sharded on 'data'.

  Each process contributes its contiguous block of rows (the mesh orders
  devices by process), so no data moves between hosts.
  """
  n, p = len(batch), jax.process_count()
  rows = n // p
  local = batch[jax.process_index() * rows:(jax.process_index() + 1) * rows]
  return host_to_global(local, mesh)


def replicate(tree, mesh: Mesh):
  """Host values (the same on every process) -> global arrays replicated over the mesh.

  Unlike `jax.device_put`, this also works when the mesh spans processes
  (each process fills its own devices). PRNG key arrays go through their data.
  """
  sh = replicated(mesh)

  def one(x):
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(one(jax.random.key_data(x)), impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sh, lambda idx: host[idx])
  return jax.tree.map(one, tree)
