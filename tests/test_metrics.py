"""ACC / NMI / ARI."""

import numpy as np
import pytest

from dec_jax.core import metrics


def test_accuracy_is_one_under_any_relabelling():
  rng = np.random.default_rng(0)
  y = rng.integers(0, 5, size=200)
  for _ in range(5):
    perm = rng.permutation(5)
    scores = metrics.evaluate(y, perm[y])
    assert scores["acc"] == 1.0
    assert scores["nmi"] == pytest.approx(1.0)
    assert scores["ari"] == pytest.approx(1.0)


def test_accuracy_hand_worked_example():
  # Cluster 0 holds classes {0,0,1}, cluster 1 holds {1,1,2}, cluster 2 {2,0}.
  y_true = np.array([0, 0, 1, 1, 1, 2, 2, 0])
  y_pred = np.array([0, 0, 0, 1, 1, 1, 2, 2])
  # Best match: 0->0 (2), 1->1 (2), 2->2 (1): 5 of 8.
  assert metrics.cluster_accuracy(y_true, y_pred) == pytest.approx(5 / 8)


def test_accuracy_with_more_clusters_than_classes():
  y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1])
  y_pred = np.array([0, 0, 1, 1, 2, 2, 2, 3])
  # Best one-to-one: a 2-point cluster for class 0, cluster 2 (3) for class 1.
  assert metrics.cluster_accuracy(y_true, y_pred) == pytest.approx(5 / 8)


def test_accuracy_with_fewer_clusters_than_classes():
  y_true = np.array([0, 0, 1, 1, 2, 2])
  y_pred = np.array([0, 0, 0, 0, 1, 1])
  assert metrics.cluster_accuracy(y_true, y_pred) == pytest.approx(4 / 6)


def test_nmi_is_mutual_information_over_the_mean_entropy():
  """NMI = I(Y; C) / ((H(Y) + H(C)) / 2), worked out from the counts, on
  labels whose entropies differ (so that the geometric, min or max means
  of the two entropies would give other values)."""
  y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
  y_pred = np.array([0, 0, 1, 1, 1, 1, 1, 1])
  p_true = np.array([4, 2, 2]) / 8
  p_pred = np.array([2, 6]) / 8
  joint = np.array([[2, 0, 0], [2, 2, 2]]) / 8  # [cluster, class]
  entropy = lambda p: -np.sum(p[p > 0] * np.log(p[p > 0]))
  nz = joint > 0
  mi = np.sum(joint[nz] * np.log(joint[nz] / np.outer(p_pred, p_true)[nz]))
  h_true, h_pred = entropy(p_true), entropy(p_pred)
  expected = mi / ((h_true + h_pred) / 2)
  for other in (np.sqrt(h_true * h_pred), min(h_true, h_pred),
                max(h_true, h_pred)):
    assert abs(mi / other - expected) > 0.01  # the example tells them apart
  assert metrics.evaluate(y_true, y_pred)["nmi"] == pytest.approx(expected,
                                                                  rel=1e-9)


def test_evaluate_without_labels_is_empty():
  assert metrics.evaluate(None, np.zeros(3, int)) == {}


def test_per_class_recall_follows_the_hungarian_match():
  y_true = np.array([0, 0, 1, 1, 1, 2, 2, 0])
  y_pred = np.array([0, 0, 0, 1, 1, 1, 2, 2])
  # Match 0->0, 1->1, 2->2: class 0 has 2 of 3, class 1 2 of 3, class 2 1 of 2.
  assert metrics.per_class_recall(y_true, y_pred) == pytest.approx(
      {0: 2 / 3, 1: 2 / 3, 2: 1 / 2})
  # A class left without a cluster has recall 0.
  assert metrics.per_class_recall(np.array([0, 0, 1, 2]),
                                  np.array([0, 0, 0, 1])) == {0: 1.0, 1: 0.0,
                                                              2: 1.0}
