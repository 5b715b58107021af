"""A trained DEC model, loaded from its workdir, applied to new data.

  model = load_trained("workdirs/mnist_dec")
  labels = model.predict(x)        # x [N, D], scaled as in training
  q = model.soft_assign(x)         # [N, K]
  z = model.embed(x)               # [N, d]
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dec_jax.core import clustering
from dec_jax.nn import models
from dec_jax.train.dec_loop import embed
from dec_jax.errors import DecJaxError
from dec_jax.nn.models import DTYPES
from dec_jax.runner.workdir import CONFIG, load_meta, load_params, read_json

CHUNK_SIZE = 8192


@dataclasses.dataclass(frozen=True)
class TrainedModel:
  """Encoder + centres of a finished DEC run; `config` is the run's config."""

  encoder_params: Any
  centres: jax.Array  # [K, d]
  dims: tuple[int, ...]
  alpha: float
  config: dict
  dtype: str = "float32"  # compute dtype of the encoder, as in training
  scale: Any = "auto"     # the divisor the training inputs were scaled by
  # The autoencoder (models.describe): kind, dims, image shape, conv widths.
  architecture: Any = None

  @property
  def encoder(self):
    """The encoder module the run trained (MLP or conv)."""
    description = self.architecture or {"kind": "mlp",
                                        "dims": list(self.dims)}
    return models.encoder_module(models.from_description(
        description, DTYPES[self.dtype]))

  @property
  def n_clusters(self) -> int:
    return int(self.centres.shape[0])

  def _check(self, x) -> jax.Array:
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[1] != self.dims[0]:
      raise DecJaxError(f"data of shape {x.shape} does not fit the model, "
                        f"which expects [N, {self.dims[0]}].")
    if not np.isfinite(x).all():
      raise DecJaxError("data contains NaN or inf.")
    return jnp.asarray(x)

  def embed(self, x) -> np.ndarray:
    """Embeddings z [N, d] of x [N, D]."""
    return np.asarray(_embed(self.encoder, self.encoder_params,
                             self._check(x)))

  def soft_assign(self, x) -> np.ndarray:
    """Student-t soft assignments q [N, K] of x [N, D]."""
    z = _embed(self.encoder, self.encoder_params, self._check(x))
    return np.asarray(clustering.soft_assign(z, self.centres, self.alpha))

  def predict(self, x) -> np.ndarray:
    """Cluster ids [N]: argmax_j q_ij."""
    return self.soft_assign(x).argmax(axis=1)


@functools.partial(jax.jit, static_argnums=0)
def _embed(encoder, encoder_params: Any, x: jax.Array):
  return embed(encoder, encoder_params, x, CHUNK_SIZE)


def load_trained(workdir: str) -> TrainedModel:
  """Loads the DEC model a finished (or at least clustered) run saved."""
  meta = load_meta(workdir, "dec")
  if meta is None:
    raise DecJaxError(f"{workdir!r} holds no trained DEC model "
                      "(checkpoints/dec and its .json); run method=dec first.")
  params = load_params(workdir, "dec")
  if params is None:
    raise DecJaxError(f"{workdir!r}: checkpoints/dec is missing.")
  config_path = os.path.join(workdir, CONFIG)
  config = read_json(config_path) if os.path.exists(config_path) else {}
  return TrainedModel(
      encoder_params=jax.tree.map(jnp.asarray, params["encoder"]),
      centres=jnp.asarray(params["centres"]), dims=tuple(meta["dims"]),
      alpha=float(meta["alpha"]), config=config,
      dtype=meta.get("dtype", "float32"), scale=meta.get("scale", "auto"),
      architecture={k: meta[k] for k in ("kind", "dims", "image_shape",
                                         "conv_features") if k in meta})
