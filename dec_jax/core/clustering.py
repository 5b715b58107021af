"""DEC's clustering objective as pure, jit-able functions (Xie et al., 2016)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def squared_distances(z: jax.Array, centres: jax.Array) -> jax.Array:
  """||z_i - mu_j||^2 for z [N, d] and centres [K, d] -> [N, K], clipped at 0."""
  d2 = (jnp.sum(z * z, axis=1, keepdims=True) - 2.0 * z @ centres.T
        + jnp.sum(centres * centres, axis=1)[None, :])
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
  held fixed between updates. q [N, K] -> p [N, K], rows summing to 1.
  """
  weight = q ** 2 / jnp.sum(q, axis=0)
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
