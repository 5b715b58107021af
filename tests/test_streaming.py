"""Data kept in host memory (data_on_device=False) and streamed to the
device in segments and chunks ends exactly where the resident run ends."""

import jax
import numpy as np
import pytest

from dec_jax.train import dec_loop
from dec_jax.nn import models
from dec_jax.errors import DecJaxError
from dec_jax.runner.run import run
from tests.test_end_to_end import tiny_config


@pytest.mark.parametrize("method", ["dec", "idec"])
def test_streamed_run_equals_resident_run(tmp_path, idx_folder, method):
  results, q = {}, {}
  for on_device in (True, False):
    config = tiny_config("mnist", data_dir=idx_folder, method=method,
                         data_on_device=on_device, chunk_size=16)
    config.pretrain.epochs, config.dec.maxiter = 5, 30
    workdir = tmp_path / f"{method}{on_device}"
    results[on_device] = run(config, str(workdir))
    q[on_device] = np.load(workdir / "assignments.npz")["q"]
  for key in ("acc", "nmi", "ari", "cluster_sizes", "init_metrics",
              "iterations"):
    assert results[True][key] == results[False][key], key
  np.testing.assert_allclose(q[True], q[False], atol=1e-6)
  for key in ("reconstruction_loss", "mean_image_loss"):  # chunks of 16
    np.testing.assert_allclose(results[True][key], results[False][key],
                               rtol=1e-5)


def test_streamed_embedding_matches_resident():
  model = models.Autoencoder((36, 16, 3))
  params = models.init_autoencoder(model, jax.random.key(0))
  x = np.random.default_rng(0).integers(0, 256, (50, 36)).astype(np.uint8)
  encoder = models.encoder_module(model)
  np.testing.assert_allclose(
      dec_loop.embed_streamed(encoder, params["encoder"], x, 16, 255.0),
      dec_loop.embed(encoder, params["encoder"], jax.numpy.asarray(x), 16,
                    255.0), atol=1e-6)


def test_kmeans_on_streamed_inputs_is_a_clear_error(tmp_path, idx_folder):
  config = tiny_config("mnist", data_dir=idx_folder, method="kmeans",
                       data_on_device=False)
  with pytest.raises(DecJaxError, match="data_on_device"):
    run(config, str(tmp_path / "w"))


@pytest.mark.parametrize("stochastic", [False, True])
def test_streamed_epoch_in_segments_equals_resident_epoch(stochastic):
  from dec_jax.train import optim  # pylint: disable=g-import-not-at-top
  from dec_jax.train import pretrain  # pylint: disable=g-import-not-at-top
  model = models.Autoencoder((36, 16, 3))
  params = models.init_autoencoder(model, jax.random.key(0))
  x = np.random.default_rng(1).integers(0, 256, (250, 36)).astype(np.uint8)
  tx = optim.make_optimizer("adam", 1e-3)

  def loss(p, xb, key):  # a key-dependent loss when stochastic
    if key is not None:
      xb = pretrain.corrupt(key, xb, 0.2)
    return pretrain.reconstruction_loss(model, p, xb)

  kwargs = dict(stochastic=stochastic, input_divisor=255.0)
  # One member's resident epoch, and the stacked streamed epoch on a stack
  # of two (the same member twice, and another key).
  resident = pretrain.make_minibatch_epoch(loss, tx, 250, 32, **kwargs)
  # 8 steps in segments of 3, 3 and 2 (a shorter last segment)
  streamed = pretrain.make_streamed_epoch(loss, tx, 250, 32, segment_steps=3,
                                          **kwargs)
  fresh = lambda: jax.tree.map(jax.numpy.array, {"params": params,
                                                 "opt": tx.init(params)})
  keys = [jax.random.key(5), jax.random.key(6)]
  alone = [resident(fresh(), jax.numpy.asarray(x), key) for key in keys]
  stacked = streamed(dec_loop.stack([fresh(), fresh()]), x,
                     jax.numpy.stack(keys))
  for i, (state, loss_value) in enumerate(alone):
    jax.tree.map(lambda a, b, i=i: np.testing.assert_allclose(
        a, b[i], atol=1e-6), state, stacked[0])
    assert float(loss_value) == pytest.approx(float(stacked[1][i]),
                                              rel=1e-5)
