"""Pretrained autoencoders: how one is described, found and reused.

A member's autoencoder is saved in its workdir as checkpoints/autoencoder
with a description (`fingerprint`: the data's content hash and every setting
that shapes the training). A rerun reuses it when the description matches
(how often it logged or saved aside: CADENCE);
`pretrained_workdir` reuses another run's (same data and architecture).
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import jax
import ml_collections

from dec_jax.runner import data
from dec_jax.nn import models
from dec_jax.errors import require
from dec_jax.runner.workdir import (CHECKPOINTS, DATA_FINGERPRINT, Workdir,
                                    load_meta, load_params)

AUTOENCODER = "autoencoder"
# Beside its fingerprint, an autoencoder's description records the wall
# seconds of its pretraining (a member's share of its stack's): not a
# setting, so never compared.
PRETRAIN_SECONDS = "pretrain_s"
# ... and what its inputs were divided by (the resolved `scale`: "auto" is
# 255 on MNIST, 16 on the digits), checked when another run reuses it.
INPUT_SCALE = "input_scale"
# ... and its pretraining's log records, which a run reusing it logs again.
PRETRAINING_LOG = "pretraining_log"
_RECORDED = (PRETRAIN_SECONDS, INPUT_SCALE, PRETRAINING_LOG)

# Fields that must agree for a pretrained_workdir's autoencoder to be used
# (its data too: DATA_FINGERPRINT).
_DATA_FIELDS = ("dims", "model_kind")
# Settings that say how often a run logs and saves, or where its data are
# read (their content is fingerprinted), never what it computes: saved in
# descriptions, left out when one is compared with a run's settings.
CADENCE = ("data_dir", "pretrain.log_every", "pretrain.checkpoint_every",
           "dec.checkpoint_every")


def build_model(config: ml_collections.ConfigDict, dims: tuple[int, ...],
                image_shape: Optional[tuple[int, ...]]
                ) -> models.AnyAutoencoder:
  """The configured autoencoder (model.kind) for inputs of width dims[0]."""
  return models.make_autoencoder(
      config.model.kind, dims, image_shape=image_shape,
      conv_features=config.model.conv_features,
      dtype=models.DTYPES[config.model.dtype],
      conv_impl=config.model.conv_impl, mlp_init=config.model.mlp_init)


def fingerprint(config: ml_collections.ConfigDict, dims: tuple[int, ...],
                data_hash: str) -> dict:
  """What determines a pretrained autoencoder; saved beside its checkpoint.
  `data_hash` is the content hash of the arrays loaded (data.Dataset's
  fingerprint), not their path."""
  conv = config.model.kind == "conv"
  # The init enters only when it is not the default, so that checkpoints
  # saved before the setting existed still match.
  init = ({} if conv or config.model.mlp_init == models.DEFAULT_MLP_INIT
          else {"mlp_init": config.model.mlp_init})
  return json.loads(json.dumps({
      DATA_FINGERPRINT: data_hash, "dataset": config.dataset,
      "split": config.split, "scale": str(config.scale), "seed": config.seed,
      "dims": list(dims), "dtype": config.model.dtype,
      "model_kind": config.model.kind,
      **({"conv_features": list(config.model.conv_features)} if conv else {}),
      **init,
      "augment": bool(config.augment), "pretrain": config.pretrain.to_dict()}))


def comparable(settings: Any) -> Any:
  """A description (or a list of them, one per member) without CADENCE."""
  if isinstance(settings, list):
    return [comparable(s) for s in settings]
  for name in CADENCE if isinstance(settings, dict) else ():
    settings = _without(settings, name.split("."))
  return settings


def _without(tree: dict, path: list[str]) -> dict:
  """A copy of `tree` without the nested key `path`, where it has one."""
  head, *rest = path
  if head not in tree or (rest and not isinstance(tree[head], dict)):
    return tree
  if not rest:
    return {k: v for k, v in tree.items() if k != head}
  return {**tree, head: _without(tree[head], rest)}


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
  (None, a 'checkpoint' log record saying why) when this workdir's differs.

  Either `pretrained_workdir`'s (the user asked for it; it must have been
  trained on the same data and dims), or this workdir's own when it was
  pretrained with exactly the same settings on the same data (e.g. a run
  interrupted during clustering, rerun).
  """
  wanted = fingerprint(config, dims, dataset.fingerprint)
  source = _source(config) if config.pretrained_workdir else workdir.path
  meta = load_meta(source, AUTOENCODER)
  recorded = {k: v for k, v in (meta or {}).items() if k in _RECORDED}
  seconds = recorded.get(PRETRAIN_SECONDS)
  meta = meta and {k: v for k, v in meta.items() if k not in _RECORDED}
  if config.pretrained_workdir:
    _check_pretrained_workdir(source, meta, wanted)
    _check_input_scale(source, meta, wanted, recorded.get(INPUT_SCALE),
                       dataset.scale)
  elif comparable(meta) != comparable(wanted):
    reason = why_not_reused(meta, wanted)
    return None, reason and {"checkpoint": AUTOENCODER, "reused": False,
                             "reason": reason}
  params = load_params(source, AUTOENCODER)
  if params is None:
    require(not config.pretrained_workdir,
            f"pretrained_workdir {config.pretrained_workdir!r} holds no "
            f"checkpoints/{AUTOENCODER}.")
    return None, None
  _check_shapes(config, params, dims, dataset, source)
  return params, {"workdir": os.path.abspath(source), "settings": meta,
                  **({} if seconds is None else {PRETRAIN_SECONDS: seconds})}


def pretraining_log(workdir: Workdir) -> list[dict]:
  """The log records of how workdir's own autoencoder was pretrained, as
  its description keeps them ([] where it has none)."""
  return (load_meta(workdir.path, AUTOENCODER) or {}).get(PRETRAINING_LOG, [])


def why_not_reused(saved: Optional[dict], wanted: dict) -> Optional[str]:
  """Why a checkpoint described by `saved` cannot stand for `wanted` (the
  data first), or None when it can or there is none."""
  saved, wanted = comparable(saved), comparable(wanted)
  if saved is None or saved == wanted:
    return None
  have, now = saved.get(DATA_FINGERPRINT), wanted.get(DATA_FINGERPRINT)
  if have is None:
    return ("it was saved without a fingerprint of its data (by an older "
            "dec_jax), so it cannot be checked against the data loaded now")
  if have != now:
    return (f"the data changed since the checkpoint was saved: it was made "
            f"from data with fingerprint {have}, the data loaded now has "
            f"{now}")
  differ = sorted(k for k in {**saved, **wanted}
                  if saved.get(k) != wanted.get(k))
  return f"it was saved with other settings ({', '.join(differ)})"


def _check_pretrained_workdir(source: str, meta: Optional[dict],
                              wanted: dict) -> None:
  """Refuses `pretrained_workdir`'s autoencoder (described by `meta`) when
  it was trained on other data or dims than `wanted`."""
  require(meta is not None or not os.path.isdir(
      os.path.join(source, CHECKPOINTS, AUTOENCODER)),
          f"{source}'s checkpoints/{AUTOENCODER} has no description "
          f"({AUTOENCODER}.json): unfinished or foreign, not reused.")
  if meta is None:
    return
  differ = [f"{f} ({meta.get(f)} vs {wanted[f]})" for f in _DATA_FIELDS
            if meta.get(f) != wanted[f]]
  require(not differ, f"The autoencoder in {source} was pretrained with "
          f"other {', '.join(differ)}.")
  require(meta.get(DATA_FINGERPRINT) == wanted[DATA_FINGERPRINT],
          f"The autoencoder in {source} cannot be reused: "
          f"{why_not_reused(meta, wanted)}. Pretrain on this data (drop "
          "pretrained_workdir) or point it at a run on this data.")


def _check_input_scale(source: str, meta: Optional[dict], wanted: dict,
                       saved: Optional[float], now: float) -> None:
  """Refuses an autoencoder pretrained on inputs divided by another number
  (the data's fingerprint is the raw arrays', whatever the scale)."""
  if meta is None:
    return
  if saved is not None:
    require(float(saved) == float(now), f"The autoencoder in {source} was "
            f"pretrained on inputs divided by {saved:g}; this run divides "
            f"them by {now:g} (config.scale): set the same scale.")
  else:  # described before the scale was recorded: the settings must agree
    require(meta.get("scale") == wanted["scale"], f"The autoencoder in "
            f"{source} was pretrained with scale {meta.get('scale')}, this "
            f"run has {wanted['scale']}: set the same scale.")


def _check_shapes(config, params, dims, dataset, source) -> None:
  model = build_model(config, dims, dataset.image_shape)
  expected = jax.tree.map(lambda a: a.shape, jax.eval_shape(
      lambda key: models.init_autoencoder(model, key), jax.random.key(0)))
  found = jax.tree.map(lambda a: a.shape, params)
  require(found == expected,
          f"The autoencoder in {source} does not match model dims {dims} "
          f"(kind {config.model.kind}; different input size or layer "
          "widths).")
