"""Clustering scores: ACC (Hungarian match), NMI (arithmetic mean), ARI.

Computed on the host with NumPy / SciPy / scikit-learn: they run once per
target update, on labels, and are not part of any compiled step.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm

# Stated explicitly: sklearn's default changed from 'geometric' in 0.22.
NMI_AVERAGE = "arithmetic"
SCORES = ("acc", "nmi", "ari")  # what `evaluate` returns


def contingency(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
  """Counts [num_clusters, num_classes]: entry (c, t) = #points in c with class t."""
  _, true_idx = np.unique(y_true, return_inverse=True)
  _, pred_idx = np.unique(y_pred, return_inverse=True)
  table = np.zeros((pred_idx.max() + 1, true_idx.max() + 1), np.int64)
  np.add.at(table, (pred_idx, true_idx), 1)
  return table


def _matched_counts(y_true: np.ndarray, y_pred: np.ndarray):
  """Hungarian match of clusters to classes: (classes, matched counts, table)."""
  classes = np.unique(y_true)
  table = contingency(y_true, y_pred)
  rows, cols = linear_sum_assignment(table, maximize=True)
  matched = np.zeros(classes.size, np.int64)
  matched[cols] = table[rows, cols]
  return classes, matched, table


def cluster_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
  """Best one-to-one matching of clusters to classes, as a fraction of points.

  The match maximises the matched counts (Hungarian algorithm). With more
  clusters than classes the extra clusters match nothing and count as errors.
  """
  y_true = np.asarray(y_true)
  _, matched, _ = _matched_counts(y_true, np.asarray(y_pred))
  return float(matched.sum() / y_true.size)


def per_class_recall(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
  """{class: share of its points in the cluster matched to it} (0 if none)."""
  y_true = np.asarray(y_true)
  classes, matched, table = _matched_counts(y_true, np.asarray(y_pred))
  return {int(c): float(m / n)
          for c, m, n in zip(classes, matched, table.sum(axis=0))}


def evaluate(y_true: Optional[np.ndarray], y_pred: np.ndarray) -> dict:
  """{'acc', 'nmi', 'ari'} against the labels, or {} when there are none."""
  if y_true is None:
    return {}
  y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
  return {
      "acc": cluster_accuracy(y_true, y_pred),
      "nmi": float(skm.normalized_mutual_info_score(
          y_true, y_pred, average_method=NMI_AVERAGE)),
      "ari": float(skm.adjusted_rand_score(y_true, y_pred)),
  }
