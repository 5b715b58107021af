"""The DEC family's model and training options: the convolutional autoencoder
(DCEC), greedy layer-wise denoising pretraining (DEC) and augmentation
(DEC-DA), each on its own and through whole runs on tiny data."""

import functools
import os
import types

import flax.linen
import jax
import ml_collections
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dec_jax.nn import augment
from dec_jax.runner import checks
from dec_jax.train import dec_loop
from dec_jax.runner import data
from dec_jax.nn import models
from dec_jax.apps import predict
from dec_jax.train import optim
from dec_jax.train import pretrain
from dec_jax.runner import pretrained
from dec_jax.errors import DecJaxError
from dec_jax.runner.run import run
from dec_jax.runner.workdir import load_meta, load_params, read_metrics
from tests.conftest import independent_scores
from tests.test_end_to_end import tiny_config


@pytest.fixture(scope="module")
def digits():
  return data.load("digits")


@pytest.fixture(scope="module")
def digit_images(digits, tmp_path_factory):
  """240 8x8 digits of classes 0-3 saved as images [N, 8, 8] (an npz)."""
  keep = np.flatnonzero(digits.y < 4)[:240]
  path = tmp_path_factory.mktemp("images") / "digits4.npz"
  np.savez(path, x=digits.x[keep].reshape(-1, 8, 8), y=digits.y[keep])
  return str(path)


def assert_scores_match_saved_labels(workdir, results, images_npz):
  """results.json's ACC/NMI/ARI are those of the saved assignment against
  the data's labels (computed independently); returns the saved labels."""
  labels = np.load(os.path.join(workdir, "assignments.npz"))["labels"]
  recomputed = independent_scores(np.load(images_npz)["y"], labels)
  for key in ("acc", "nmi", "ari"):
    assert results[key] == pytest.approx(recomputed[key], abs=1e-12), key
  assert np.bincount(labels, minlength=4).tolist() == results["cluster_sizes"]
  return labels


def conv_config(source, **overrides):
  """tiny_config with the conv model: few epochs, short DEC stage."""
  config = tiny_config(source, **overrides)
  config.model.kind = "conv"
  config.model.conv_features = (4, 8)  # two stride-2 convs: 8 -> 4 -> 2
  config.pretrain.epochs = 2
  config.dec.maxiter = 20
  config.update(overrides)
  return config


# ------------------------------------------------------ conv autoencoder


@pytest.mark.parametrize("image_shape", [(28, 28), (8, 8), (16, 16, 3)])
def test_conv_autoencoder_encodes_to_10d_and_reconstructs_input_shape(
    image_shape):
  """Shapes only (jax.eval_shape: nothing is compiled), DCEC's widths."""
  dim = int(np.prod(image_shape))
  model = models.make_autoencoder("conv", (dim, 500, 10),
                                  image_shape=image_shape)
  params = jax.eval_shape(lambda key: models.init_autoencoder(model, key),
                          jax.random.key(0))
  apply = lambda module: lambda p, x: module.apply({"params": p}, x)
  x = jax.ShapeDtypeStruct((3, dim), jnp.float32)
  z = jax.eval_shape(apply(models.encoder_module(model)), params["encoder"], x)
  recon = jax.eval_shape(apply(models.decoder_module(model)),
                         params["decoder"], z)
  assert z.shape == (3, 10) and recon.shape == x.shape
  # The whole model is the stand-alone encoder followed by the decoder.
  parts = {name: jax.eval_shape(lambda k, module=module, width=width:
                                module.init(k, jnp.zeros((1, width)))[
                                    "params"], jax.random.key(0))
           for name, module, width in (
               ("encoder", models.encoder_module(model), dim),
               ("decoder", models.decoder_module(model), 10))}
  assert jax.tree.map(lambda a: a.shape, parts) == jax.tree.map(
      lambda a: a.shape, params)
  channels = image_shape[2] if len(image_shape) == 3 else 1
  assert params["encoder"]["conv_0"]["kernel"].shape == (5, 5, channels, 32)
  assert params["decoder"]["deconv_2"]["kernel"].shape == (5, 5, 32, channels)
  assert params["encoder"]["conv_2"]["kernel"].shape == (3, 3, 64, 128)
  assert models.from_description(models.describe(model)) == model


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("size,kernel", [((4, 4), (3, 3)), ((7, 7), (5, 5)),
                                         ((2, 3), (5, 3)), ((5, 1), (2, 4))])
def test_conv2x_is_flax_conv(size, kernel, transpose):
  """Both computations give nn.Conv's / nn.ConvTranspose's output from their
  parameters (so checkpoints do not depend on the computation)."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, *size, 3)), jnp.float32)
  flax_conv = (flax.linen.ConvTranspose if transpose else flax.linen.Conv)(
      4, kernel, strides=(2, 2), padding="SAME")
  # Random parameters (a non-zero bias, so that it is checked too) drawn by
  # NumPy: flax's initialisers compile for seconds per shape, and their
  # distribution does not matter here.
  variables = jax.tree.map(
      lambda a: jnp.asarray(rng.normal(size=a.shape), jnp.float32),
      jax.eval_shape(flax_conv.init, jax.random.key(1), x))
  expected = jax.jit(flax_conv.apply)(variables, x)
  for as_matmul in (True, False):
    ours = models.Conv2x(4, kernel, transpose=transpose, as_matmul=as_matmul)
    assert jax.tree.map(jnp.shape, jax.eval_shape(
        ours.init, jax.random.key(1), x)) == jax.tree.map(jnp.shape,
                                                          variables)
    np.testing.assert_allclose(jax.jit(ours.apply)(variables, x), expected,
                               rtol=1e-5, atol=1e-5)


def test_conv_model_without_image_shape_is_a_clear_error(tmp_path, blobs_npz):
  with pytest.raises(DecJaxError, match="needs images"):
    models.make_autoencoder("conv", (8, 10))
  with pytest.raises(DecJaxError, match="does not fit inputs of width 64"):
    models.make_autoencoder("conv", (64, 10), image_shape=(7, 7))
  for overrides in ({"model": {"kind": "conv"}}, {"augment": True}):
    with pytest.raises(DecJaxError, match="need.* images"):
      run(tiny_config(blobs_npz, **overrides), str(tmp_path / "never"))
    assert not (tmp_path / "never").exists()
  with pytest.raises(DecJaxError, match="Unknown model.kind"):
    checks.validate_config(tiny_config(blobs_npz, model={"kind": "resnet"}))
  with pytest.raises(DecJaxError, match="Unknown model.conv_impl 'cudnn'"):
    checks.validate_config(tiny_config(blobs_npz,
                                       model={"conv_impl": "cudnn"}))


def test_conv_impl_picks_the_computation():
  conv = functools.partial(models.make_autoencoder, "conv", (64, 10),
                           image_shape=(8, 8))
  assert conv(conv_impl="matmul").conv_as_matmul
  assert not conv(conv_impl="xla").conv_as_matmul
  assert conv().conv_as_matmul == (jax.default_backend() == "cpu")


@pytest.fixture(scope="module")
def conv_ae_kmeans(digit_images, tmp_path_factory):
  """A conv ae_kmeans run on the digit images: (workdir, results)."""
  workdir = str(tmp_path_factory.mktemp("conv") / "ae_kmeans")
  return workdir, run(conv_config(digit_images, method="ae_kmeans"), workdir)


def test_conv_ae_kmeans_runs_end_to_end(conv_ae_kmeans, digit_images):
  workdir, results = conv_ae_kmeans
  assert_scores_match_saved_labels(workdir, results, digit_images)
  # 2 epochs on 240 digits 0-3 gave 0.63; labels at random, about 0.3.
  assert results["acc"] > 0.45
  assert "pretrain" in results["times_s"]
  saved = load_params(workdir, "autoencoder")
  assert saved["encoder"]["conv_1"]["kernel"].shape == (3, 3, 4, 8)
  # The conv autoencoder is never taken for an MLP one: not by a rerun in
  # its workdir (other fingerprint), not from pretrained_workdir (error).
  dataset = data.load(digit_images)
  mlp = tiny_config(digit_images, method="dec")
  mlp_dims = (64,) + tuple(mlp.model.dims)
  params, why = pretrained.find(mlp, types.SimpleNamespace(path=workdir),
                                mlp_dims, dataset)
  assert params is None and "model_kind" in why["reason"]
  mlp.pretrained_workdir = workdir
  with pytest.raises(DecJaxError, match="other model_kind"):
    pretrained.find(mlp, types.SimpleNamespace(path=workdir), mlp_dims,
                    dataset)
  conv = conv_config(digit_images, method="dec")
  params, _ = pretrained.find(conv, types.SimpleNamespace(path=workdir),
                              (64,) + tuple(conv.model.dims), dataset)
  assert params is not None  # the same settings: reused


@pytest.mark.parametrize("method", ["dec", "idec"])
def test_conv_dec_and_idec_run_end_to_end_and_predict(
    tmp_path, conv_ae_kmeans, digit_images, method):
  workdir = str(tmp_path / method)
  results = run(conv_config(digit_images, method=method,
                            pretrained_workdir=conv_ae_kmeans[0]), workdir)
  assert results["pretrain_reused"] and results["iterations"] > 0
  labels = assert_scores_match_saved_labels(workdir, results, digit_images)
  assert results["acc"] > 0.45  # 0.63 when written; at random about 0.3
  assert results["init_metrics"]["acc"] == conv_ae_kmeans[1]["acc"]
  # predict rebuilds the conv encoder from the saved description.
  trained = predict.load_trained(workdir)
  assert trained.architecture["kind"] == "conv"
  x = np.load(digit_images)["x"].reshape(240, 64)
  np.testing.assert_array_equal(trained.predict(x), labels)


def test_fingerprint_names_the_model_kind(blobs_npz):
  """A conv and an MLP autoencoder of the same settings are told apart."""
  mlp = pretrained.fingerprint(tiny_config(blobs_npz), (8, 32, 4), "h")
  conv = pretrained.fingerprint(
      tiny_config(blobs_npz, model={"kind": "conv"}), (8, 32, 4), "h")
  assert conv["model_kind"] == "conv" and mlp["model_kind"] == "mlp"


def test_mlp_init_reaches_the_model_and_tells_checkpoints_apart(blobs_npz):
  """model.mlp_init builds the model with that init; a glorot_uniform
  autoencoder's fingerprint differs from the default's, which keeps the
  fingerprint it had before the setting existed (old checkpoints match)."""
  glorot = tiny_config(blobs_npz, model={"mlp_init": "glorot_uniform"})
  assert pretrained.build_model(glorot, (8, 32, 4), None).mlp_init == (
      "glorot_uniform")
  default = pretrained.fingerprint(tiny_config(blobs_npz), (8, 32, 4), "h")
  assert "mlp_init" not in default
  assert pretrained.why_not_reused(
      default, pretrained.fingerprint(glorot, (8, 32, 4), "h")) == (
          "it was saved with other settings (mlp_init)")


# ------------------------------------------- greedy layer-wise pretraining


def test_corruption_zeroes_a_fifth_of_the_inputs_and_keeps_the_mean():
  x = jnp.ones((200, 500))
  out = np.asarray(pretrain.corrupt(jax.random.key(0), x, 0.2))
  assert abs((out == 0).mean() - 0.2) < 0.005
  np.testing.assert_allclose(out[out != 0], 1 / 0.8, rtol=1e-6)
  assert abs(out.mean() - 1.0) < 0.01
  other = np.asarray(pretrain.corrupt(jax.random.key(1), x, 0.2))
  assert ((out == 0) != (other == 0)).any()


def test_greedy_training_corrupts_its_inputs():
  """The denoising loss with a key is the loss of a dropout-corrupted pass:
  it differs from the clean loss and varies with the key."""
  model = models.Autoencoder((16, 8, 4))
  params = models.init_autoencoder(model, jax.random.key(0))
  pair = pretrain.layer_pair_params(model, params, 0)
  h = jax.random.uniform(jax.random.key(1), (64, 16))
  loss = functools.partial(pretrain.denoising_loss, model, 0, pair, h)
  clean, noisy0, noisy1, uncorrupted = jax.jit(lambda: (  # one compile
      loss(), loss(jax.random.key(0)), loss(jax.random.key(1)),
      loss(jax.random.key(0), rate=0.0)))()
  assert noisy0 != clean and noisy1 != clean and noisy0 != noisy1
  assert uncorrupted == pytest.approx(float(clean))


def test_greedy_pretraining_lowers_each_layer_and_the_stack_loss(digits):
  model = models.Autoencoder((64, 32, 5))
  init = models.init_autoencoder(model, jax.random.key(0))
  x = jnp.asarray(digits.x[:512])
  records = []
  params = jax.tree.map(lambda a: a[0], pretrain.greedy_pretrain(
      model, dec_loop.stack([init]), x, jax.random.key(1)[None],
      optax.adam(3e-3), epochs=8, batch_size=64, log_every=1,
      log_fn=lambda j, record: records.append(record)))
  for layer in range(2):
    losses = [r["loss"] for r in records if r["layer"] == layer]
    assert len(losses) == 8 and losses[-1] < 0.6 * losses[0]
    h = pretrain.layer_inputs(model, params, x, layer)
    before, after = (pretrain.denoising_loss(
        model, layer, pretrain.layer_pair_params(model, p, layer), h)
                     for p in (init, params))
    assert after < 0.5 * before
  assert pretrain.reconstruction_loss(model, params, x) < 0.5 * (
      pretrain.reconstruction_loss(model, init, x))


def test_greedy_pretraining_of_a_stack_is_each_members_own(digits):
  # One execution path: members trained together end as each trained alone.
  model = models.Autoencoder((64, 16, 4))
  inits = [models.init_autoencoder(model, jax.random.key(s)) for s in (0, 1)]
  keys = jnp.stack([jax.random.key(5), jax.random.key(6)])
  hp = {"learning_rate": jnp.array([1e-3, 3e-3]),
        "momentum": jnp.array([0.9, 0.9])}
  tx = optim.from_hyper(ml_collections.ConfigDict(
      {"optimizer": "adam", "schedule": "constant"}), 20)
  x = jnp.asarray(digits.x[:256])
  run = lambda index: pretrain.greedy_pretrain(
      model, dec_loop.stack([inits[i] for i in index]), x,
      keys[np.asarray(index)], tx,
      hp=jax.tree.map(lambda a: a[np.asarray(index)], hp), epochs=2,
      batch_size=64)
  together = run([0, 1])
  for i in (0, 1):
    jax.tree.map(functools.partial(np.testing.assert_allclose, atol=1e-6),
                 jax.tree.map(lambda a: a[i], together),
                 jax.tree.map(lambda a: a[0], run([i])))


def test_greedy_pretraining_is_for_mlp_only(blobs_npz):
  conv = models.make_autoencoder("conv", (64, 10), image_shape=(8, 8))
  with pytest.raises(DecJaxError, match="model.kind=mlp only"):
    pretrain.greedy_pretrain(conv, None, jnp.zeros((4, 64)),
                             jax.random.key(0), optax.adam(1e-3), epochs=1,
                             batch_size=2)
  with pytest.raises(DecJaxError, match="greedy_epochs"):
    checks.validate_config(tiny_config(
        blobs_npz, model={"kind": "conv"}, pretrain={"greedy_epochs": 2}))


# --------------------------------------------------------- augmentation


def test_augmentation_keeps_shape_dtype_and_value_range(digits):
  fn = jax.jit(augment.make_augment_fn((8, 8)))
  for dtype in (jnp.float32, jnp.bfloat16):
    x = jnp.asarray(digits.x[:50], dtype)
    out = fn(jax.random.key(0), x)
    assert out.shape == x.shape and out.dtype == dtype
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not jnp.array_equal(out, x)


def test_augmentation_is_the_identity_at_zero_shift_and_rotation(digits):
  x = jnp.asarray(digits.x[:20])
  still = augment.make_augment_fn((8, 8), shift=0.0, rotation_deg=0.0)
  np.testing.assert_array_equal(still(jax.random.key(3), x), x)


def test_augmentation_differs_across_keys_and_samples(digits):
  fn = augment.make_augment_fn((8, 8))
  x = jnp.repeat(jnp.asarray(digits.x[:1]), 4, axis=0)  # one image 4 times
  a, b = fn(jax.random.key(0), x), fn(jax.random.key(1), x)
  assert not np.allclose(a, b)
  assert all(not np.allclose(a[0], a[i]) for i in range(1, 4))
  np.testing.assert_array_equal(a, fn(jax.random.key(0), x))


@pytest.mark.parametrize("shift", [(2.0, -3.0), (0.0, 1.0), (-1.0, 0.0)])
def test_shifted_pixel_moves_by_the_shift(shift):
  image = jnp.zeros((28, 28)).at[10, 12].set(1.0)
  out = np.asarray(augment.affine_image(image, jnp.asarray(shift), 0.0))
  expected = np.zeros((28, 28))
  expected[10 + int(shift[0]), 12 + int(shift[1])] = 1.0
  np.testing.assert_allclose(out, expected, atol=1e-6)


def test_half_pixel_shift_splits_the_pixel_and_rotation_turns_about_centre():
  image = jnp.zeros((9, 9)).at[4, 6].set(1.0)  # 2 right of the centre (4, 4)
  half = np.asarray(augment.affine_image(image, jnp.asarray([0.0, 0.5]), 0.0))
  np.testing.assert_allclose(half[4, 6:8], [0.5, 0.5], atol=1e-6)
  # +90 degrees: counter-clockwise as displayed (rows down), right -> up.
  turned = np.asarray(augment.affine_image(image, jnp.zeros(2), np.pi / 2))
  assert np.argwhere(turned > 0.99).tolist() == [[2, 4]]


def test_max_shift_is_3_pixels_at_28_and_scales_with_size():
  assert augment.max_shift((28, 28)) == 3.0
  assert augment.max_shift((8, 8)) == pytest.approx(3.0 * 8 / 28)


def test_pretraining_epoch_reconstructs_the_augmented_input(digits):
  """With lr 0 the epoch's mean loss is the loss on what augment_fn gave:
  here all-zero images, whose loss differs from the clean one."""
  model = models.Autoencoder((64, 16, 4))
  params = models.init_autoencoder(model, jax.random.key(0))
  x = jnp.asarray(digits.x[:128])
  tx = optax.sgd(0.0)
  zeros = lambda key, xb: jnp.zeros_like(xb)
  epoch = pretrain.make_epoch_fn(model, tx, 128, 32, augment_fn=zeros)
  copy = jax.tree.map(jnp.array, params)  # the state is donated
  _, loss = epoch({"params": copy, "opt": tx.init(copy)}, x,
                  jax.random.key(0))
  np.testing.assert_allclose(
      loss, pretrain.reconstruction_loss(model, params, jnp.zeros((32, 64))),
      rtol=1e-6)
  assert abs(float(loss) - float(pretrain.reconstruction_loss(
      model, params, x))) > 1e-3


def test_dec_step_uses_augmented_inputs_against_clean_targets(digits):
  """lr 0, full batches, an augment that blanks the images: the interval's
  loss is KL(P || Q(blank images)) with P computed from the clean x."""
  model = models.Autoencoder((64, 16, 4))
  params = models.init_autoencoder(model, jax.random.key(0))
  encoder = models.encoder_module(model)
  x = jnp.asarray(digits.x[:64])
  full = {"encoder": params["encoder"],
          "centres": jax.random.normal(jax.random.key(1), (5, 4))}
  cfg = dec_loop.DECConfig(batch_size=64, update_interval=2)
  tx = optax.sgd(0.0)
  blank = lambda key, xb: jnp.zeros_like(xb)
  target_update, train_interval = dec_loop.make_dec_fns(
      encoder, tx, 64, cfg, augment_fn=blank)
  p = target_update(full, x, jnp.zeros(64, jnp.int32))["p"]
  copy = jax.tree.map(jnp.array, full)  # the state is donated
  _, loss = train_interval({"params": copy, "opt": tx.init(copy)}, x, p,
                           jax.random.key(2), 2)
  expected = dec_loop.dec_loss(encoder, full, jnp.zeros_like(x), p, 1.0)
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  assert abs(float(expected) - float(
      dec_loop.dec_loss(encoder, full, x, p, 1.0))) > 1e-3


def test_greedy_pretraining_and_augmentation_run_through_a_dec_run(
    tmp_path, digit_images, monkeypatch):
  """One whole DEC run with both options: greedy pretraining runs first,
  layer by layer, then end to end; the augmentation is traced into the
  pretraining epoch and into the DEC train interval (recorded at trace
  time); the autoencoder's description records both."""
  traced = []
  make = augment.make_augment_fn

  def recording_make(image_shape, **kwargs):
    fn = make(image_shape, **kwargs)

    def augment_fn(key, x):
      traced.append(x.shape)
      return fn(key, x)
    return augment_fn

  monkeypatch.setattr(augment, "make_augment_fn", recording_make)
  workdir = str(tmp_path / "greedy_augmented")
  results = run(tiny_config(digit_images, augment=True,
                            pretrain={"epochs": 3, "greedy_epochs": 2}),
                workdir)
  assert results["iterations"] > 0
  assert_scores_match_saved_labels(workdir, results, digit_images)
  assert traced.count((32, 64)) >= 2  # pretraining and DEC minibatches
  assert results["pretrain_greedy_epochs"] == 2
  assert "pretrain_greedy" in results["times_s"]
  records = read_metrics(workdir)
  stages = [r["stage"] for r in records if r["stage"].startswith("pretrain")]
  assert stages.index("pretrain_greedy") < stages.index("pretrain")
  assert {r["layer"] for r in records if r["stage"] == "pretrain_greedy"} == {
      0, 1}
  meta = load_meta(workdir, "autoencoder")
  assert meta["augment"] and meta["pretrain"]["greedy_epochs"] == 2
