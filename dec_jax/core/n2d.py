"""N2D (McConville et al., 2019): UMAP of the autoencoder embedding, then a
Gaussian mixture.

The embedding z [N, d] of a pretrained autoencoder is mapped by UMAP to
n_components = k dimensions (20 neighbours, min_dist 0: tight, well separated
clumps), and a full-covariance Gaussian mixture with k components is fitted
there. The soft assignment is the mixture's posterior, the label its argmax.

Determinism: UMAP is seeded (`random_state`), which makes umap-learn run its
optimisation single-threaded (it overrides n_jobs to 1); the mixture is
seeded too, so a seed gives the same labels on the same machine and
libraries. umap-learn compiles its numba kernels the first time it runs in a
process (about 20 s on a 2-core CPU), and is only imported when N2D runs.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Any

import numpy as np

from dec_jax.errors import DecJaxError

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
# UMAP metrics that need no extra parameters (umap-learn has more).
METRICS = ("euclidean", "manhattan", "chebyshev", "cosine", "correlation",
           "canberra", "braycurtis")


@dataclasses.dataclass
class N2DResult:
  labels: np.ndarray       # [N] int32, argmax of the posteriors
  posteriors: np.ndarray   # [N, K] float32, the mixture's responsibilities
  embedding: np.ndarray    # [N, K] float32, UMAP's manifold
  info: dict[str, Any]     # mixture convergence and stage times


def validate(cfg, n_clusters) -> None:
  """Rejects bad `config.n2d` settings (and a missing umap-learn) early."""
  problems = []
  if n_clusters == "auto":
    problems.append("method=n2d needs a fixed n_clusters (UMAP's "
                    "n_components = k), not 'auto'")
  if not isinstance(cfg.n_neighbors, int) or cfg.n_neighbors < 2:
    problems.append(f"n2d.n_neighbors must be an integer >= 2, got "
                    f"{cfg.n_neighbors!r}")
  if not 0 <= cfg.min_dist <= 1:
    problems.append(f"n2d.min_dist must be in [0, 1], got {cfg.min_dist!r}")
  if cfg.metric not in METRICS:
    problems.append(f"unknown n2d.metric {cfg.metric!r}; expected one of "
                    f"{METRICS}")
  if cfg.covariance_type not in COVARIANCE_TYPES:
    problems.append(f"unknown n2d.covariance_type {cfg.covariance_type!r}; "
                    f"expected one of {COVARIANCE_TYPES}")
  if not isinstance(cfg.gmm_n_init, int) or cfg.gmm_n_init < 1:
    problems.append(f"n2d.gmm_n_init must be a positive integer, got "
                    f"{cfg.gmm_n_init!r}")
  if problems:
    raise DecJaxError("; ".join(problems) + ".")
  _import_umap()


def _import_umap():
  try:
    import umap  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise DecJaxError(
        f"method=n2d needs umap-learn ({e}); install it with "
        "`pip install -r requirements.txt` (umap-learn==0.5.12).") from None
  return umap


def manifold(z: np.ndarray, n_components: int, *, n_neighbors: int,
             min_dist: float, metric: str, seed: int) -> np.ndarray:
  """UMAP of z [N, d] to [N, n_components], seeded (hence single-threaded)."""
  umap = _import_umap()
  with warnings.catch_warnings():
    # "n_jobs value 1 overridden to 1 by setting random_state": wanted here.
    warnings.filterwarnings("ignore", message=".*overridden to 1.*")
    reducer = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors,
                        min_dist=min_dist, metric=metric, random_state=seed,
                        n_jobs=1)
    return np.asarray(reducer.fit_transform(np.asarray(z, np.float32)),
                      np.float32)


def fit_gmm(u: np.ndarray, n_clusters: int, *, covariance_type: str,
            seed: int, n_init: int = 1):
  """A seeded Gaussian mixture on u; returns (labels, posteriors, info)."""
  # pylint: disable-next=g-import-not-at-top
  from sklearn.mixture import GaussianMixture
  gmm = GaussianMixture(n_components=n_clusters,
                        covariance_type=covariance_type, n_init=n_init,
                        random_state=seed)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # ConvergenceWarning: reported in info
    gmm.fit(u.astype(np.float64))
  posteriors = gmm.predict_proba(u.astype(np.float64)).astype(np.float32)
  labels = np.argmax(posteriors, axis=1).astype(np.int32)
  info = {"gmm_converged": bool(gmm.converged_), "gmm_n_iter": int(gmm.n_iter_),
          "gmm_lower_bound": float(gmm.lower_bound_)}
  return labels, posteriors, info


def cluster(z: np.ndarray, n_clusters: int, *, n_neighbors: int = 20,
            min_dist: float = 0.0, metric: str = "euclidean",
            covariance_type: str = "full", gmm_n_init: int = 1,
            seed: int = 0) -> N2DResult:
  """N2D on an embedding z [N, d]: UMAP to k dimensions, then a GMM."""
  z = np.asarray(z, np.float32)
  if not 2 <= n_neighbors < z.shape[0]:
    raise DecJaxError(f"n2d.n_neighbors must be in [2, N) = [2, {z.shape[0]}),"
                      f" got {n_neighbors}.")
  start = time.perf_counter()
  u = manifold(z, n_clusters, n_neighbors=n_neighbors, min_dist=min_dist,
               metric=metric, seed=seed)
  umap_s = time.perf_counter() - start
  labels, posteriors, info = fit_gmm(u, n_clusters,
                                     covariance_type=covariance_type,
                                     seed=seed, n_init=gmm_n_init)
  info = {**info, "umap_s": umap_s,
          "gmm_s": time.perf_counter() - start - umap_s}
  return N2DResult(labels=labels, posteriors=posteriors, embedding=u,
                   info=info)
