"""Autoencoders. Parameters are plain pytrees: {'encoder': ..., 'decoder': ...}."""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Params = Any
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}  # compute dtypes

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


def init_autoencoder(model: Autoencoder, key: jax.Array) -> Params:
  """Returns the parameter pytree {'encoder': ..., 'decoder': ...}."""
  x = jnp.zeros((1, model.dims[0]), jnp.float32)
  return model.init(key, x)["params"]


def encoder_module(model: Autoencoder) -> MLP:
  """The encoder as a stand-alone module: apply it to params['encoder']."""
  return MLP(tuple(model.dims[1:]), dtype=model.dtype)


def decoder_module(model: Autoencoder) -> MLP:
  """The decoder as a stand-alone module: apply it to params['decoder']."""
  return MLP(tuple(reversed(model.dims[:-1])), dtype=model.dtype)
