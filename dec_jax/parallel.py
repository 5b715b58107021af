"""Data parallelism with `jax.sharding`: one mesh axis, `data`, over devices.

Inside `with jax.set_mesh(data_mesh())`, every compiled function of the
library splits the rows of its minibatches, embedding chunks and k-means
distance blocks over the devices (`shard_rows`), while parameters, optimizer
state and the resident data set are replicated (`replicate`). XLA (GSPMD)
inserts the all-reduce of the gradients and of k-means' sums, so the code of
a step is the same on 1 or many devices, and on several hosts once
`jax.distributed.initialize()` has made all their devices visible.
Without a mesh, `shard_rows` does nothing.

Any number of rows works on any number of devices, with the one-device
result. Inside `jit`, XLA's partitioner splits rows that do not divide
evenly by padding them internally and leaving the padding out of every
reduction, gradient and scatter, so the compiled steps need no mask of
their own (tests/test_devices.py checks each stage). Eagerly, JAX only
splits rows that divide: code that may run outside `jit` pads them to a
multiple of `data_axis_size()` first (`pad_rows`) and drops the padding
after, as `batching.map_in_chunks` does.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA = "data"


def data_mesh(num_devices: int = 0) -> Optional[Mesh]:
  """A 1-D mesh over the first `num_devices` devices (0: all of them, on
  every host), or None when that is a single device."""
  devices = jax.devices()
  n = num_devices or len(devices)
  if not 1 <= n <= len(devices):
    raise ValueError(f"asked for {n} devices, {len(devices)} available")
  if n == 1:
    return None
  return jax.make_mesh((n,), (DATA,), axis_types=(AxisType.Auto,),
                       devices=devices[:n])


def shard_rows(x: jax.Array) -> jax.Array:
  """x with its leading (row) axis split over the current mesh's `data`
  axis; unchanged outside a mesh. Use inside jitted functions, where any
  row count works; eagerly, rows that do not divide stay whole (exact,
  only not parallel: pad them first with `pad_rows`)."""
  if not _in_data_mesh():
    return x
  if (not isinstance(x, jax.core.Tracer)
      and x.shape[0] % data_axis_size()):
    return x
  return jax.lax.with_sharding_constraint(
      x, PartitionSpec(DATA, *([None] * (x.ndim - 1))))


def data_axis_size() -> int:
  """Number of devices the current mesh's `data` axis splits rows over; 1
  outside a mesh. Static at trace time: shapes are padded to a multiple."""
  if not _in_data_mesh():
    return 1
  return jax.sharding.get_abstract_mesh().shape[DATA]


def pad_rows(x: jax.Array, multiple: Optional[int] = None) -> jax.Array:
  """x [N, ...] with zero rows appended up to a multiple of `multiple`
  (default: `data_axis_size()`); x itself when N divides already, so the
  one-device path is untouched. Callers drop the padding (`[:N]`) or mask
  it out of their sums."""
  multiple = multiple or data_axis_size()
  pad = -x.shape[0] % multiple
  if not pad:
    return x
  return jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))


def gather(tree: Any) -> Any:
  """Every array of `tree` whole on each device of the current mesh, so the
  host of every process can read it; unchanged outside a mesh. Use inside
  jitted functions, on the outputs the host reads."""
  if not _in_data_mesh():
    return tree
  return jax.lax.with_sharding_constraint(tree, PartitionSpec())


def _in_data_mesh() -> bool:
  """Whether the code is traced inside a mesh with a `data` axis."""
  mesh = jax.sharding.get_abstract_mesh()
  return not mesh.empty and DATA in mesh.axis_names


def current_mesh() -> Optional[Mesh]:
  """The mesh of the enclosing `jax.set_mesh`, or None outside one."""
  mesh = jax.sharding.get_mesh()
  return None if mesh.empty else mesh


def replicated(mesh: Optional[Mesh]) -> jax.sharding.Sharding:
  """Whole arrays on every device of `mesh`; for None, on this process's
  first device (where JAX puts arrays by default)."""
  if mesh is None:
    return jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return NamedSharding(mesh, PartitionSpec())


def replicate(tree: Any, mesh: Optional[Mesh]) -> Any:
  """Puts every array of `tree` on all devices of `mesh` (no-op for None)."""
  if mesh is None:
    return tree
  return jax.device_put(tree, replicated(mesh))


def initialize_distributed(coordinator: Optional[str] = None,
                           num_processes: Optional[int] = None,
                           process_id: Optional[int] = None) -> None:
  """Joins this process to a multi-host run (`jax.distributed.initialize`).

  With no arguments JAX finds them itself on SLURM, Open MPI and Cloud TPU;
  otherwise give the coordinator's `host:port`, the number of processes and
  this one's index (process 0 writes the workdir). Must run before any other
  JAX call. CPU devices exchange data through gloo (GPU/TPU are unaffected).
  """
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator,
                             num_processes=num_processes,
                             process_id=process_id)
