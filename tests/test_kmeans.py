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


def _lloyd_pair(x, init, **kwargs):
  """kmeans_jax and sklearn's KMeans from the same initial centres."""
  import jax
  from sklearn.cluster import KMeans
  ours = kmeans.kmeans_jax(jax.random.key(0), x, len(init), 1,
                           vmap_restarts=False, init=init, **kwargs)
  theirs = KMeans(len(init), init=np.float64(init), n_init=1,
                  **kwargs).fit(np.float64(x))
  return ours, theirs


def _assert_same_run(ours, theirs):
  np.testing.assert_array_equal(ours.labels, theirs.labels_)
  np.testing.assert_allclose(ours.centres, theirs.cluster_centers_,
                             rtol=1e-5, atol=1e-5)
  assert int(ours.n_iter) == theirs.n_iter_


def test_n_iter_counts_lloyd_iterations_like_sklearn():
  # From centres (0, 1): {0} {1, 10, 11}, then {0, 1} {10, 11}, then the same
  # partition again, which converges: 3 iterations, as sklearn counts them.
  x = np.array([[0.0], [1.0], [10.0], [11.0]], np.float32)
  ours, theirs = _lloyd_pair(x, np.array([[0.0], [1.0]], np.float32), tol=0.0)
  _assert_same_run(ours, theirs)
  assert int(ours.n_iter) == 3
  np.testing.assert_allclose(ours.centres[:, 0], [0.5, 10.5])


@pytest.mark.parametrize("max_iter,tol,n_iter", [
    (300, 0.0, 16), (300, 0.03, 14), (300, 0.1, 12), (300, 1.0, 10),
    (3, 0.0, 3)])
def test_tol_and_max_iter_stop_where_sklearn_stops(max_iter, tol, n_iter):
  # tol is relative to the mean feature variance (digits: ~19, not 1), the
  # stopping test is total squared centre shift <= tol, and max_iter caps
  # the count: each changes n_iter if it differs from sklearn's (which
  # gives the n_iter listed).
  x = load_digits().data.astype(np.float32)
  init = x[np.random.default_rng(0).choice(len(x), 10, replace=False)]
  ours, theirs = _lloyd_pair(x, init, max_iter=max_iter, tol=tol)
  _assert_same_run(ours, theirs)
  assert theirs.n_iter_ == n_iter


def test_empty_clusters_take_the_farthest_points_as_in_sklearn():
  # Centres 2 and 3 start far from every point, so both clusters are empty
  # after the first assignment: like sklearn, the first takes the point
  # farthest from its centre, the second the next farthest.
  rng = np.random.default_rng(0)
  x = np.concatenate([rng.normal(0, 1, (30, 2)),
                      rng.normal(8, 1, (30, 2))]).astype(np.float32)
  init = np.array([[0, 0], [8, 8], [500, 0], [0, 900]], np.float32)
  ours, theirs = _lloyd_pair(x, init, tol=0.0)
  _assert_same_run(ours, theirs)
  assert len(np.unique(ours.labels)) == 4
