"""Choosing the number of clusters when it is unknown (`n_clusters=auto`).

Criterion: the silhouette coefficient (Rousseeuw 1987) of a k-means
clustering of the features, for every k in [k_min, k_max]; the k with the
highest silhouette wins. On the embedding of a pretrained autoencoder for the
deep methods, on the inputs for plain k-means. The silhouette is computed on
a fixed random sample of at most `sample_size` points (it is O(N^2)).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from sklearn.metrics import silhouette_score

CRITERION = "silhouette"


def silhouette_curve(features: np.ndarray, ks: range,
                     cluster: Callable[[int], np.ndarray], *, seed: int,
                     sample_size: int = 5000) -> dict[int, float]:
  """{k: silhouette of cluster(k)'s labels} over the ks.

  `cluster(k)` returns hard labels [N] for k clusters (e.g. k-means).
  """
  features = np.asarray(features)
  rng = np.random.default_rng(seed)
  sample = rng.choice(features.shape[0], min(sample_size, features.shape[0]),
                      replace=False)
  # sklearn's distances expand |a|^2 - 2 a.b + |b|^2, which a large common
  # offset ruins even in float64; the silhouette is translation invariant.
  points = np.asarray(features[sample], np.float64)
  points -= points.mean(axis=0)
  curve = {}
  for k in ks:
    labels = np.asarray(cluster(k))[sample]
    # The silhouette needs 2 <= #labels <= #points - 1; else it is undefined.
    curve[k] = (float(silhouette_score(points, labels))
                if 1 < np.unique(labels).size < sample.size else -1.0)
  return curve


def best_k(curve: dict[int, float]) -> int:
  """The k of the highest silhouette (the smallest such k on a tie)."""
  return max(curve, key=lambda k: (curve[k], -k))
