"""Checks of a run's config and data, done before anything is computed.

Every problem a user can fix is reported here as a `DecJaxError` naming the
field and the allowed values, before a file is written.
"""

from __future__ import annotations

from typing import Optional

import jax
import ml_collections
import numpy as np

from dec_jax.runner import data
from dec_jax.core import kmeans
from dec_jax.nn import models
from dec_jax.train import optim
from dec_jax import parallel
from dec_jax.errors import DecJaxError, require
from dec_jax import methods
from dec_jax.runner.members import MAX_SEED


def check_seed(seed, name: str = "seed") -> None:
  """Refuses a seed that is not an integer in [0, MAX_SEED]."""
  require(isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
          and 0 <= seed <= MAX_SEED,
          f"{name} must be an integer between 0 and {MAX_SEED}, got "
          f"{seed!r}.")


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Rejects unknown names and impossible sizes before any compute."""
  method = methods.get(config.method)
  check_seed(config.seed)
  _check_run_fields(config)
  _check_stages(config)
  _check_model(config)
  require(not (config.pretrained_workdir and not method.needs_autoencoder),
          f"pretrained_workdir has no effect with method={method.name} (no "
          "autoencoder); drop it or choose ae_kmeans / dec.")
  method.check(config)


def _check_run_fields(config: ml_collections.ConfigDict) -> None:
  """The top-level fields, k and k-means."""
  require(config.split in data.SPLITS,
          f"Unknown split {config.split!r}; expected one of {data.SPLITS}.")
  require(config.kmeans.backend in kmeans.BACKENDS,
          f"Unknown kmeans.backend {config.kmeans.backend!r}; expected one of "
          f"{kmeans.BACKENDS}.")
  k = config.n_clusters
  require(k == "auto" or (isinstance(k, int) and (k == 0 or k >= 2)),
          f"n_clusters must be >= 2, 0 (= number of classes) or 'auto', got "
          f"{config.n_clusters!r}.")
  require(all(isinstance(config.auto_k[f], int)
              for f in ("min", "max", "sample_size"))
          and 2 <= config.auto_k.min <= config.auto_k.max
          < config.auto_k.sample_size,
          f"auto_k needs integers 2 <= min <= max < sample_size, got "
          f"min={config.auto_k.min}, max={config.auto_k.max}, "
          f"sample_size={config.auto_k.sample_size}.")
  require(config.chunk_size > 0, "chunk_size must be positive.")
  require(0 <= config.collapse_fraction < 1,
          "collapse_fraction must be in [0, 1).")
  for name in ("n_init", "max_iter"):
    require(config.kmeans[name] > 0, f"kmeans.{name} must be positive.")


def _check_stages(config: ml_collections.ConfigDict) -> None:
  """The training stages' sections: pretrain, dec, idec."""
  for stage in ("pretrain", "dec"):
    cfg = config[stage]
    require(cfg.optimizer in optim.OPTIMIZERS,
            f"Unknown {stage}.optimizer {cfg.optimizer!r}; expected one of "
            f"{optim.OPTIMIZERS}.")
    require(cfg.schedule in optim.SCHEDULES,
            f"Unknown {stage}.schedule {cfg.schedule!r}; expected one of "
            f"{optim.SCHEDULES}.")
    require(0 < cfg.learning_rate < float("inf"),
            f"{stage}.learning_rate must be positive and finite, got "
            f"{cfg.learning_rate}.")
    require(cfg.batch_size > 0,
            f"{stage}.batch_size must be positive, got {cfg.batch_size}.")
    require(0 <= cfg.momentum < 1,
            f"{stage}.momentum must be in [0, 1), got {cfg.momentum}.")
  require(config.pretrain.epochs >= 0, "pretrain.epochs must be >= 0.")
  require(config.pretrain.log_every > 0, "pretrain.log_every must be positive.")
  for stage in ("pretrain", "dec"):
    require(config[stage].checkpoint_every >= 0,
            f"{stage}.checkpoint_every must be >= 0 (0: never).")
  require(config.dec.update_interval > 0,
          "dec.update_interval must be positive.")
  require(config.dec.maxiter >= 0, "dec.maxiter must be >= 0.")
  require(config.dec.update_interval <= max(config.dec.maxiter, 1)
          or "dec" not in methods.get(config.method).stages,
          f"dec.update_interval ({config.dec.update_interval}) must not exceed "
          f"dec.maxiter ({config.dec.maxiter}).")
  require(0 <= config.dec.tol < 1, "dec.tol must be in [0, 1).")
  require(isinstance(config.dec.patience, int) and config.dec.patience >= 0,
          "dec.patience must be an integer >= 0 (0: off).")
  require(0 < config.dec.alpha < float("inf"),
          "dec.alpha must be positive and finite.")
  require(config.idec.gamma > 0, "idec.gamma must be positive.")
  require(0 <= config.dec.reseed_fraction < 1,
          "dec.reseed_fraction must be in [0, 1).")
  require(isinstance(config.pretrain.greedy_epochs, int)
          and config.pretrain.greedy_epochs >= 0,
          "pretrain.greedy_epochs must be an integer >= 0 (0: off).")


def _check_model(config: ml_collections.ConfigDict) -> None:
  """The autoencoder's section and what depends on it (greedy, augment)."""
  require(config.model.dtype in models.DTYPES,
          f"Unknown model.dtype {config.model.dtype!r}; expected one of "
          f"{sorted(models.DTYPES)}.")
  require(len(config.model.dims) >= 1
          and all(isinstance(d, int) and d > 0 for d in config.model.dims),
          f"model.dims must be positive layer widths, got "
          f"{tuple(config.model.dims)}.")
  require(config.model.kind in models.KINDS,
          f"Unknown model.kind {config.model.kind!r}; expected one of "
          f"{models.KINDS}.")
  require(config.model.mlp_init in models.MLP_INITS,
          f"Unknown model.mlp_init {config.model.mlp_init!r}; expected one "
          f"of {tuple(models.MLP_INITS)}.")
  require(config.model.conv_impl in models.CONV_IMPLS,
          f"Unknown model.conv_impl {config.model.conv_impl!r}; expected one "
          f"of {models.CONV_IMPLS}.")
  require(len(config.model.conv_features) >= 1
          and all(isinstance(f, int) and f > 0
                  for f in config.model.conv_features),
          f"model.conv_features must be positive channel counts, got "
          f"{tuple(config.model.conv_features)}.")
  require(not (config.pretrain.greedy_epochs and config.model.kind != "mlp"),
          "pretrain.greedy_epochs (greedy layer-wise pretraining) is defined "
          "for model.kind=mlp only; set it to 0 for model.kind=conv.")
  require(isinstance(config.augment, bool),
          f"augment must be True or False, got {config.augment!r}.")


def parse_label_column(value) -> Optional[int]:
  """The config's label_column ('' = none, else a column index) as an int."""
  text = str(value).strip()
  try:
    return int(text) if text else None
  except ValueError:
    raise DecJaxError(f"label_column must be an integer column index, got "
                      f"{value!r}.") from None


# The config fields `load_data` reads: configs that agree on them load the
# same data (keep_uint8 too: the arrays' dtype).
DATA_FIELDS = ("dataset", "split", "data_dir", "scale", "label_column",
               "keep_uint8")


def load_data(config: ml_collections.ConfigDict,
              keep_uint8: bool = False) -> data.Dataset:
  """The data set the config names, loaded with its options; float32
  features unless `keep_uint8` (see data.load)."""
  return data.load(config.dataset, split=config.split,
                   data_dir=config.data_dir or None, scale=config.scale,
                   label_column=parse_label_column(config.label_column),
                   keep_uint8=keep_uint8)


def resolve_n_clusters(config, dataset: data.Dataset) -> Optional[int]:
  """k from the config (None for 'auto'), checked against the data."""
  k = config.n_clusters
  if k == "auto":
    require(config.auto_k.max < dataset.num_samples,
            f"auto_k.max ({config.auto_k.max}) must be below the number of samples "
            f"({dataset.num_samples}).")
    k = config.auto_k.min  # every candidate k must be clusterable
  elif k == 0:
    require(dataset.y is not None,
            "n_clusters=0 means 'number of classes', but the data has no "
            "labels; set n_clusters.")
    k = int(np.unique(dataset.y).size)
  require(2 <= k <= dataset.num_samples,
          f"n_clusters must be between 2 and the number of samples "
          f"({dataset.num_samples}), got {k}.")
  distinct = _count_distinct_rows(dataset.x, enough=k)
  require(distinct >= k,
          f"The data has only {distinct} distinct point(s), fewer than "
          f"n_clusters={k}; constant or duplicated data cannot be clustered.")
  return None if config.n_clusters == "auto" else k


def _count_distinct_rows(x: np.ndarray, enough: int) -> int:
  """The number of distinct rows of x, exact below `enough` (at least
  `enough` otherwise: the count stops there, block by block).

  Each row's bytes (-0.0 read as 0.0) are projected on two random integer
  vectors in float64: every partial sum is an integer below 2**53, so equal
  rows get equal keys in any summation order (a float projection rounds one
  row differently at different places in a block), and two distinct rows
  collide with a probability below 2**-60 (rows of up to 10,000 bytes).
  """
  rows = x.reshape(x.shape[0], -1)
  width = rows[:1].view(np.uint8).shape[1]
  weights = np.random.default_rng(0).integers(
      0, 2**53 // (255 * width), size=(width, 2)).astype(np.float64)
  block = max(1, 2**22 // width)  # 32 MB of float64 bytes at a time
  keys = np.zeros((0, 2))
  for start in range(0, rows.shape[0], block):
    part = np.ascontiguousarray(rows[start:start + block])
    if np.issubdtype(part.dtype, np.floating):
      part = part + np.zeros((), part.dtype)  # -0.0 + 0.0 is 0.0
    keys = np.unique(np.concatenate(
        [keys, part.view(np.uint8).astype(np.float64) @ weights]), axis=0)
    if keys.shape[0] >= enough:
      break
  return int(keys.shape[0])


def check_model_fits_data(config, dataset: data.Dataset) -> None:
  """model.kind=conv and augment need images: rows of a known image shape."""
  needs = [name for name, on in (("model.kind=conv",
                                  config.model.kind == "conv"),
                                 ("augment=True", config.augment)) if on]
  if not needs or not methods.get(config.method).needs_autoencoder:
    return
  shape = dataset.image_shape
  require(shape is not None,
          f"{' and '.join(needs)} need(s) images, but {dataset.name!r} has no "
          "image shape (flat features, e.g. a CSV or a 2-D array); give the "
          "images as an [N, H, W] or [N, H, W, C] array, or turn these off.")
  require(len(shape) in (2, 3) and int(np.prod(shape)) == dataset.dim,
          f"{' and '.join(needs)}: image shape {tuple(shape)} is not (H, W) "
          f"or (H, W, C) with H*W*C = {dataset.dim}.")


def check_streaming(config) -> None:
  """data_on_device=False streams minibatches and chunks from the host; the
  steps that need the whole set as float32 on the device cannot."""
  if config.data_on_device:
    return
  method = methods.get(config.method)
  require(method.streams,
          f"data_on_device=False: method={method.name} clusters the raw "
          "inputs on the device; use ae_kmeans / dec / idec / n2d, or "
          "data_on_device=True.")
  require(not config.pretrain.greedy_epochs,
          "data_on_device=False does not stream greedy layer-wise "
          "pretraining; set pretrain.greedy_epochs=0.")
  require(config.num_devices == 1 or jax.device_count() == 1,
          "data_on_device=False streams to one device; set num_devices=1.")


def data_mesh(config) -> Optional[jax.sharding.Mesh]:
  """The mesh for data parallelism over config.num_devices devices (0: all
  visible ones), or None for one device."""
  available = jax.device_count()
  n = config.num_devices or available
  require(isinstance(config.num_devices, int) and 1 <= n <= available,
          f"num_devices must be 0 (all) or between 1 and the {available} "
          f"visible device(s), got {config.num_devices!r}.")
  return parallel.data_mesh(n)


def check_batch_sizes(config, n: int) -> None:
  """Each training stage the method runs needs batch_size <= N; and the
  method's own checks against the data size."""
  method = methods.get(config.method)
  method.check_size(config, n)
  for stage in method.stages:
    require(config[stage].batch_size <= n,
            f"{stage}.batch_size ({config[stage].batch_size}) is larger than "
            f"the number of samples ({n}).")
