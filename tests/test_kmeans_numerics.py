"""JAX k-means is exact on shifted and scaled data, as scikit-learn is.

Blobs with a common offset of up to 1e6 standard deviations and a scale
from 1e-6 to 1e6 (float32, as the library stores data): the JAX backend finds
sklearn's partition, its inertia is within 1 % of sklearn's, and the inertia
it reports is the float64 inertia of the labels and centres it returns.
"""

import hypothesis
from hypothesis import strategies as st
import jax
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from dec_jax.core import kmeans

K, PER_CLUSTER, DIM = 4, 75, 8


def shifted_blobs(seed: int, offset: float, scale: float) -> np.ndarray:
  """scale * (blobs + offset) in float32: K unit-variance blobs 14 standard
  deviations apart, shifted by `offset` standard deviations."""
  rng = np.random.default_rng(seed)
  centres = 10.0 * np.eye(K, DIM)
  x = np.repeat(centres, PER_CLUSTER, axis=0) + rng.normal(
      size=(K * PER_CLUSTER, DIM))
  return (scale * (x + offset)).astype(np.float32)


def float64_inertia(x, result) -> float:
  centres = np.asarray(result.centres, np.float64)
  return float(((np.float64(x) - centres[np.asarray(result.labels)]) ** 2)
               .sum())


def check_against_sklearn(x: np.ndarray) -> None:
  ours = kmeans.kmeans_jax(jax.random.key(0), x, K, 3, vmap_restarts=False)
  theirs = KMeans(K, n_init=3, random_state=0).fit(np.float64(x))
  assert adjusted_rand_score(theirs.labels_, np.asarray(ours.labels)) == 1.0
  assert float(ours.inertia) == pytest.approx(theirs.inertia_, rel=0.01)
  assert float(ours.inertia) == pytest.approx(float64_inertia(x, ours),
                                              rel=1e-5)


@hypothesis.settings(max_examples=25, deadline=None, derandomize=True)
@hypothesis.given(
    seed=st.integers(0, 2**16),
    offset=st.one_of(st.just(0.0), st.floats(0.0, 6.0).map(lambda e: 10**e)),
    sign=st.sampled_from([-1.0, 1.0]),
    scale_exponent=st.floats(-6.0, 6.0))
@hypothesis.example(seed=0, offset=1e6, sign=1.0, scale_exponent=-6.0)
@hypothesis.example(seed=0, offset=1e6, sign=-1.0, scale_exponent=6.0)
@hypothesis.example(seed=0, offset=3e4, sign=1.0, scale_exponent=0.0)
def test_matches_sklearn_at_any_offset_and_scale(seed, offset, sign,
                                                 scale_exponent):
  check_against_sklearn(
      shifted_blobs(seed, sign * offset, 10.0**scale_exponent))


def test_tiny_scale_does_not_underflow():
  # At scale 1e-20 squared distances (1e-40) are subnormal in float32 and
  # the labels are noise without the power-of-two rescaling; the inertia
  # itself (~1e-37) is a normal float32.
  check_against_sklearn(shifted_blobs(1, 10.0, 1e-20))


def _dot_precisions(closed_jaxpr) -> list:
  """The precision of every dot_general in a jaxpr, nested ones included."""
  from jax.extend import core  # pylint: disable=g-import-not-at-top
  found = []
  for eqn in closed_jaxpr.jaxpr.eqns:
    if eqn.primitive.name == "dot_general":
      found.append(eqn.params["precision"])
    for sub in core.jaxprs_in_params(eqn.params):
      found += _dot_precisions(core.ClosedJaxpr(sub, ()))
  return found


def test_distance_and_centre_matmuls_ask_for_full_float32():
  """On GPUs JAX's default lets float32 matmuls run as TF32 (eps ~1e-3),
  which the expanded distances cannot afford: every matmul of the soft
  assignment and of k-means asks for HIGHEST."""
  from dec_jax.core import clustering  # pylint: disable=g-import-not-at-top
  x = shifted_blobs(0, 0.0, 1.0)
  centres = x[:K]
  programs = [jax.make_jaxpr(clustering.soft_assign)(x, centres),
              jax.make_jaxpr(lambda x: kmeans.kmeans_jax(
                  jax.random.key(0), x, K, 2, max_iter=3))(x)]
  for program in programs:
    precisions = _dot_precisions(program)
    assert precisions, "no matmul found"
    full = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)
    assert all(p == full for p in precisions), precisions
