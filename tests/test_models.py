"""The default (MLP) autoencoder: DEC-keras's initialisation and where the
ReLUs are."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dec_jax.nn import models


def _dense_layers(params):
  """(name, kernel, bias) of every Dense layer, encoder then decoder."""
  return [(f"{part}/{name}", np.asarray(layer["kernel"]),
           np.asarray(layer["bias"]))
          for part in ("encoder", "decoder")
          for name, layer in sorted(params[part].items())]


@pytest.mark.parametrize("init, bound", [
    ("dec_keras", lambda fan_in, fan_out: np.sqrt(1 / fan_in)),
    ("glorot_uniform", lambda fan_in, fan_out: np.sqrt(6 / (fan_in + fan_out))),
])
def test_dense_init_is_uniform_on_its_bound(init, bound):
  """model.mlp_init: DEC-keras's VarianceScaling(1/3, fan_in, uniform) =
  U(+-sqrt(1/fan_in)); Keras's glorot_uniform = U(+-sqrt(6/(fan_in +
  fan_out))); variance bound^2 / 3; biases zero. Wide layers (>= 60,000
  weights each), so the sample statistics are within a few percent."""
  model = models.make_autoencoder("mlp", (400, 300, 200), mlp_init=init)
  params = jax.jit(models.init_autoencoder, static_argnums=0)(
      model, jax.random.key(0))
  layers = _dense_layers(params)
  assert [(name, kernel.shape) for name, kernel, _ in layers] == [
      ("encoder/dense_0", (400, 300)), ("encoder/dense_1", (300, 200)),
      ("decoder/dense_0", (200, 300)), ("decoder/dense_1", (300, 400))]
  for name, kernel, bias in layers:
    limit = bound(*kernel.shape)
    w = kernel.ravel()
    assert np.abs(w).max() <= limit, name
    assert np.abs(w).max() > 0.99 * limit, name  # the range is filled
    assert w.var() == pytest.approx(limit ** 2 / 3, rel=0.03), name
    assert abs(w.mean()) < 0.01 * limit, name
    assert np.mean(np.abs(w) < limit / 2) == pytest.approx(0.5, abs=0.01)
    np.testing.assert_array_equal(bias, 0.0, err_msg=name)


def _forward(model, params, x):
  """One forward pass, recorded: each Dense layer's (input, output) by
  layer path ('encoder/dense_0', ...); the reconstruction; the embedding;
  and the stand-alone encoder's and decoder's outputs."""
  calls = {}

  def record(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if isinstance(context.module, models.nn.Dense):
      calls["/".join(context.module.path)] = (args[0], out)
    return out

  with models.nn.intercept_methods(record):
    recon = model.apply({"params": params}, x)
  z = model.apply({"params": params}, x, method="encode")
  z_alone = models.encoder_module(model).apply({"params": params["encoder"]},
                                               x)
  recon_alone = models.decoder_module(model).apply(
      {"params": params["decoder"]}, z_alone)
  return calls, recon, z, z_alone, recon_alone


def test_hidden_layers_use_relu_and_embedding_and_output_are_linear():
  """Negative pre-activations reach the next layer as 0 after a hidden
  layer (ReLU), and unchanged where the layer is linear: the embedding
  (the encoder's last layer) and the reconstruction (the decoder's last)."""
  model = models.Autoencoder((6, 8, 7, 3))
  x = np.random.default_rng(0).standard_normal((32, 6), np.float32)

  def init_and_forward(key):
    params = models.init_autoencoder(model, key)
    return params, _forward(model, params, x)

  _, (calls, recon, z, z_alone, recon_alone) = jax.device_get(jax.jit(
      init_and_forward)(jax.random.key(0)))  # NumPy from here on
  order = ["encoder/dense_0", "encoder/dense_1", "encoder/dense_2",
           "decoder/dense_0", "decoder/dense_1", "decoder/dense_2"]
  assert sorted(calls) == sorted(order)
  linear = {"encoder/dense_2", "decoder/dense_2"}
  for layer, next_layer in zip(order, order[1:]):
    pre = calls[layer][1]
    assert (pre < 0).any() and (pre > 0).any(), layer  # the probe can tell
    expected = pre if layer in linear else np.maximum(pre, 0)
    np.testing.assert_array_equal(calls[next_layer][0], expected,
                                  err_msg=layer)
  # The model's outputs are the last layers' outputs, negatives kept.
  np.testing.assert_allclose(z, calls["encoder/dense_2"][1], rtol=1e-6)
  np.testing.assert_array_equal(recon, calls["decoder/dense_2"][1])
  assert (z < 0).any() and (recon < 0).any()
  # The stand-alone encoder (what DEC trains) and decoder are the same
  # functions.
  np.testing.assert_allclose(z_alone, z, rtol=1e-6)
  np.testing.assert_allclose(recon_alone, recon, rtol=1e-6)


def test_autoencoder_shapes():
  """Shapes only (jax.eval_shape: nothing is compiled)."""
  model = models.Autoencoder((20, 16, 3))
  params = jax.eval_shape(lambda key: models.init_autoencoder(model, key),
                          jax.random.key(0))
  assert params["encoder"]["dense_0"]["kernel"].shape == (20, 16)
  assert params["decoder"]["dense_1"]["kernel"].shape == (16, 20)
  z = jax.eval_shape(lambda p, x: model.apply({"params": p}, x,
                                              method="encode"),
                     params, jax.ShapeDtypeStruct((4, 20), jnp.float32))
  assert z.shape == (4, 3)
