"""k-means on the embedding of a pretrained autoencoder."""

from __future__ import annotations

from dec_jax.methods.base import Method, register


def run(stack) -> list[dict]:
  model, params, pretrain_infos = stack.autoencoders()
  z = stack.embed(model, params["encoder"])
  results, infos = stack.kmeans(list(z))
  return [{"labels": r.labels, "inertia": float(r.inertia),
           "n_clusters": int(r.centres.shape[0]), **pre, **info}
          for r, pre, info in zip(results, pretrain_infos, infos)]


register(Method("ae_kmeans", run,
                "k-means on a pretrained autoencoder's embedding"))
