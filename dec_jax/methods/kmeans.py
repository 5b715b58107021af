"""k-means on the raw (scaled) inputs: the first baseline of every paper."""

from __future__ import annotations

from dec_jax.methods.base import Method, register


def run(stack) -> list[dict]:
  x = stack.features()
  results, infos = stack.kmeans([x] * stack.size)
  return [{"labels": r.labels, "inertia": float(r.inertia),
           "n_clusters": int(r.centres.shape[0]), **info}
          for r, info in zip(results, infos)]


register(Method("kmeans", run, "k-means on the inputs (20 restarts)",
                needs_autoencoder=False, stages=(), streams=False))
