"""DEC's clustering objective as pure, jit-able functions (Xie et al., 2016)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def squared_distances(z: jax.Array, centres: jax.Array) -> jax.Array:
  """||z_i - mu_j||^2 for z [N, d] and centres [K, d] -> [N, K], clipped at 0.

  Both sides are first shifted by the centres' mean, which leaves distances
  unchanged but keeps the expansion of `expanded_squared_distances` from
  cancelling catastrophically in float32 when the data share a large offset
  (embeddings around 1e4 lose every digit otherwise). The shift is a
  constant for autodiff: the distances do not depend on it.
  """
  shift = jax.lax.stop_gradient(jnp.mean(centres, axis=0))
  return expanded_squared_distances(z - shift, centres - shift)


# Distances and centre sums are float32 matmuls whose rounding the code
# relies on: never lowered to TF32 / bf16 passes on accelerators.
FULL_PRECISION = jax.lax.Precision.HIGHEST


def expanded_squared_distances(z: jax.Array, centres: jax.Array,
                               z_sq: jax.Array | None = None) -> jax.Array:
  """|z_i|^2 - 2 z_i.mu_j + |mu_j|^2 [N, K], clipped at 0: one matmul.

  Accurate only when z [N, d] and centres [K, d] lie near the origin (the
  rounding error is eps * (|z|^2 + |mu|^2)); centre them first. The matmul
  asks for full float32 (TF32 on recent GPUs would make eps ~1e-3).
  `z_sq` [N, 1] is |z|^2 when the caller has it already (k-means' loop).
  """
  if z_sq is None:
    z_sq = jnp.sum(z * z, axis=1, keepdims=True)
  cross = jnp.matmul(z, centres.T, precision=FULL_PRECISION)
  d2 = z_sq - 2.0 * cross + jnp.sum(centres * centres, axis=1)[None, :]
  return jnp.maximum(d2, 0.0)


def soft_assign(z: jax.Array, centres: jax.Array,
                alpha: float = 1.0) -> jax.Array:
  """Student-t soft assignment Q.

  q_ij = (1 + ||z_i - mu_j||^2 / alpha)^(-(alpha + 1) / 2)
         / sum_j' (1 + ||z_i - mu_j'||^2 / alpha)^(-(alpha + 1) / 2)

  Args:
    z: embeddings [N, d].
    centres: cluster centres [K, d].
    alpha: degrees of freedom of the Student-t kernel (DEC uses 1).

  Returns:
    q [N, K], rows summing to 1. Computed as a softmax of log-kernels, which is
    the same quantity but stays finite for far-away points.
  """
  log_kernel = -(alpha + 1.0) / 2.0 * jnp.log1p(
      squared_distances(z, centres) / alpha)
  return jax.nn.softmax(log_kernel, axis=1)


def target_distribution(q: jax.Array) -> jax.Array:
  """DEC's auxiliary target P, sharper than Q and balanced by cluster size.

  p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j'),   f_j = sum_i q_ij.

  Must be computed on the whole data set (f_j is a sum over all points), then
  held fixed between updates. q [N, K] -> p [N, K], rows summing to 1; a
  column with f_j = 0 (q underflowed to 0 everywhere: a far centre, a large
  alpha) gets p = 0 rather than 0/0.
  """
  f = jnp.maximum(jnp.sum(q, axis=0), jnp.finfo(q.dtype).tiny)
  weight = q ** 2 / f
  return weight / jnp.sum(weight, axis=1, keepdims=True)


def kl_divergence(p: jax.Array, q: jax.Array, eps: float = 1e-12) -> jax.Array:
  """KL(P || Q) = sum_ij p_ij log(p_ij / q_ij), averaged over the N rows.

  p, q [N, K] -> scalar. Terms with p_ij = 0 contribute 0; `eps` guards the logs.
  """
  per_row = jnp.sum(p * (jnp.log(p + eps) - jnp.log(q + eps)), axis=1)
  return jnp.mean(per_row)


def label_change_fraction(new: jax.Array, old: jax.Array) -> jax.Array:
  """Fraction of points whose hard label differs between two snapshots."""
  return jnp.mean((new != old).astype(jnp.float32))


def cluster_sizes(labels: jax.Array, num_clusters: int) -> jax.Array:
  """Points per cluster, [K] int32 (0 marks an empty cluster)."""
  return jnp.bincount(labels, length=num_clusters)
