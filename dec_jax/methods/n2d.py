"""N2D (McConville et al., 2019): UMAP of the autoencoder's embedding to k
dimensions, then a seeded full-covariance Gaussian mixture; the soft
assignment is the mixture's posterior (see dec_jax/core/n2d.py). UMAP and the
mixture run on the host, one member after the other; members with the same
seed, embedding and N2D settings (grid points over other stages' settings)
share one."""

from __future__ import annotations

import jax
import ml_collections
import numpy as np

from dec_jax.errors import DecJaxError
from dec_jax.methods.base import Method, register


def run(stack) -> list[dict]:
  model, params, pretrain_infos = stack.autoencoders()
  z = jax.device_get(stack.embed(model, params["encoder"]))
  results, outputs = [], []
  for i, cfg in enumerate(stack.configs):
    twin = next((j for j in range(i) if _same_n2d(stack.configs, z, i, j)),
                None)
    if twin is None:
      with stack.stage("n2d"):
        results.append(_cluster(z[i], stack.n_clusters, cfg))
    else:
      results.append(results[twin])
    result = results[i]
    stack.runs[i].log({"stage": "n2d", **result.info,
                       **stack.runs[i].score(result.labels)})
    outputs.append({
        "labels": result.labels, "soft_assignment": result.posteriors,
        "n_clusters": stack.n_clusters, **pretrain_infos[i],
        "n2d": {k: v for k, v in result.info.items() if not k.endswith("_s")},
        "times_s": {"umap": result.info["umap_s"],
                    "gmm": result.info["gmm_s"]}})
  return outputs


def _same_n2d(configs, z: np.ndarray, i: int, j: int) -> bool:
  """Whether members i and j have the same N2D: seed, settings, embedding
  (grid points over other stages' settings that share an autoencoder)."""
  return (configs[i].seed == configs[j].seed
          and configs[i].n2d.to_dict() == configs[j].n2d.to_dict()
          and np.array_equal(z[i], z[j]))


def _cluster(z: np.ndarray, n_clusters: int, cfg):
  from dec_jax.core import n2d as n2d_lib  # pylint: disable=g-import-not-at-top
  return n2d_lib.cluster(
      z, n_clusters, n_neighbors=cfg.n2d.n_neighbors,
      min_dist=cfg.n2d.min_dist, metric=cfg.n2d.metric,
      covariance_type=cfg.n2d.covariance_type,
      gmm_n_init=cfg.n2d.gmm_n_init, seed=cfg.seed)


def check(config) -> None:
  from dec_jax.core import n2d as n2d_lib  # pylint: disable=g-import-not-at-top
  n2d_lib.validate(config.n2d, config.n_clusters)


def check_size(config, n: int) -> None:
  if config.n2d.n_neighbors >= n:
    raise DecJaxError(f"n2d.n_neighbors ({config.n2d.n_neighbors}) must be "
                      f"below the number of samples ({n}).")


def n2d_section() -> ml_collections.ConfigDict:
  """config.n2d: UMAP and the Gaussian mixture (McConville et al., 2019)."""
  n2d = ml_collections.ConfigDict()
  n2d.n_neighbors = 20      # UMAP neighbours; n_components = k
  n2d.min_dist = 0.0
  n2d.metric = "euclidean"  # UMAP metric on the AE embedding
  n2d.covariance_type = "full"  # GMM: full | tied | diag | spherical
  n2d.gmm_n_init = 1
  return n2d


register(Method("n2d", run, "UMAP of the AE embedding + Gaussian mixture",
                check=check, check_size=check_size,
                config_sections={"n2d": n2d_section}))
