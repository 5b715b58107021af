"""k-means in JAX: greedy k-means++ seeding and Lloyd iterations.

All `n_init` restarts run in one compiled program (vmapped on accelerators,
one after the other on CPU); the restart with the lowest inertia wins.
scikit-learn's KMeans stays available as a backend (and is the oracle of the
tests).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dec_jax import parallel
from dec_jax.core.clustering import squared_distances
from dec_jax.errors import DecJaxError

BACKENDS = ("jax", "sklearn")


class KMeansResult(NamedTuple):
  centres: jax.Array  # [K, D]
  labels: jax.Array   # [N] int32
  inertia: jax.Array  # scalar: sum of squared distances to the nearest centre
  n_iter: jax.Array   # Lloyd iterations run by the winning restart


def kmeans_plusplus(key: jax.Array, x: jax.Array, k: int) -> jax.Array:
  """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007; as in sklearn).

  Each new centre is the best of 2 + ln(k) candidates drawn with probability
  proportional to the squared distance to the nearest chosen centre.
  x [N, D] -> centres [K, D].
  """
  x = jnp.asarray(x)
  n = x.shape[0]
  n_candidates = 2 + int(math.log(k))
  key, first_key = jax.random.split(key)
  first = x[jax.random.randint(first_key, (), 0, n)]
  centres = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(first)
  closest = squared_distances(x, first[None])[:, 0]

  def add_centre(i, carry):
    centres, closest, key = carry
    key, sample_key = jax.random.split(key)
    # All-zero distances (duplicate points) fall back to uniform sampling.
    logits = jnp.where(jnp.sum(closest) > 0, jnp.log(closest), 0.0)
    candidates = jax.random.categorical(sample_key, logits, shape=(n_candidates,))
    new_closest = jnp.minimum(closest[:, None],
                              squared_distances(x, x[candidates]))
    best = jnp.argmin(jnp.sum(new_closest, axis=0))
    return (centres.at[i].set(x[candidates[best]]), new_closest[:, best], key)

  centres, _, _ = jax.lax.fori_loop(1, k, add_centre, (centres, closest, key))
  return centres


def lloyd(x: jax.Array, centres: jax.Array, max_iter: int,
          tol: float) -> KMeansResult:
  """Lloyd iterations until the total squared centre shift is <= `tol`.

  An empty cluster keeps its previous centre. x [N, D], centres [K, D].
  """
  k = centres.shape[0]

  def assign(centres):
    d2 = squared_distances(x, centres)
    labels = jnp.argmin(d2, axis=1)
    return labels, jnp.sum(jnp.min(d2, axis=1))

  def update(carry):
    centres, _, i = carry
    labels, _ = assign(centres)
    # One-hot matmul rather than a scatter: dense, fast on every backend, and
    # x is not copied per restart under vmap.
    one_hot = jax.nn.one_hot(labels, k, dtype=x.dtype)
    sums = one_hot.T @ x
    counts = jnp.sum(one_hot, axis=0)
    new = jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1)[:, None],
                    centres)
    return new, jnp.sum((new - centres) ** 2), i + 1

  def not_done(carry):
    _, shift, i = carry
    return (i < max_iter) & (shift > tol)

  centres, _, n_iter = jax.lax.while_loop(
      not_done, update, (centres, jnp.array(jnp.inf, x.dtype), 0))
  labels, inertia = assign(centres)
  return KMeansResult(centres, labels.astype(jnp.int32), inertia, n_iter)


@functools.partial(jax.jit, static_argnames=("k", "n_init", "max_iter",
                                             "vmap_restarts"))
def kmeans_jax(key: jax.Array, x: jax.Array, k: int, n_init: int = 20,
               max_iter: int = 300, tol: float = 1e-4,
               vmap_restarts: bool = True) -> KMeansResult:
  """k-means with `n_init` restarts; returns the lowest-inertia one.

  `tol` is relative to the mean per-feature variance of x, as in sklearn.
  With `vmap_restarts` all restarts run as one batched computation (what an
  accelerator wants; every restart then iterates until the slowest one
  converges); otherwise one after the other in a `lax.map`, each stopping at
  its own convergence on cache-sized [N, k] blocks: 3x faster on a CPU.
  """
  x = parallel.shard_rows(x)
  abs_tol = tol * jnp.mean(jnp.var(x, axis=0))

  def one_restart(key):
    return lloyd(x, kmeans_plusplus(key, x, k), max_iter, abs_tol)

  keys = jax.random.split(key, n_init)
  runs = (jax.vmap(one_restart)(keys) if vmap_restarts
          else jax.lax.map(one_restart, keys))
  best = jnp.argmin(runs.inertia)
  return parallel.gather(jax.tree.map(lambda a: a[best], runs))


def kmeans_sklearn(seed: int, x: np.ndarray, k: int, n_init: int = 20,
                   max_iter: int = 300, tol: float = 1e-4) -> KMeansResult:
  """scikit-learn's KMeans with the same interface (runs on the host)."""
  from sklearn.cluster import KMeans  # pylint: disable=g-import-not-at-top
  km = KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, tol=tol,
              random_state=seed).fit(np.asarray(x, np.float64))
  return KMeansResult(jnp.asarray(km.cluster_centers_, jnp.float32),
                      jnp.asarray(km.labels_, jnp.int32),
                      jnp.asarray(km.inertia_, jnp.float32),
                      jnp.asarray(km.n_iter_))


def fit_kmeans(x: jax.Array | np.ndarray, k: int, *, seed: int,
               n_init: int = 20, max_iter: int = 300, tol: float = 1e-4,
               backend: str = "jax") -> KMeansResult:
  """k-means on x [N, D] with the chosen backend; checks k against N."""
  n = x.shape[0]
  if not 2 <= k <= n:
    raise DecJaxError(f"n_clusters must be between 2 and the number of "
                      f"samples ({n}), got {k}.")
  if backend == "jax":
    return kmeans_jax(jax.random.key(seed), jnp.asarray(x), k, n_init,
                      max_iter, tol,
                      vmap_restarts=jax.default_backend() != "cpu")
  if backend == "sklearn":
    return kmeans_sklearn(seed, np.asarray(x), k, n_init, max_iter, tol)
  raise DecJaxError(f"Unknown k-means backend {backend!r}; expected one of "
                    f"{BACKENDS}.")
