"""One clustering from a stack's members, without any label.

S members (seeds, grid points) each give a partition of the same N points
into k clusters, with arbitrary cluster numbers. The consensus:

1. agreement: the ARI of every pair of members [S, S];
2. reference: the medoid member, the one of highest mean agreement with the
   others (a member that merged two classes agrees less with the rest);
3. alignment: each member's clusters renumbered to the reference's by the
   Hungarian match of their contingency table (maximum overlap);
4. combine, by `combine`:
   - `vote`: each point takes the cluster of highest summed (aligned) soft
     assignment over the members, or of most votes where only hard labels
     exist; ties go to the reference's cluster;
   - `kmeans`: k-means on the members' concatenated soft assignments [N, S k]
     (one-hot labels where there are none), its clusters renumbered to the
     reference's. No alignment enters the clustering itself.

A structured error that only some members make (DEC merging 4 and 9 in two
seeds of five) is outvoted point by point. Nothing here reads the true
labels: the result depends on the members' assignments only.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm

from dec_jax.core import kmeans as kmeans_lib

COMBINE = ("vote", "kmeans")
# Chosen on sets outside issue #15's goal (docs/consensus.md).
DEFAULT_COMBINE = "kmeans"


class Consensus(NamedTuple):
  labels: np.ndarray      # [N] the consensus partition
  reference: int          # index of the medoid member
  agreement: np.ndarray   # [S, S] pairwise ARI between members
  # [S, k]: member s's cluster c is the consensus's cluster alignments[s, c]
  alignments: np.ndarray


def agreement(labels: np.ndarray) -> np.ndarray:
  """[S, S] adjusted Rand index between every two members' labels [S, N]."""
  s = len(labels)
  out = np.eye(s)
  for i in range(s):
    for j in range(i + 1, s):
      out[i, j] = out[j, i] = skm.adjusted_rand_score(labels[i], labels[j])
  return out


def medoid(agreement_matrix: np.ndarray) -> int:
  """The member of highest mean agreement with the others (first on ties)."""
  s = len(agreement_matrix)
  others = (agreement_matrix.sum(axis=1) - 1.0) / max(s - 1, 1)
  return int(np.argmax(others))


def align(reference: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
  """[k] the reference's cluster for each of `labels`' clusters: the
  one-to-one match of maximum overlap (Hungarian), on [N] labels in [0, k)."""
  table = np.zeros((k, k), np.int64)
  np.add.at(table, (labels, reference), 1)
  rows, cols = linear_sum_assignment(table, maximize=True)
  mapping = np.empty(k, np.int64)
  mapping[rows] = cols
  return mapping


def consensus(labels: np.ndarray, k: int,
              soft: Optional[Sequence[np.ndarray]] = None, *,
              combine: str = DEFAULT_COMBINE, seed: int = 0) -> Consensus:
  """The consensus of members' labels [S, N] in [0, k) (see the module doc).

  soft: each member's soft assignment [N, k] (DEC's q), summed after
  alignment instead of counting votes; None where only labels exist.
  combine: `vote` or `kmeans`; seed: the k-means restarts' seed.
  """
  labels = np.asarray(labels, np.int64)
  if labels.ndim != 2 or len(labels) < 2:
    raise ValueError(f"consensus needs labels [S, N] with S >= 2 members, "
                     f"got shape {labels.shape}.")
  if labels.min() < 0 or labels.max() >= k:
    raise ValueError(f"member labels must lie in [0, {k}); got "
                     f"[{labels.min()}, {labels.max()}].")
  if combine not in COMBINE:
    raise ValueError(f"combine must be one of {COMBINE}, got {combine!r}.")
  agree = agreement(labels)
  ref = medoid(agree)
  mappings = np.stack([align(labels[ref], member, k) for member in labels])
  if combine == "kmeans":
    agreed = _kmeans_combined(labels, k, soft, seed)
    agreed = align(labels[ref], agreed, k)[agreed]
  else:
    agreed = _vote(labels, k, soft, mappings, ref)
  return Consensus(agreed, ref, agree, mappings)


def _vote(labels: np.ndarray, k: int, soft, mappings: np.ndarray,
          ref: int) -> np.ndarray:
  """[N] each point's cluster of highest aligned summed q (or vote count)."""
  n = labels.shape[1]
  votes = np.zeros((n, k))
  for s, member in enumerate(labels):
    if soft is None:
      np.add.at(votes, (np.arange(n), mappings[s][member]), 1.0)
    else:
      votes[:, mappings[s]] += np.asarray(soft[s], np.float64)
  # The reference breaks ties: a tiny bonus below any vote difference.
  votes[np.arange(n), labels[ref]] += 1e-6
  return np.argmax(votes, axis=1)


def _kmeans_combined(labels: np.ndarray, k: int, soft, seed: int,
                     n_init: int = 10) -> np.ndarray:
  """[N] k-means labels of the members' concatenated soft assignments."""
  parts = soft if soft is not None else [np.eye(k)[member] for member in labels]
  x = np.concatenate([np.asarray(p, np.float32) for p in parts], axis=1)
  result = kmeans_lib.fit_kmeans(x, k, seed=seed, n_init=n_init)
  return np.asarray(result.labels, np.int64)


def cluster_means(z: np.ndarray, labels: np.ndarray,
                  fallback: np.ndarray) -> np.ndarray:
  """[k, d] the mean of z [N, d] over each cluster of labels [N] in [0, k);
  fallback [k, d]'s row where a cluster is empty."""
  k = len(fallback)
  sums = np.zeros(fallback.shape, np.float64)
  np.add.at(sums, labels, z)
  counts = np.bincount(labels, minlength=k)[:, None]
  return np.where(counts > 0, sums / np.maximum(counts, 1),
                  fallback).astype(fallback.dtype)


def aligned(values: np.ndarray, alignment: np.ndarray) -> np.ndarray:
  """A member's per-cluster rows [k, ...] renumbered as the consensus's."""
  out = np.empty_like(values)
  out[alignment] = values
  return out
