"""Autoencoders. Parameters are plain pytrees: {'encoder': ..., 'decoder': ...}.

Two kinds (`config.model.kind`): `mlp`, DEC's dense D-500-500-2000-10 stack,
and `conv`, DCEC's convolutional autoencoder (Guo et al., 2017). Both take
and return flat rows [B, D]; the conv model reshapes them to images inside.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from dec_jax.errors import DecJaxError

Params = Any
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}  # compute dtypes
KINDS = ("mlp", "conv")
DCEC_FEATURES = (32, 64, 128)  # DCEC's conv channels; kernels 5, 5, 3

# DEC-keras's init: VarianceScaling(1/3, fan_in, uniform) = U(+-sqrt(1/fan_in)).
dense_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


class MLP(nn.Module):
  """Dense stack, ReLU between layers, linear last layer."""

  features: Sequence[int]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i, width in enumerate(self.features):
      x = nn.Dense(width, kernel_init=dense_init, dtype=self.dtype,
                   name=f"dense_{i}")(x)
      if i < len(self.features) - 1:
        x = nn.relu(x)
    return x


class Autoencoder(nn.Module):
  """MLP autoencoder D-h1-...-hk-d with the mirrored decoder.

  `dims` = (D, h1, ..., d): input width first, embedding width last. The
  embedding and the reconstruction are linear, hidden layers use ReLU.
  """

  dims: Sequence[int]
  dtype: Any = jnp.float32

  def setup(self):
    self.encoder = MLP(tuple(self.dims[1:]), dtype=self.dtype)
    self.decoder = MLP(tuple(reversed(self.dims[:-1])), dtype=self.dtype)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.decoder(self.encoder(x))

  def encode(self, x: jax.Array) -> jax.Array:
    return self.encoder(x)


# Keras's default init, as in DCEC.
conv_init = nn.initializers.xavier_uniform()


def _image_dims(image_shape: Sequence[int]) -> tuple[int, int, int]:
  """(H, W, C) of an (H, W) or channels-last (H, W, C) image shape."""
  h, w, *c = image_shape
  return int(h), int(w), int(c[0]) if c else 1


def _conv_sizes(image_shape: Sequence[int], depth: int) -> list[tuple[int, int]]:
  """Spatial sizes after each stride-2 'SAME' conv: ceil halvings of (H, W)."""
  h, w, _ = _image_dims(image_shape)
  sizes = [(h, w)]
  for _ in range(depth):
    h, w = -(-h // 2), -(-w // 2)
    sizes.append((h, w))
  return sizes


def _kernel(layer: int, depth: int) -> tuple[int, int]:
  """DCEC's kernels: 5x5, except 3x3 for the last (deepest) conv."""
  return (3, 3) if layer == depth - 1 and depth > 1 else (5, 5)


class ConvEncoder(nn.Module):
  """Flat rows [B, H*W*C] -> images -> stride-2 convs (ReLU) -> dense embedding.

  'SAME' padding: each conv halves the spatial size, rounding up
  (28 -> 14 -> 7 -> 4, 8 -> 4 -> 2 -> 1). The embedding is linear.
  """

  image_shape: tuple[int, ...]
  features: tuple[int, ...] = DCEC_FEATURES
  embedding: int = 10
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h, w, c = _image_dims(self.image_shape)
    x = x.reshape((x.shape[0], h, w, c))
    for i, width in enumerate(self.features):
      x = nn.relu(nn.Conv(width, _kernel(i, len(self.features)),
                          strides=(2, 2), padding="SAME",
                          kernel_init=conv_init, dtype=self.dtype,
                          name=f"conv_{i}")(x))
    return nn.Dense(self.embedding, kernel_init=conv_init, dtype=self.dtype,
                    name="embedding")(x.reshape((x.shape[0], -1)))


def _transpose_by_phases(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`lax.conv_transpose(x, kernel, (2, 2), 'SAME')` as 4 stride-1 convs.

  The dilated form pads the zero-dilated input by ceil(k / 2) before (for
  kernels k >= 2, which every DCEC layer has). Output
  pixel (2i + py, 2j + px) then only meets the kernel taps of one parity (the
  others land on inserted zeros), so each output phase is an ordinary VALID
  conv of the undilated input with that parity's sub-kernel; the 4 phases are
  interleaved. Same result and parameters, no multiplications by zeros, and a
  weight gradient that XLA:CPU computes about 5x faster (see ConvDecoder).
  """
  batch, h, w, _ = x.shape
  phases = []
  for py in range(2):
    row = []
    for px in range(2):
      taps = []  # per axis: (first tap, input offset of output 0, tap count)
      for phase, k in ((py, kernel.shape[0]), (px, kernel.shape[1])):
        low = (k + 1) // 2
        first = (low - phase) % 2
        taps.append((first, (phase + first - low) // 2,
                     len(range(first, k, 2))))
      (fy, oy, ty), (fx, ox, tx) = taps
      padded = jnp.pad(x, ((0, 0), (-oy, oy + ty - 1), (-ox, ox + tx - 1),
                           (0, 0)))
      row.append(jax.lax.conv_general_dilated(
          padded, kernel[fy::2, fx::2], (1, 1), "VALID",
          dimension_numbers=("NHWC", "HWIO", "NHWC")))
    phases.append(jnp.stack(row, 3))   # [B, h, w, px, C]
  out = jnp.stack(phases, 2)           # [B, h, py, w, px, C]
  return out.reshape(batch, 2 * h, 2 * w, kernel.shape[-1])


class ConvTranspose2x(nn.Module):
  """Stride-2 'SAME' transposed conv; the parameters of `nn.ConvTranspose`.

  `by_phases` picks the computation (see `_transpose_by_phases`); both give
  the same output for the same parameters, so checkpoints do not depend on it.
  """

  features: int
  kernel_size: tuple[int, int]
  by_phases: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", conv_init,
                        (*self.kernel_size, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    x, kernel, bias = (a.astype(self.dtype) for a in (x, kernel, bias))
    if self.by_phases:
      y = _transpose_by_phases(x, kernel)
    else:
      y = jax.lax.conv_transpose(x, kernel, (2, 2), "SAME",
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + bias


class ConvDecoder(nn.Module):
  """The mirror of ConvEncoder: dense (ReLU) -> stride-2 transposed convs.

  Each transposed conv doubles the spatial size and is cropped to the size
  the matching encoder layer had, so any image size comes back exactly. The
  last layer outputs the image's channels, linear; returns flat rows [B, D].
  """

  image_shape: tuple[int, ...]
  features: tuple[int, ...] = DCEC_FEATURES
  embedding: int = 10
  dtype: Any = jnp.float32
  transpose_by_phases: bool = True

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    depth = len(self.features)
    sizes = _conv_sizes(self.image_shape, depth)
    channels = _image_dims(self.image_shape)[2]
    h, w = sizes[-1]
    x = nn.relu(nn.Dense(h * w * self.features[-1], kernel_init=conv_init,
                         dtype=self.dtype, name="dense")(z))
    x = x.reshape((z.shape[0], h, w, self.features[-1]))
    widths = tuple(reversed(self.features[:-1])) + (channels,)
    for j, width in enumerate(widths):
      layer = depth - 1 - j  # the encoder layer this one mirrors
      # By phases, except the output layer: its stride-1 weight gradient
      # with a single output channel is the slow one on XLA:CPU (measured on
      # MNIST's 28x28, batch 256: hidden layers' gradients 5x faster by
      # phases, the output layer's 10x slower).
      x = ConvTranspose2x(width, _kernel(layer, depth),
                          by_phases=self.transpose_by_phases and j < depth - 1,
                          dtype=self.dtype,
                          name=f"deconv_{j}")(x)
      x = x[:, :sizes[layer][0], :sizes[layer][1]]
      if j < depth - 1:
        x = nn.relu(x)
    return x.reshape((z.shape[0], -1))


class ConvAutoencoder(nn.Module):
  """DCEC's convolutional autoencoder on flat rows of `image_shape` images.

  Encoder: conv 32-64-128 (5x5, 5x5, 3x3, stride 2, ReLU), flatten, dense to
  the `embedding` (10); decoder: dense, then the mirrored transposed convs.
  `dims` = (D, embedding), as the MLP's first and last widths. One
  difference from DCEC's Keras code: its third conv is 'valid' (7 -> 3 on
  MNIST); here every conv is 'SAME' (7 -> 4), so any image size mirrors
  exactly.
  """

  image_shape: tuple[int, ...]
  features: tuple[int, ...] = DCEC_FEATURES
  embedding: int = 10
  dtype: Any = jnp.float32
  transpose_by_phases: bool = True  # how, not what: see ConvDecoder

  @property
  def dims(self) -> tuple[int, int]:
    return (math.prod(self.image_shape), self.embedding)

  def setup(self):
    self.encoder = encoder_module(self)
    self.decoder = decoder_module(self)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.decoder(self.encoder(x))

  def encode(self, x: jax.Array) -> jax.Array:
    return self.encoder(x)


AnyAutoencoder = Union[Autoencoder, ConvAutoencoder]


def make_autoencoder(kind: str, dims: Sequence[int], *,
                     image_shape: Optional[Sequence[int]] = None,
                     conv_features: Sequence[int] = DCEC_FEATURES,
                     dtype: Any = jnp.float32) -> AnyAutoencoder:
  """The autoencoder of `kind` for inputs of width dims[0].

  mlp: the dense stack `dims` = (D, h1, ..., d). conv: DCEC's network with
  `conv_features` channels on images of `image_shape` (H, W) or (H, W, C),
  H*W*C = D, embedding width dims[-1] (the hidden widths are not used).
  """
  dims = tuple(int(d) for d in dims)
  if kind == "mlp":
    return Autoencoder(dims, dtype=dtype)
  if kind != "conv":
    raise DecJaxError(f"Unknown model.kind {kind!r}; expected one of {KINDS}.")
  if not image_shape:
    raise DecJaxError(
        "model.kind=conv needs images, but the data has no image shape (flat "
        "features: a CSV, a 2-D .npy/.npz array); save the images as [N, H, W] "
        "or [N, H, W, C] arrays, or use model.kind=mlp.")
  image_shape = tuple(int(s) for s in image_shape)
  if len(image_shape) not in (2, 3) or math.prod(image_shape) != dims[0]:
    raise DecJaxError(f"model.kind=conv: image shape {image_shape} does not "
                      f"fit inputs of width {dims[0]} (expected (H, W) or "
                      "(H, W, C) with H*W*C = width).")
  return ConvAutoencoder(image_shape, tuple(int(f) for f in conv_features),
                         dims[-1], dtype=dtype)


def describe(model: AnyAutoencoder) -> dict:
  """What rebuilds `model` (with `from_description`), JSON-ready."""
  if isinstance(model, ConvAutoencoder):
    return {"kind": "conv", "dims": list(model.dims),
            "image_shape": list(model.image_shape),
            "conv_features": list(model.features)}
  return {"kind": "mlp", "dims": list(model.dims)}


def from_description(description: dict, dtype: Any = jnp.float32
                     ) -> AnyAutoencoder:
  """The model `describe` described; descriptions without a kind are MLPs."""
  return make_autoencoder(
      description.get("kind", "mlp"), description["dims"],
      image_shape=description.get("image_shape"),
      conv_features=description.get("conv_features", DCEC_FEATURES),
      dtype=dtype)


def init_autoencoder(model: AnyAutoencoder, key: jax.Array) -> Params:
  """Returns the parameter pytree {'encoder': ..., 'decoder': ...}."""
  x = jnp.zeros((1, model.dims[0]), jnp.float32)
  return model.init(key, x)["params"]


def encoder_module(model: AnyAutoencoder) -> nn.Module:
  """The encoder as a stand-alone module: apply it to params['encoder']."""
  if isinstance(model, ConvAutoencoder):
    return ConvEncoder(model.image_shape, model.features, model.embedding,
                       dtype=model.dtype)
  return MLP(tuple(model.dims[1:]), dtype=model.dtype)


def decoder_module(model: AnyAutoencoder) -> nn.Module:
  """The decoder as a stand-alone module: apply it to params['decoder']."""
  if isinstance(model, ConvAutoencoder):
    return ConvDecoder(model.image_shape, model.features, model.embedding,
                       dtype=model.dtype,
                       transpose_by_phases=model.transpose_by_phases)
  return MLP(tuple(reversed(model.dims[:-1])), dtype=model.dtype)
