"""A trained DEC model, loaded from its workdir, applied to new data.

  model = load_trained("workdirs/mnist_dec")
  labels = model.predict(x)        # x [N, D] (or [N, H, W, ...]): raw inputs
  q = model.soft_assign(x)         # [N, K]
  z = model.embed(x)               # [N, d]

Inputs are raw, as stored in the data file the model was trained on (e.g.
uint8 pixels 0-255): the model divides them by its run's input scale, as
`data.load` did, so the training data give the training clusters. A
`data.Dataset` is taken too (its features, x / divisor), when loaded with
the model's scale; one loaded with another is refused.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import os
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from dec_jax.core import clustering
from dec_jax.runner import data
from dec_jax.nn import models
from dec_jax.train.dec_loop import embed
from dec_jax.errors import DecJaxError
from dec_jax.nn.models import DTYPES
from dec_jax.runner.workdir import (CHECKPOINTS, CONFIG, load_meta,
                                    load_params, read_json)

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

  def input_divisor(self, x: np.ndarray) -> float:
    """What raw inputs x are divided by: the training run's scale. A model
    saved without it (older dec_jax) takes scale=auto's: 255 for uint8 x,
    else 1."""
    trained = _number(self.scale)
    if trained is not None:
      return trained
    return 255.0 if x.dtype == np.uint8 else 1.0

  def _inputs(self, x) -> tuple[jax.Array, float]:
    """(inputs [N, D] as stored, what they are divided by) of raw inputs
    or of a `data.Dataset`, checked to fit the model."""
    if isinstance(x, data.Dataset):
      trained = _number(self.scale)
      if trained is not None and x.scale != trained:
        raise DecJaxError(
            f"the data were loaded with scale={x.scale:g}, but the model was "
            f"trained on inputs divided by {trained:g}; load them with "
            f"scale={trained:g}, or pass the raw inputs.")
      array, divisor = x.x, x.divisor
    else:
      array = np.asarray(x)
      divisor = self.input_divisor(array)
    shape = array.shape
    if array.ndim > 2:
      array = array.reshape(shape[0], -1)
    if array.ndim != 2 or array.shape[1] != self.dims[0]:
      raise DecJaxError(f"data of shape {shape} does not fit the model, "
                        f"which expects [N, {self.dims[0]}].")
    if array.dtype != np.uint8:
      if (not np.issubdtype(array.dtype, np.number)
          or np.issubdtype(array.dtype, np.complexfloating)):
        raise DecJaxError(f"data must be real numbers, got dtype "
                          f"{array.dtype}.")
      array = np.asarray(array, np.float32)
      if not np.isfinite(array).all():
        raise DecJaxError("data contains NaN or inf.")
    return jnp.asarray(array), divisor

  def embed(self, x) -> np.ndarray:
    """Embeddings z [N, d] of raw inputs x [N, D] (see the module doc)."""
    return np.asarray(_embed(self.encoder, self.encoder_params,
                             *self._inputs(x)))

  def soft_assign(self, x) -> np.ndarray:
    """Student-t soft assignments q [N, K] of raw inputs x [N, D]."""
    z = _embed(self.encoder, self.encoder_params, *self._inputs(x))
    return np.asarray(clustering.soft_assign(z, self.centres, self.alpha))

  def soft_assign_embedding(self, z) -> np.ndarray:
    """q [N, K] of embeddings z [N, d] (from `embed`: one pass for both)."""
    return np.asarray(clustering.soft_assign(jnp.asarray(z), self.centres,
                                             self.alpha))

  def predict(self, x) -> np.ndarray:
    """Cluster ids [N] of raw inputs x [N, D]: argmax_j q_ij."""
    return self.soft_assign(x).argmax(axis=1)


def _number(scale: Any) -> Optional[float]:
  """A saved scale as a number; None for 'auto' (not recorded)."""
  try:
    return float(scale)
  except (TypeError, ValueError):
    return None


@functools.partial(jax.jit, static_argnums=(0, 3))
def _embed(encoder, encoder_params: Any, x: jax.Array, divisor: float):
  return embed(encoder, encoder_params, x, CHUNK_SIZE, divisor)


def load_trained(workdir: str) -> TrainedModel:
  """Loads the DEC model a finished (or at least clustered) run saved."""
  meta = load_meta(workdir, "dec")
  if meta is None:
    members = sorted(os.path.relpath(os.path.dirname(os.path.dirname(p)),
                                     workdir) for p in glob.glob(
        os.path.join(workdir, "**", CHECKPOINTS, "dec.json"), recursive=True))
    if members:
      raise DecJaxError(f"{workdir!r} holds a stack of runs, each with its "
                        f"own model: pass one of its members' folders "
                        f"({', '.join(members[:5])}"
                        f"{', ...' if len(members) > 5 else ''}).")
    raise DecJaxError(f"{workdir!r} holds no trained DEC model "
                      "(checkpoints/dec and its .json): only dec and idec "
                      "runs save one (n2d's UMAP is not saved).")
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
