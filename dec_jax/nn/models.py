"""Autoencoders. Parameters are plain pytrees: {'encoder': ..., 'decoder': ...}.

Two kinds (`config.model.kind`): `mlp`, DEC's dense D-500-500-2000-10 stack,
and `conv`, DCEC's convolutional autoencoder (Guo et al., 2017). Both take
and return flat rows [B, D]; the conv model reshapes them to images inside.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from dec_jax.errors import DecJaxError

Params = Any
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}  # compute dtypes
KINDS = ("mlp", "conv")
# How convs are computed (same function, same parameters): `matmul`, im2col
# patches @ kernel (see _conv_as_matmul); `xla`, XLA's convolutions (cuDNN
# on GPUs); `auto`, matmul on the CPU, XLA's elsewhere.
CONV_IMPLS = ("auto", "matmul", "xla")
DCEC_FEATURES = (32, 64, 128)  # DCEC's conv channels; kernels 5, 5, 3

# The MLP's dense kernels (`config.model.mlp_init`): `dec_keras`, DEC-keras's
# VarianceScaling(1/3, fan_in, uniform) = U(+-sqrt(1/fan_in)); `glorot_uniform`,
# Keras's default U(+-sqrt(6/(fan_in+fan_out))), which N2D's and IDEC's code
# use. Biases start at zero either way.
MLP_INITS = {
    "dec_keras": nn.initializers.variance_scaling(1.0 / 3.0, "fan_in",
                                                  "uniform"),
    "glorot_uniform": nn.initializers.glorot_uniform(),
}
# The default, and the init of every checkpoint saved before the choice existed.
DEFAULT_MLP_INIT = "dec_keras"


class MLP(nn.Module):
  """Dense stack, ReLU between layers, linear last layer."""

  features: Sequence[int]
  dtype: Any = jnp.float32
  mlp_init: str = DEFAULT_MLP_INIT  # a key of MLP_INITS

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i, width in enumerate(self.features):
      x = nn.Dense(width, kernel_init=MLP_INITS[self.mlp_init],
                   dtype=self.dtype, name=f"dense_{i}")(x)
      if i < len(self.features) - 1:
        x = nn.relu(x)
    return x


class _EncoderDecoder(nn.Module):
  """What both autoencoders share: an encoder then a decoder, built from the
  subclass's settings by encoder_module / decoder_module."""

  def setup(self):
    self.encoder = encoder_module(self)
    self.decoder = decoder_module(self)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.decoder(self.encoder(x))

  def encode(self, x: jax.Array) -> jax.Array:
    return self.encoder(x)


class Autoencoder(_EncoderDecoder):
  """MLP autoencoder D-h1-...-hk-d with the mirrored decoder.

  `dims` = (D, h1, ..., d): input width first, embedding width last. The
  embedding and the reconstruction are linear, hidden layers use ReLU.
  `mlp_init` names the kernels' initialisation (MLP_INITS).
  """

  dims: Sequence[int]
  dtype: Any = jnp.float32
  mlp_init: str = DEFAULT_MLP_INIT


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


# On the CPU, convolutions are computed as matmuls on patches
# (`_conv_as_matmul`): inside lax.scan / fori_loop -- where every epoch and
# DEC interval runs -- XLA:CPU's own convolutions are 10-50x slower than the
# same op compiled alone (jax-ml/jax#12868); dots are not. Measured on MNIST
# shapes, batch 256, 2 steps in a scan: the 14x14x32 -> 7x7x64 conv's
# gradient step 3.76 s with lax.conv, 0.22 s as matmul. `conv_as_matmul=False`
# uses XLA's convolutions (same parameters, same function); the benchmark
# compares both.


def _conv_as_matmul(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  """VALID conv (NHWC, HWIO) as one dot of im2col patches with the kernel."""
  kh, kw, cin, cout = kernel.shape
  out_h = (x.shape[1] - kh) // stride + 1
  out_w = (x.shape[2] - kw) // stride + 1
  patches = [x[:, dy:dy + stride * (out_h - 1) + 1:stride,
               dx:dx + stride * (out_w - 1) + 1:stride]
             for dy in range(kh) for dx in range(kw)]
  patches = jnp.concatenate(patches, -1) if len(patches) > 1 else patches[0]
  return patches @ kernel.reshape(kh * kw * cin, cout)


def _same_padding(size: int, kernel: int) -> tuple[int, int]:
  """'SAME' padding of a stride-2 conv (as lax's): output ceil(size / 2)."""
  total = max((-(-size // 2) - 1) * 2 + kernel - size, 0)
  return total // 2, total - total // 2


def _conv_transpose_by_phases(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`lax.conv_transpose(x, kernel, (2, 2), 'SAME')` as 4 stride-1 convs.

  The dilated form pads the zero-dilated input by ceil(k / 2) before (for
  kernels k >= 2, which every DCEC layer has). Output pixel (2i + py,
  2j + px) then only meets the kernel taps of one parity (the others land on
  inserted zeros), so each output phase is an ordinary VALID conv of the
  undilated input with that parity's sub-kernel (here a matmul); the 4
  phases are interleaved. Same result and parameters, no multiplications by
  the zeros.
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
      row.append(_conv_as_matmul(padded, kernel[fy::2, fx::2], 1))
    phases.append(jnp.stack(row, 3))   # [B, h, w, px, C]
  out = jnp.stack(phases, 2)           # [B, h, py, w, px, C]
  return out.reshape(batch, 2 * h, 2 * w, kernel.shape[-1])


class Conv2x(nn.Module):
  """Stride-2 'SAME' conv, or its transpose; `nn.Conv`'s / `nn.ConvTranspose`'s
  parameters (kernel [kh, kw, in, out], bias), so either computation
  (`as_matmul`, see above) reads the same checkpoints."""

  features: int
  kernel_size: tuple[int, int]
  transpose: bool = False
  as_matmul: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", conv_init,
                        (*self.kernel_size, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    x, kernel, bias = (a.astype(self.dtype) for a in (x, kernel, bias))
    if not self.as_matmul:  # XLA's convolutions
      conv = jax.lax.conv_transpose if self.transpose else (
          jax.lax.conv_general_dilated)
      y = conv(x, kernel, (2, 2), "SAME",
               dimension_numbers=("NHWC", "HWIO", "NHWC"))
    elif self.transpose:
      y = _conv_transpose_by_phases(x, kernel)
    else:
      pads = [_same_padding(x.shape[i + 1], kernel.shape[i]) for i in (0, 1)]
      y = _conv_as_matmul(jnp.pad(x, ((0, 0), *pads, (0, 0))), kernel, 2)
    return y + bias


class _ConvNet(nn.Module):
  """The settings DCEC's encoder, decoder and autoencoder share."""

  image_shape: tuple[int, ...]
  features: tuple[int, ...] = DCEC_FEATURES
  embedding: int = 10
  dtype: Any = jnp.float32
  conv_as_matmul: bool = True  # how, not what: see _conv_as_matmul


class ConvEncoder(_ConvNet):
  """Flat rows [B, H*W*C] -> images -> stride-2 convs (ReLU) -> dense embedding.

  'SAME' padding: each conv halves the spatial size, rounding up
  (28 -> 14 -> 7 -> 4, 8 -> 4 -> 2 -> 1). The embedding is linear.
  """


  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h, w, c = _image_dims(self.image_shape)
    x = x.reshape((x.shape[0], h, w, c))
    for i, width in enumerate(self.features):
      x = nn.relu(Conv2x(width, _kernel(i, len(self.features)),
                         as_matmul=self.conv_as_matmul, dtype=self.dtype,
                         name=f"conv_{i}")(x))
    return nn.Dense(self.embedding, kernel_init=conv_init, dtype=self.dtype,
                    name="embedding")(x.reshape((x.shape[0], -1)))


class ConvDecoder(_ConvNet):
  """The mirror of ConvEncoder: dense (ReLU) -> stride-2 transposed convs.

  Each transposed conv doubles the spatial size and is cropped to the size
  the matching encoder layer had, so any image size comes back exactly. The
  last layer outputs the image's channels, linear; returns flat rows [B, D].
  """


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
      x = Conv2x(width, _kernel(layer, depth), transpose=True,
                 as_matmul=self.conv_as_matmul, dtype=self.dtype,
                 name=f"deconv_{j}")(x)
      x = x[:, :sizes[layer][0], :sizes[layer][1]]
      if j < depth - 1:
        x = nn.relu(x)
    return x.reshape((z.shape[0], -1))


class ConvAutoencoder(_ConvNet, _EncoderDecoder):
  """DCEC's convolutional autoencoder on flat rows of `image_shape` images.

  Encoder: conv 32-64-128 (5x5, 5x5, 3x3, stride 2, ReLU), flatten, dense to
  the `embedding` (10); decoder: dense, then the mirrored transposed convs.
  `dims` = (D, embedding), as the MLP's first and last widths. One
  difference from DCEC's Keras code: its third conv is 'valid' (7 -> 3 on
  MNIST); here every conv is 'SAME' (7 -> 4), so any image size mirrors
  exactly.
  """


  @property
  def dims(self) -> tuple[int, int]:
    return (math.prod(self.image_shape), self.embedding)


AnyAutoencoder = Union[Autoencoder, ConvAutoencoder]


def make_autoencoder(kind: str, dims: Sequence[int], *,
                     image_shape: Optional[Sequence[int]] = None,
                     conv_features: Sequence[int] = DCEC_FEATURES,
                     dtype: Any = jnp.float32,
                     conv_impl: str = "auto",
                     mlp_init: str = DEFAULT_MLP_INIT) -> AnyAutoencoder:
  """The autoencoder of `kind` for inputs of width dims[0].

  mlp: the dense stack `dims` = (D, h1, ..., d), its kernels initialised as
  `mlp_init` says (MLP_INITS). conv: DCEC's network with
  `conv_features` channels on images of `image_shape` (H, W) or (H, W, C),
  H*W*C = D, embedding width dims[-1] (the hidden widths are not used),
  its convs computed as `conv_impl` says (CONV_IMPLS).
  """
  dims = tuple(int(d) for d in dims)
  if kind == "mlp":
    if mlp_init not in MLP_INITS:
      raise DecJaxError(f"Unknown model.mlp_init {mlp_init!r}; expected one "
                        f"of {tuple(MLP_INITS)}.")
    return Autoencoder(dims, dtype=dtype, mlp_init=mlp_init)
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
  if conv_impl not in CONV_IMPLS:
    raise DecJaxError(f"Unknown model.conv_impl {conv_impl!r}; expected one "
                      f"of {CONV_IMPLS}.")
  as_matmul = (conv_impl == "matmul" or conv_impl == "auto"
               and jax.default_backend() == "cpu")
  return ConvAutoencoder(image_shape, tuple(int(f) for f in conv_features),
                         dims[-1], dtype=dtype, conv_as_matmul=as_matmul)


def describe(model: AnyAutoencoder) -> dict:
  """What rebuilds `model` (with `from_description`), JSON-ready."""
  if isinstance(model, ConvAutoencoder):
    return {"kind": "conv", "dims": list(model.dims),
            "image_shape": list(model.image_shape),
            "conv_features": list(model.features)}
  return {"kind": "mlp", "dims": list(model.dims)}


def from_description(description: dict, dtype: Any = jnp.float32,
                     conv_impl: str = "auto") -> AnyAutoencoder:
  """The model `describe` described; descriptions without a kind are MLPs."""
  return make_autoencoder(
      description.get("kind", "mlp"), description["dims"],
      image_shape=description.get("image_shape"),
      conv_features=description.get("conv_features", DCEC_FEATURES),
      dtype=dtype, conv_impl=conv_impl)


def init_autoencoder(model: AnyAutoencoder, key: jax.Array) -> Params:
  """Returns the parameter pytree {'encoder': ..., 'decoder': ...}."""
  x = jnp.zeros((1, model.dims[0]), jnp.float32)
  return model.init(key, x)["params"]


@functools.partial(jax.jit, static_argnums=0)
def init_autoencoders(model: AnyAutoencoder, keys: jax.Array) -> Params:
  """init_autoencoder for each key of keys [S]: the parameters stacked on a
  leading member axis, as one compiled program (eagerly, each initialiser's
  small operations would compile one by one)."""
  return jax.vmap(lambda k: init_autoencoder(model, k))(keys)


def _conv_settings(model: "ConvAutoencoder") -> tuple:
  return (model.image_shape, model.features, model.embedding, model.dtype,
          model.conv_as_matmul)


def encoder_module(model: AnyAutoencoder) -> nn.Module:
  """The encoder as a stand-alone module: apply it to params['encoder']."""
  if isinstance(model, ConvAutoencoder):
    return ConvEncoder(*_conv_settings(model))
  return MLP(tuple(model.dims[1:]), dtype=model.dtype,
             mlp_init=model.mlp_init)


def decoder_module(model: AnyAutoencoder) -> nn.Module:
  """The decoder as a stand-alone module: apply it to params['decoder']."""
  if isinstance(model, ConvAutoencoder):
    return ConvDecoder(*_conv_settings(model))
  return MLP(tuple(reversed(model.dims[:-1])), dtype=model.dtype,
             mlp_init=model.mlp_init)
