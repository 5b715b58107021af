"""k-means++ draws its candidates by D^2 sampling, and keeps the best one.

Frequencies over many keys are chi-square tested against the distribution
the draws must follow (p > 1e-3 with fixed keys, so the tests are
deterministic); uniform sampling fails them with p < 1e-30.
"""

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import chisquare

from dec_jax.core import kmeans

DRAWS = 20000
P_MIN = 1e-3
sample_d2 = jax.jit(lambda key, mass, n: kmeans.sample_d2(
    jax.random.uniform(key, (n,)), mass), static_argnums=2)
# Two groups on a line: D^2 probabilities range over three decades.
POINTS = np.array([[0.0], [1.0], [2.5], [10.0], [11.0], [12.5]], np.float32)


def _d2(points):
  points = np.float64(points)
  return ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)


def _seed_pairs(n_candidates):
  """(first, second) centre indices of k=2 k-means++ on POINTS, DRAWS keys."""
  keys = jax.random.split(jax.random.key(0), DRAWS)
  centres = jax.jit(jax.vmap(lambda key: kmeans.kmeans_plusplus(
      key, POINTS, 2, n_candidates=n_candidates)))(keys)
  index = np.argmin(np.abs(np.asarray(centres)[..., 0, None]
                           - POINTS[None, None, :, 0]), axis=-1)
  return index[:, 0], index[:, 1]


def test_sample_d2_frequencies_follow_the_mass():
  mass = np.array([0, 1, 2, 4, 8, 16, 0.5, 30, 0, 3])
  draws = np.asarray(sample_d2(
      jax.random.key(1), jnp.asarray(mass, jnp.float32), DRAWS))
  counts = np.bincount(draws, minlength=mass.size)
  assert counts[mass == 0].sum() == 0
  expected = DRAWS * mass[mass > 0] / mass.sum()
  assert chisquare(counts[mass > 0], expected).pvalue > P_MIN


def test_kmeans_plusplus_ignores_rows_of_weight_zero():
  # Padding rows for a device mesh (weight 0) are never drawn, however far
  # they lie, and leave every draw as it was without them.
  x = np.random.default_rng(0).normal(size=(101, 2)).astype(np.float32)
  padded = np.concatenate([x, np.full((3, 2), 50.0, np.float32)])
  weights = jnp.asarray(np.arange(104) < 101, jnp.float32)
  keys = jax.random.split(jax.random.key(2), 200)
  seed = jax.jit(jax.vmap(lambda key, x, weights: kmeans.kmeans_plusplus(
      key, x, 5, weights=weights), in_axes=(0, None, None)))
  np.testing.assert_array_equal(seed(keys, padded, weights),
                                seed(keys, x, jnp.ones(101)))


def test_sample_d2_never_draws_a_zero_mass_row():
  # XLA's float32 cumsum is not exact: the cumulative mass can step up at a
  # zero-mass row (it does at 3 of these). Targets at every step, and one
  # ulp either side, must still land on rows of positive mass only.
  rng = np.random.default_rng(3)
  mass = rng.random(1001) * 10.0 ** rng.uniform(-3, 3, 1001)
  mass[rng.random(1001) < 0.3] = 0
  mass = jnp.asarray(mass, jnp.float32)
  steps = jnp.cumsum(mass) / jnp.sum(mass)
  u = jnp.clip(jnp.concatenate([steps, jnp.nextafter(steps, 0),
                                jnp.nextafter(steps, 2)]), 0, 1 - 2**-24)
  draws = jax.jit(kmeans.sample_d2)(u, mass)
  assert (np.asarray(mass)[np.asarray(draws)] > 0).all()


def test_kmeans_plusplus_draws_the_second_centre_by_d2():
  # With one candidate: first centre uniform, second j given first i with
  # probability d2(i, j) / sum_l d2(i, l); never the first again.
  first, second = _seed_pairs(n_candidates=1)
  counts = np.zeros((len(POINTS),) * 2)
  np.add.at(counts, (first, second), 1)
  d2 = _d2(POINTS)
  expected = DRAWS / len(POINTS) * d2 / d2.sum(1, keepdims=True)
  assert counts[expected == 0].sum() == 0
  assert chisquare(counts[expected > 0], expected[expected > 0]).pvalue > P_MIN


def test_greedy_kmeans_plusplus_keeps_the_best_candidate():
  # With 30 candidates the best second centre (least inertia) is almost
  # always among them: the chance it is not, (1 - p_best)^30, bounds the
  # misses.
  first, second = _seed_pairs(n_candidates=30)
  d2 = _d2(POINTS)
  inertia = np.minimum(d2[:, None, :], d2[None, :, :]).sum(-1)  # [i, j]
  best = np.argmin(inertia, axis=1)
  p_best = d2[np.arange(len(POINTS)), best] / d2.sum(1)
  miss_rate = np.mean((1 - p_best[first]) ** 30)
  assert np.mean(second != best[first]) <= 2 * miss_rate + 0.005
