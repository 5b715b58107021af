"""Pretrained autoencoders: how one is described, found and reused.

A member's autoencoder is saved in its workdir as checkpoints/autoencoder
with a description (`fingerprint`: the data's content hash and every setting
that shapes the training). A rerun reuses it when the description matches;
`pretrained_workdir` reuses another run's (same data and architecture).
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from absl import logging
import jax
import ml_collections

from dec_jax.runner import data
from dec_jax.nn import models
from dec_jax.errors import DecJaxError
from dec_jax.runner.workdir import CHECKPOINTS, Workdir, load_meta, load_params

AUTOENCODER = "autoencoder"

# Fields that must agree for a pretrained_workdir's autoencoder to be used.
_DATA_FIELDS = ("data", "dims", "model_kind")


def build_model(config: ml_collections.ConfigDict, dims: tuple[int, ...],
                image_shape: Optional[tuple[int, ...]]
                ) -> models.AnyAutoencoder:
  """The configured autoencoder (model.kind) for inputs of width dims[0]."""
  return models.make_autoencoder(
      config.model.kind, dims, image_shape=image_shape,
      conv_features=config.model.conv_features,
      dtype=models.DTYPES[config.model.dtype],
      conv_impl=config.model.conv_impl)


def fingerprint(config: ml_collections.ConfigDict, dims: tuple[int, ...],
                data_hash: str) -> dict:
  """What determines a pretrained autoencoder; saved beside its checkpoint.
  `data_hash` is the content hash of the arrays loaded (data.Dataset's
  fingerprint), not their path."""
  conv = config.model.kind == "conv"
  return json.loads(json.dumps({
      "data": data_hash, "dataset": config.dataset,
      "split": config.split, "scale": str(config.scale), "seed": config.seed,
      "dims": list(dims), "dtype": config.model.dtype,
      "model_kind": config.model.kind,
      **({"conv_features": list(config.model.conv_features)} if conv else {}),
      "augment": bool(config.augment), "pretrain": config.pretrain.to_dict()}))


def _source(config: ml_collections.ConfigDict) -> str:
  """pretrained_workdir, or its seed<s>/ when it holds several members."""
  member = os.path.join(config.pretrained_workdir, f"seed{config.seed}")
  if os.path.isdir(os.path.join(member, CHECKPOINTS, AUTOENCODER)):
    return member
  return config.pretrained_workdir


def find(config: ml_collections.ConfigDict, workdir: Workdir,
         dims: tuple[int, ...], dataset: data.Dataset
         ) -> tuple[Optional[Any], Optional[dict]]:
  """(params, origin) of the autoencoder to reuse, or (None, None), or
  (None, {'not_reused': why}) when this workdir's differs.

  Either `pretrained_workdir`'s (the user asked for it; it must have been
  trained on the same data and dims), or this workdir's own when it was
  pretrained with exactly the same settings on the same data (e.g. a run
  interrupted during clustering, rerun).
  """
  wanted = fingerprint(config, dims, dataset.fingerprint)
  if config.pretrained_workdir:
    source = _source(config)
    meta = load_meta(source, AUTOENCODER)
    _require(meta is not None or not os.path.isdir(
        os.path.join(source, CHECKPOINTS, AUTOENCODER)),
             f"{source}'s checkpoints/{AUTOENCODER} has no description "
             f"({AUTOENCODER}.json): unfinished or foreign, not reused.")
    if meta is not None:
      differ = [f"{'data (content hash)' if f == 'data' else f} "
                f"({meta.get(f)} vs {wanted[f]})" for f in _DATA_FIELDS
                if meta.get(f) != wanted[f]]
      _require(not differ, f"The autoencoder in {source} was pretrained with "
               f"other {', '.join(differ)}.")
  else:
    source = workdir.path
    meta = load_meta(source, AUTOENCODER)
    if meta != wanted:
      return None, (None if meta is None else
                    {"not_reused": _why_not_reused(workdir, meta, wanted)})
  params = load_params(source, AUTOENCODER)
  if params is None:
    _require(not config.pretrained_workdir,
             f"pretrained_workdir {config.pretrained_workdir!r} holds no "
             f"checkpoints/{AUTOENCODER}.")
    return None, None
  _check_shapes(config, params, dims, dataset, source)
  return params, {"workdir": os.path.abspath(source), "settings": meta}


def _why_not_reused(workdir: Workdir, meta: dict, wanted: dict) -> str:
  """Why this workdir's autoencoder is retrained (also logged)."""
  if meta.get("data") != wanted["data"]:
    why = ("the data changed since it was saved (content hash "
           f"{meta.get('data')} -> {wanted['data']})")
  else:
    why = "it was trained with other settings: " + ", ".join(
        k for k in wanted if meta.get(k) != wanted[k])
  logging.info("%s: its autoencoder is not reused: %s.", workdir.path, why)
  return why


def _check_shapes(config, params, dims, dataset, source) -> None:
  model = build_model(config, dims, dataset.image_shape)
  expected = jax.tree.map(lambda a: a.shape, jax.eval_shape(
      lambda key: models.init_autoencoder(model, key), jax.random.key(0)))
  found = jax.tree.map(lambda a: a.shape, params)
  _require(found == expected,
           f"The autoencoder in {source} does not match model dims {dims} "
           f"(kind {config.model.kind}; different input size or layer "
           "widths).")


def _require(condition: bool, message: str) -> None:
  if not condition:
    raise DecJaxError(message)
