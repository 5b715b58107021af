"""The compiled training pieces: batching, pretraining epoch, DEC interval."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dec_jax.train import batching
from dec_jax.train import dec_loop
from dec_jax.runner import data
from dec_jax.core import kmeans
from dec_jax.nn import models
from dec_jax.train import pretrain
from tests.conftest import run_dec_one


@pytest.fixture(scope="module")
def digits():
  return data.load("digits")


def test_epoch_indices_visit_every_sample_once_per_pass():
  idx = np.asarray(batching.epoch_indices(jax.random.key(0), 10, 7, 3))
  assert idx.shape == (7, 3)
  flat = idx.reshape(-1)
  np.testing.assert_array_equal(np.sort(flat[:10]), np.arange(10))
  np.testing.assert_array_equal(np.sort(flat[10:20]), np.arange(10))
  assert len(set(flat[20:].tolist())) == 1  # one sample of a third pass


def test_map_in_chunks_equals_direct_application():
  """Every row, in order, through fn (chunks of 5 over 23 rows: the last one
  padded). To a few float32 ulps: the chunks are one compiled program, the
  direct call runs op by op, and XLA may compute tanh differently in each."""
  x = jnp.arange(23 * 3, dtype=jnp.float32).reshape(23, 3) / 10
  fn = lambda a: jnp.tanh(a) * 2
  np.testing.assert_allclose(batching.map_in_chunks(fn, x, 5), fn(x),
                             rtol=1e-6)


def test_pretraining_epoch_lowers_reconstruction_loss(digits):
  model = models.Autoencoder((64, 32, 10))
  params = models.init_autoencoder(model, jax.random.key(0))
  x = jnp.asarray(digits.x[:512])
  loss_before = pretrain.reconstruction_loss(model, params, x)
  tx = optax.adam(1e-3)
  epoch = pretrain.make_epoch_fn(model, tx, x.shape[0], 64)
  state = {"params": params, "opt": tx.init(params)}
  for i in range(5):
    state, _ = epoch(state, x, jax.random.key(i))
  assert pretrain.reconstruction_loss(model, state["params"], x) < (
      0.7 * loss_before)


def _dec_problem(digits, n=300):
  model = models.Autoencoder((64, 32, 5))
  params = models.init_autoencoder(model, jax.random.key(0))
  encoder = models.encoder_module(model)
  x = jnp.asarray(digits.x[:n])
  z = dec_loop.embed(encoder, params["encoder"], x, 128)
  init = kmeans.fit_kmeans(z, 10, seed=0, n_init=3)
  return encoder, params["encoder"], init, x


def test_dec_interval_lowers_kl_against_fixed_target(digits):
  encoder, enc_params, init, x = _dec_problem(digits)
  cfg = dec_loop.DECConfig(batch_size=50, update_interval=30)
  tx = optax.sgd(0.01, momentum=0.9)
  target_update, train_interval = dec_loop.make_dec_fns(encoder, tx,
                                                       x.shape[0], cfg)
  params = {"encoder": enc_params, "centres": init.centres}
  p = target_update(params, x, init.labels)["p"]
  before = dec_loop.dec_loss(encoder, params, x, p, 1.0)
  state = {"params": params, "opt": tx.init(params)}
  state, _ = train_interval(state, x, p, jax.random.key(0), 30)
  after = dec_loop.dec_loss(encoder, state["params"], x, p, 1.0)
  assert after < before


def test_dec_step_indexes_targets_consistently_with_inputs(digits):
  """One full-batch step on shuffled indices equals the unshuffled gradient step.

  If P rows were not gathered with the same indices as x, the loss would pair
  samples with other samples' targets and the update would differ.
  """
  encoder, enc_params, init, x = _dec_problem(digits, n=64)
  cfg = dec_loop.DECConfig(batch_size=64, update_interval=1)
  tx = optax.sgd(0.1)
  target_update, train_interval = dec_loop.make_dec_fns(encoder, tx, 64, cfg)
  params = {"encoder": enc_params, "centres": init.centres}
  p = target_update(params, x, init.labels)["p"]
  # Sharpen P so that pairing a sample with a wrong row would matter.
  p = jax.nn.one_hot(jnp.argmax(p, 1) + jnp.arange(64) % 3, 10)
  grads = jax.grad(functools.partial(dec_loop.dec_loss, encoder, alpha=1.0))(
      params, x, p)
  expected = optax.apply_updates(params, jax.tree.map(lambda g: -0.1 * g,
                                                      grads))
  state = {"params": params, "opt": tx.init(params)}
  state, _ = train_interval(state, x, p, jax.random.key(3), 1)
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-4,
                                 atol=1e-6), state["params"], expected)


def _run_dec(digits, tol, maxiter, learning_rate=0.01, patience=0,
             **kwargs):
  """run_dec on _dec_problem (SGD, intervals of 20): (result, records)."""
  encoder, enc_params, init, x = _dec_problem(digits)
  records = []
  result = run_dec_one(
      encoder, enc_params, init.centres, init.labels, x, jax.random.key(0),
      optax.sgd(learning_rate, momentum=0.9),
      dec_loop.DECConfig(batch_size=50, update_interval=20, tol=tol,
                        maxiter=maxiter, patience=patience),
      log_fn=records.append, **kwargs)
  return result, records


@pytest.mark.parametrize("maxiter, iterations", [
    (60, 60),   # never converges with tol 0: runs to maxiter
    (50, 50),   # last interval shorter (20 + 20 + 10)
])
def test_run_dec_without_tol_runs_to_maxiter(digits, maxiter, iterations):
  result, records = _run_dec(digits, 0.0, maxiter)
  assert result.iterations == iterations
  assert result.stop_reason == "maxiter"
  assert [r["iteration"] for r in records][-1] == iterations
  assert result.q.shape == (300, 10)
  np.testing.assert_array_equal(result.labels, result.q.argmax(1))
  np.testing.assert_array_equal(records[-1]["labels"], result.labels)


def test_run_dec_stops_once_labels_change_less_than_tol_between_updates(
    digits):
  """The run stops at the first target update after the start whose labels
  differ from the previous update's on fewer than `tol` of the points.

  The learning rate is 0.1 for the first interval and 0 after it: the
  labels move by update 20 (>= tol of the points), then stay. So the rule
  stops at update 40; a rule comparing with a stale snapshot (the init)
  would run to maxiter, one comparing labels with themselves would stop at
  20.
  """
  tol = 0.005
  lr = optax.piecewise_constant_schedule(0.1, {20: 0.0})
  result, records = _run_dec(digits, tol, 200, learning_rate=lr)
  changes = [r["label_change"] for r in records]
  assert [r["iteration"] for r in records] == [0, 20, 40]
  assert changes[1] >= tol and changes[2] == 0.0
  assert result.stop_reason == "tol" and result.iterations == 40
  # Against the start (the k-means labels) they still differ on >= tol.
  assert np.mean(records[2]["labels"] != records[0]["labels"]) >= tol
  np.testing.assert_array_equal(result.labels, records[2]["labels"])


def test_plateau_step_counts_updates_since_the_lowest_label_change():
  state = (None, 0)
  trace = []
  for change in (0.05, 0.03, 0.04, 0.03, 0.01, 0.02):
    state = dec_loop.plateau_step(*state, change)
    trace.append(state)
  # A tie with the lowest is not a new low.
  assert trace == [(0.05, 0), (0.03, 0), (0.03, 1), (0.03, 2), (0.01, 0),
                   (0.01, 1)]


# The learning rate is 0.1 for the first interval and 0 after it: the label
# change is > 0 at update 20 and 0 from update 40 on, never below tol 0.
_FROZEN_AFTER_20 = optax.piecewise_constant_schedule(0.1, {20: 0.0})


def test_run_dec_stops_after_patience_updates_without_a_new_low(digits):
  """With patience 3 the lowest label change (0, at update 40) is not
  beaten at 60, 80 and 100: the run stops at 100, not at maxiter."""
  result, records = _run_dec(digits, 0.0, 400, _FROZEN_AFTER_20, patience=3)
  assert [r["iteration"] for r in records] == [0, 20, 40, 60, 80, 100]
  assert records[1]["label_change"] > 0 and records[2]["label_change"] == 0
  assert result.stop_reason == "patience" and result.iterations == 100
  np.testing.assert_array_equal(result.labels, records[-1]["labels"])


def test_run_dec_resumed_mid_plateau_stops_where_the_whole_run_does(digits):
  """The plateau count is part of the checkpoint: resumed at iteration 80
  (two updates into the plateau), the run still stops at 100; a resume
  that forgot it would count afresh and stop at 140."""
  saved = {}

  def keep(loop):  # copies, as a checkpoint does (the plateau via JSON)
    saved[loop["iteration"]] = {
        **loop, "state": jax.tree.map(np.array, loop["state"]),
        "prev_labels": np.array(loop["prev_labels"]),
        "plateau": json.loads(json.dumps(loop["plateau"]))}

  _run_dec(digits, 0.0, 400, _FROZEN_AFTER_20, patience=3,
           checkpoint_every=20, checkpoint_fn=keep)
  assert saved[80]["plateau"] == {"0": [0.0, 1]}
  result, records = _run_dec(digits, 0.0, 400, _FROZEN_AFTER_20, patience=3,
                             resume=saved[80])
  assert [r["iteration"] for r in records] == [80, 100]
  assert result.stop_reason == "patience" and result.iterations == 100


def test_replaying_a_log_stops_where_a_run_with_that_patience_stops(
    digits):
  """replay_stop on a run without patience predicts, for each patience, the
  iteration and labels at which a run with it actually stops."""
  _, records = _run_dec(digits, 0.0, 300)
  updates = [(r["iteration"], r["label_change"]) for r in records]
  stopped_early = 0
  for patience in (1, 2, 3):
    index = dec_loop.replay_stop(updates, 0.0, patience, 300)
    result, _ = _run_dec(digits, 0.0, 300, patience=patience)
    assert result.iterations == records[index]["iteration"], patience
    np.testing.assert_array_equal(result.labels, records[index]["labels"])
    stopped_early += result.stop_reason == "patience"
  assert stopped_early  # the check compared some stops, not only maxiter


def test_idec_loss_is_reconstruction_plus_gamma_times_kl(digits):
  model = models.Autoencoder((64, 32, 5))
  params = models.init_autoencoder(model, jax.random.key(0))
  encoder, decoder = models.encoder_module(model), models.decoder_module(model)
  x = jnp.asarray(digits.x[:40])
  centres = jax.random.normal(jax.random.key(1), (10, 5))
  full = {**params, "centres": centres}
  p = jax.nn.softmax(jax.random.normal(jax.random.key(2), (40, 10)))
  reconstruction = pretrain.reconstruction_loss(model, params, x)
  kl = dec_loop.dec_loss(encoder, full, x, p, 1.0)
  for gamma in (0.1, 2.0):
    np.testing.assert_allclose(
        dec_loop.idec_loss(encoder, decoder, full, x, p, gamma=gamma,
                          alpha=1.0), reconstruction + gamma * kl, rtol=1e-5)
