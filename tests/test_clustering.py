"""The DEC objective: soft assignment, target distribution, KL loss."""

import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

from dec_jax.core import clustering


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
