"""The DEC objective: soft assignment, target distribution, KL loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from dec_jax.core import clustering
from dec_jax.core import diagnostics

# A common offset DEC embeddings can have; float32 keeps 2^-10 steps there.
OFFSET = 1e4


def _numpy_soft_assign(z, mu, alpha):
  d2 = ((z[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
  kernel = (1.0 + d2 / alpha) ** (-(alpha + 1.0) / 2.0)
  return kernel / kernel.sum(1, keepdims=True)


def _random_problem(seed=0, n=50, k=4, d=3):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(n, d)).astype(np.float32),
          rng.normal(size=(k, d)).astype(np.float32))


def test_soft_assign_rows_sum_to_one():
  z, mu = _random_problem()
  q = clustering.soft_assign(z, mu)
  np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-6)
  assert (q > 0).all()


def test_soft_assign_matches_numpy_reference():
  z, mu = _random_problem(1)
  for alpha in (1.0, 2.5):
    np.testing.assert_allclose(clustering.soft_assign(z, mu, alpha),
                               _numpy_soft_assign(z, mu, alpha), rtol=1e-5,
                               atol=1e-7)


def test_soft_assign_finite_for_far_points():
  z = jnp.array([[1e4, 1e4]], jnp.float32)
  q = clustering.soft_assign(z, jnp.zeros((3, 2)).at[0].set(1.0))
  assert np.isfinite(q).all()
  np.testing.assert_allclose(q.sum(), 1.0, rtol=1e-6)


def _entropy(a):
  return -(a * jnp.log(a)).sum(axis=1)


def test_target_distribution_rows_sum_to_one_and_sharper_than_q():
  z, mu = _random_problem(2)
  q = clustering.soft_assign(z, mu)
  p = clustering.target_distribution(q)
  np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
  # Sharper on average; row by row the 1/f_j weighting may flatten a row
  # whose favourite cluster is large, by design.
  assert _entropy(p).mean() < _entropy(q).mean()
  assert p.max(axis=1).mean() > q.max(axis=1).mean()


def test_target_distribution_with_balanced_clusters_sharpens_every_row():
  q = jnp.array([[0.6, 0.3, 0.1], [0.1, 0.6, 0.3], [0.3, 0.1, 0.6]])
  p = clustering.target_distribution(q)
  assert (_entropy(p) < _entropy(q)).all()
  np.testing.assert_array_equal(p.argmax(1), q.argmax(1))


def test_target_distribution_matches_formula():
  q = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
  f = q.sum(0)
  w = q ** 2 / f
  np.testing.assert_allclose(clustering.target_distribution(jnp.asarray(q)),
                             w / w.sum(1, keepdims=True), rtol=1e-6)


def test_kl_divergence_zero_iff_equal_and_matches_formula():
  z, mu = _random_problem(3)
  q = clustering.soft_assign(z, mu)
  p = clustering.target_distribution(q)
  np.testing.assert_allclose(clustering.kl_divergence(q, q), 0.0, atol=1e-6)
  expected = np.mean(np.sum(p * np.log(p / q), axis=1))
  np.testing.assert_allclose(clustering.kl_divergence(p, q), expected,
                             rtol=1e-4)


def test_kl_gradient_matches_finite_differences():
  z, mu = _random_problem(4, n=20)
  p = clustering.target_distribution(clustering.soft_assign(z, mu))

  def loss(z, mu):
    return clustering.kl_divergence(p, clustering.soft_assign(z, mu))

  z64, mu64 = jnp.asarray(z, jnp.float32), jnp.asarray(mu, jnp.float32)
  check_grads(loss, (z64, mu64), order=1, modes=["rev"], eps=1e-2, atol=2e-3,
              rtol=2e-2)


def test_label_change_fraction_and_cluster_sizes():
  new = jnp.array([0, 1, 1, 2])
  old = jnp.array([0, 1, 2, 2])
  assert float(clustering.label_change_fraction(new, old)) == 0.25
  np.testing.assert_array_equal(clustering.cluster_sizes(new, 4), [1, 2, 1, 0])


def _grid_problem(seed=0, n=60, k=4, d=3):
  """_random_problem on a 2^-8 grid, so that z + OFFSET is exact in float32
  and any difference between the offsets is the computation's."""
  z, mu = _random_problem(seed, n, k, d)
  return np.round(z * 256) / 256, np.round(mu * 256) / 256


def test_squared_distances_unchanged_by_a_large_common_offset():
  # The expansion |z|^2 - 2 z.mu + |mu|^2 would lose ~eps * 1e8 = 6 here.
  z, mu = _grid_problem()
  exact = ((np.float64(z)[:, None] - mu[None]) ** 2).sum(-1)
  for shift in (0.0, OFFSET, -OFFSET):
    np.testing.assert_allclose(
        clustering.squared_distances(z + shift, mu + shift), exact,
        rtol=1e-5, atol=1e-5)


def test_soft_assign_and_target_unchanged_by_a_large_common_offset():
  z, mu = _grid_problem(1)
  q0 = clustering.soft_assign(z, mu)
  q1 = clustering.soft_assign(z + OFFSET, mu + OFFSET)
  np.testing.assert_allclose(q1, q0, atol=1e-6)
  np.testing.assert_allclose(clustering.target_distribution(q1),
                             clustering.target_distribution(q0), atol=1e-6)


def test_dec_gradients_unchanged_by_a_large_common_offset():
  # The KL loss is translation invariant: its gradients wrt z and the
  # centres at offset 1e4 are those at 0 (checked against finite
  # differences by test_kl_gradient_matches_finite_differences).
  z, mu = _grid_problem(4, n=20)
  p = clustering.target_distribution(clustering.soft_assign(z, mu))
  grad = jax.grad(lambda z, mu: clustering.kl_divergence(
      p, clustering.soft_assign(z, mu)), argnums=(0, 1))
  for g1, g0 in zip(grad(z + OFFSET, mu + OFFSET), grad(z, mu)):
    np.testing.assert_allclose(g1, g0, rtol=1e-4, atol=1e-6)


def test_target_distribution_is_finite_when_a_cluster_gets_no_mass():
  # With alpha = 9 the far centre's q underflows to 0 for every point:
  # f_j = 0, and p must be 0 there, not 0/0.
  z, _ = _random_problem(5)
  mu = jnp.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1e6, 1e6, 1e6]])
  q = clustering.soft_assign(z, mu, alpha=9.0)
  assert float(q[:, 2].max()) == 0.0
  p = clustering.target_distribution(q)
  assert np.isfinite(p).all()
  np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)


def test_collapse_checks_unchanged_by_a_large_common_offset():
  # diagnostics.collapse_flags sees cluster sizes and the mean confidence
  # of q: both, and so the flags (here: cluster 2 starved), must not move.
  rng = np.random.default_rng(6)
  mu = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
  z = np.concatenate([rng.normal(m, 0.7, (n, 2))
                      for m, n in zip(mu, (60, 60, 4))])
  z = np.round(z * 256) / 256

  def checks(shift):
    q = np.asarray(clustering.soft_assign(
        jnp.asarray(z + shift, jnp.float32), jnp.asarray(mu + shift,
                                                          jnp.float32)))
    sizes = np.bincount(q.argmax(1), minlength=3).tolist()
    mean_max_q = float(q.max(1).mean())
    return sizes, mean_max_q, diagnostics.collapse_flags(sizes, 0.5,
                                                         mean_max_q)

  sizes0, confidence0, flags0 = checks(0.0)
  sizes1, confidence1, flags1 = checks(OFFSET)
  assert flags0["small_clusters"] == [2]
  assert (sizes1, flags1) == (sizes0, flags0)
  assert confidence1 == pytest.approx(confidence0, abs=1e-6)
