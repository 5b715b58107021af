"""DEC's loop trains what the paper trains, and measures convergence the way
the paper does (Xie et al., 2016): the KL gradient reaches the centres and
the encoder, and the label change at each target update is counted against
the previous update's labels."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dec_jax.train import dec_loop
from dec_jax.core import clustering
from dec_jax.runner import data
from dec_jax.core import kmeans
from dec_jax.nn import models
from tests.conftest import run_dec_one


@pytest.fixture(scope="module")
def problem():
  """A random-init encoder 64-32-5 on 300 digits, k-means init with k = 10."""
  x = jnp.asarray(data.load("digits").x[:300])
  model = models.Autoencoder((64, 32, 5))
  encoder = models.encoder_module(model)

  @jax.jit
  def init_and_embed(key):
    params = models.init_autoencoder(model, key)
    return params, encoder.apply({"params": params["encoder"]}, x)

  params, z = init_and_embed(jax.random.key(0))
  init = kmeans.fit_kmeans(z, 10, seed=0, n_init=3)
  return encoder, params["encoder"], init, x


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_kl_gradient_is_the_papers_for_centres_and_embeddings(problem,
                                                              alpha):
  """Xie et al. (2016), eq. 4, for the loss averaged over the N rows:
    dL/dmu_j = -(a+1)/a / N * sum_i (1 + |z_i - mu_j|^2/a)^-1 (p_ij - q_ij)
               (z_i - mu_j),
    dL/dz_i  =  (a+1)/a / N * sum_j (same terms),
  the latter passed back through the encoder (chain rule). A gradient
  stopped at the centres or at the embedding fails here."""
  encoder, enc_params, init, x = problem
  params = {"encoder": enc_params, "centres": init.centres}
  p = np.random.default_rng(1).dirichlet(np.ones(10), x.shape[0])

  @jax.jit
  def autodiff_and_formula(params, p):
    grads = jax.grad(functools.partial(dec_loop.dec_loss, encoder,
                                       alpha=alpha))(params, x, p)
    z, encoder_vjp = jax.vjp(lambda e: encoder.apply({"params": e}, x),
                             params["encoder"])
    centres = params["centres"]
    q = clustering.soft_assign(z, centres, alpha)
    diff = z[:, None, :] - centres[None, :, :]                  # [N, K, d]
    weight = (p - q) / (1 + jnp.sum(diff ** 2, -1) / alpha)     # [N, K]
    scale = (alpha + 1) / alpha / x.shape[0]
    d_centres = -scale * jnp.einsum("nk,nkd->kd", weight, diff)
    d_z = scale * jnp.einsum("nk,nkd->nd", weight, diff)
    d_encoder, = encoder_vjp(d_z)
    return grads, d_centres, d_encoder

  grads, d_centres, d_encoder = jax.device_get(
      autodiff_and_formula(params, jnp.asarray(p, jnp.float32)))
  assert np.abs(d_centres).max() > 1e-3  # not a vanishing case
  np.testing.assert_allclose(grads["centres"], d_centres, rtol=1e-3,
                             atol=1e-5 * np.abs(d_centres).max())
  for got, want in zip(jax.tree.leaves(grads["encoder"]),
                       jax.tree.leaves(d_encoder)):
    assert np.abs(want).max() > 0
    np.testing.assert_allclose(got, want, rtol=1e-3,
                               atol=1e-5 * np.abs(want).max())


def test_dec_loop_moves_every_centre_and_every_encoder_layer(problem):
  encoder, enc_params, init, x = problem
  result = run_dec_one(
      encoder, enc_params, init.centres, init.labels, x, jax.random.key(0),
      optax.sgd(0.01, momentum=0.9),
      dec_loop.DECConfig(batch_size=50, update_interval=20, tol=0.0,
                        maxiter=40))
  assert result.iterations == 40
  moved = np.linalg.norm(np.asarray(result.params["centres"])
                         - np.asarray(init.centres), axis=1)
  assert (moved > 1e-4).all(), moved
  for (path, before), after in zip(
      jax.tree_util.tree_leaves_with_path(enc_params),
      jax.tree.leaves(result.params["encoder"])):
    if path[-1].key == "kernel":
      assert np.abs(np.asarray(after) - np.asarray(before)).max() > 1e-5, (
          jax.tree_util.keystr(path))


def test_label_change_is_counted_against_the_previous_target_update(
    problem):
  """label_change[t] = mean(labels[t] != labels[t-1]) at every target
  update, and the first one against the initial labels given: not against
  the k-means labels, nor a snapshot that stopped being updated."""
  encoder, enc_params, init, x = problem
  # Initial labels that differ from the centres' own assignment on 30 of
  # the 300 points, so that the first count can tell them apart.
  init_labels = np.asarray(init.labels).copy()
  init_labels[:30] = (init_labels[:30] + 1) % 10
  records = []
  run_dec_one(
      encoder, enc_params, init.centres, jnp.asarray(init_labels), x,
      jax.random.key(0), optax.sgd(0.1, momentum=0.9),
      dec_loop.DECConfig(batch_size=50, update_interval=20, tol=0.0,
                        maxiter=120), log_fn=records.append)
  labels = [r["label_change"] for r in records]
  assignments = [np.asarray(r["labels"]) for r in records]
  assert [r["iteration"] for r in records] == list(range(0, 121, 20))
  previous = [init_labels] + assignments[:-1]
  expected = [np.mean(a != b) for a, b in zip(assignments, previous)]
  np.testing.assert_allclose(labels, expected, rtol=1e-6, atol=0)
  assert labels[0] == pytest.approx(0.1, abs=0.02)  # the 30 changed points
  # The labels drift: counting against the initial or the first labels
  # would give other numbers.
  for stale in (init_labels, assignments[0]):
    assert any(abs(np.mean(a != stale) - c) > 0.01
               for a, c in zip(assignments[2:], labels[2:]))
