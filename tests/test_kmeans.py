"""JAX k-means against well-separated blobs and against scikit-learn."""

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_blobs
from sklearn.metrics import adjusted_rand_score

from dec_jax.core import kmeans
from dec_jax.errors import DecJaxError


def test_recovers_well_separated_blobs():
  x, y = make_blobs(n_samples=600, centers=5, n_features=4, cluster_std=0.5,
                    random_state=0)
  result = kmeans.fit_kmeans(x.astype(np.float32), 5, seed=0, n_init=5)
  assert adjusted_rand_score(y, np.asarray(result.labels)) == 1.0
  assert result.centres.shape == (5, 4)
  assert result.labels.shape == (600,)


def test_inertia_within_one_percent_of_sklearn():
  x = load_digits().data.astype(np.float32) / 16.0
  ours = kmeans.fit_kmeans(x, 10, seed=0, n_init=10)
  theirs = kmeans.fit_kmeans(x, 10, seed=0, n_init=10, backend="sklearn")
  assert float(ours.inertia) == pytest.approx(float(theirs.inertia), rel=0.01)
  # Inertia reported matches the labels and centres returned.
  d2 = ((x - np.asarray(ours.centres)[np.asarray(ours.labels)]) ** 2).sum()
  assert float(ours.inertia) == pytest.approx(d2, rel=1e-4)


def test_kmeans_plusplus_picks_distinct_data_points():
  import jax
  x, _ = make_blobs(n_samples=200, centers=4, random_state=1)
  centres = np.asarray(kmeans.kmeans_plusplus(jax.random.key(0),
                                              x.astype(np.float32), 4))
  assert len({tuple(c) for c in centres}) == 4
  for c in centres:
    assert np.isclose(x, c, atol=1e-5).all(axis=1).any()


def test_duplicate_points_do_not_crash():
  x = np.ones((20, 3), np.float32)
  result = kmeans.fit_kmeans(x, 3, seed=0, n_init=2)
  assert np.isfinite(float(result.inertia))


@pytest.mark.parametrize("k", [1, 0, 11])
def test_rejects_k_out_of_range(k):
  with pytest.raises(DecJaxError, match="n_clusters"):
    kmeans.fit_kmeans(np.zeros((10, 2), np.float32), k, seed=0)


def test_rejects_unknown_backend():
  with pytest.raises(DecJaxError, match="backend"):
    kmeans.fit_kmeans(np.random.rand(10, 2), 2, seed=0, backend="faiss")


def test_batched_and_sequential_restarts_agree():
  import jax
  x = load_digits().data.astype(np.float32) / 16.0
  key = jax.random.key(3)
  batched = kmeans.kmeans_jax(key, x, 10, 4, vmap_restarts=True)
  sequential = kmeans.kmeans_jax(key, x, 10, 4, vmap_restarts=False)
  np.testing.assert_array_equal(batched.labels, sequential.labels)
  assert float(batched.inertia) == pytest.approx(float(sequential.inertia),
                                                 rel=1e-5)
