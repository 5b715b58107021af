"""Minibatch index plans computed on the device, so whole loops run in one scan."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dec_jax import parallel


def epoch_indices(key: jax.Array, num_samples: int, num_steps: int,
                  batch_size: int) -> jax.Array:
  """Indices [num_steps, batch_size]: consecutive shuffled passes over the data.

  Passes (random permutations of all `num_samples` points) are concatenated
  and cut into `num_steps` full batches, so within a pass no sample repeats;
  a batch that straddles two passes may hold a sample twice. Every batch has
  the same static shape: no short last batch, nothing recompiles. A plan
  shorter than one pass (e.g. a DEC interval of 140 x 256 on 70k points)
  sees a random subset of the data, different in each interval.
  """
  needed = num_steps * batch_size
  num_passes = -(-needed // num_samples)
  keys = jax.random.split(key, num_passes)
  order = jax.vmap(lambda k: jax.random.permutation(k, num_samples))(keys)
  return order.reshape(-1)[:needed].reshape(num_steps, batch_size)


def split_pass_key(key: jax.Array, stochastic: bool):
  """(shuffling key, key of the per-step randomness, e.g. augmentation, or
  None) of one epoch or DEC interval."""
  if not stochastic:
    return key, None
  return tuple(jax.random.split(key))


def map_in_chunks(fn, x: jax.Array, chunk_size: int) -> jax.Array:
  """fn applied to x [N, ...] in chunks of `chunk_size` rows (bounded memory).

  Each chunk's rows are split over the current mesh's devices. The rows are
  zero-padded to whole chunks, and chunks to a multiple of the device count
  (JAX splits only such rows outside `jit`), the padding dropped after: any
  N works on any number of devices. fn must treat rows independently.
  """
  sharded_fn = lambda chunk: fn(parallel.shard_rows(chunk))
  n = x.shape[0]
  devices = parallel.data_axis_size()
  chunk_size = -(-chunk_size // devices) * devices
  if n <= chunk_size:
    return parallel.gather(sharded_fn(parallel.pad_rows(x))[:n])
  num_chunks = -(-n // chunk_size)
  chunks = parallel.pad_rows(x, chunk_size).reshape(
      (num_chunks, chunk_size) + x.shape[1:])
  out = jax.lax.map(sharded_fn, chunks)
  return parallel.gather(
      out.reshape((num_chunks * chunk_size,) + out.shape[2:])[:n])


def as_features(x: jax.Array, divisor: float) -> jax.Array:
  """Stored inputs -> float32 features x / divisor. Inputs kept as uint8 on
  the device (a quarter of float32's memory) are decoded here, per minibatch
  or chunk, inside the compiled steps; float32 inputs pass unchanged."""
  if x.dtype == jnp.float32 and divisor == 1.0:
    return x
  return x.astype(jnp.float32) / divisor
