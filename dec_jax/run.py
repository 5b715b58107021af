"""Run plumbing shared by every method: config checks, data, workdir, timing.

`run(config, workdir)` validates the config and loads the data *before* it
writes anything, so bad input fails fast with a `DecJaxError` and leaves the
workdir untouched; then it runs the method chosen by `config.method`, scores
its labels and writes results.json last.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dec_jax import cluster
from dec_jax import data
from dec_jax import kmeans
from dec_jax import metrics
from dec_jax import models
from dec_jax import optim
from dec_jax import pretrain
from dec_jax.errors import DecJaxError
from dec_jax.methods import METHODS
from dec_jax.workdir import CONFIG, Workdir, load_params, read_json

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
AUTOENCODER = "autoencoder"


# ------------------------------------------------------------------ config


def _require(condition: bool, message: str) -> None:
  if not condition:
    raise DecJaxError(message)


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Rejects unknown names and impossible sizes before any compute."""
  _require(config.method in METHODS,
           f"Unknown method {config.method!r}; expected one of "
           f"{sorted(METHODS)}.")
  _require(config.split in data.SPLITS,
           f"Unknown split {config.split!r}; expected one of {data.SPLITS}.")
  _require(config.model.dtype in DTYPES,
           f"Unknown model.dtype {config.model.dtype!r}; expected one of "
           f"{sorted(DTYPES)}.")
  _require(len(config.model.dims) >= 1 and all(
      int(d) > 0 for d in config.model.dims),
           f"model.dims must be positive layer widths, got "
           f"{tuple(config.model.dims)}.")
  _require(config.kmeans.backend in kmeans.BACKENDS,
           f"Unknown kmeans.backend {config.kmeans.backend!r}; expected one of "
           f"{kmeans.BACKENDS}.")
  _require(config.n_clusters >= 0,
           f"n_clusters must be >= 2 (or 0 = number of classes), got "
           f"{config.n_clusters}.")
  _require(config.chunk_size > 0, "chunk_size must be positive.")
  for name in ("n_init", "max_iter"):
    _require(config.kmeans[name] > 0, f"kmeans.{name} must be positive.")
  for stage in ("pretrain", "dec"):
    cfg = config[stage]
    _require(cfg.optimizer in optim.OPTIMIZERS,
             f"Unknown {stage}.optimizer {cfg.optimizer!r}; expected one of "
             f"{optim.OPTIMIZERS}.")
    _require(cfg.schedule in optim.SCHEDULES,
             f"Unknown {stage}.schedule {cfg.schedule!r}; expected one of "
             f"{optim.SCHEDULES}.")
    _require(cfg.learning_rate > 0,
             f"{stage}.learning_rate must be positive, got {cfg.learning_rate}.")
    _require(cfg.batch_size > 0,
             f"{stage}.batch_size must be positive, got {cfg.batch_size}.")
  _require(config.pretrain.epochs >= 0, "pretrain.epochs must be >= 0.")
  _require(config.pretrain.log_every > 0, "pretrain.log_every must be positive.")
  _require(config.dec.update_interval > 0,
           "dec.update_interval must be positive.")
  _require(config.dec.maxiter >= 0, "dec.maxiter must be >= 0.")
  _require(config.dec.update_interval <= max(config.dec.maxiter, 1),
           f"dec.update_interval ({config.dec.update_interval}) must not exceed "
           f"dec.maxiter ({config.dec.maxiter}).")
  _require(0 <= config.dec.tol < 1, "dec.tol must be in [0, 1).")
  _require(config.dec.alpha > 0, "dec.alpha must be positive.")


def load_data(config: ml_collections.ConfigDict) -> data.Dataset:
  label_column = str(config.label_column).strip()
  try:
    label_column = int(label_column) if label_column else None
  except ValueError:
    raise DecJaxError(f"label_column must be an integer column index, got "
                      f"{config.label_column!r}.") from None
  return data.load(config.dataset, split=config.split,
                   data_dir=config.data_dir or None, scale=config.scale,
                   label_column=label_column)


def _resolve_n_clusters(config, dataset: data.Dataset) -> int:
  k = config.n_clusters
  if k == 0:
    _require(dataset.y is not None,
             "n_clusters=0 means 'number of classes', but the data has no "
             "labels; set n_clusters.")
    k = int(np.unique(dataset.y).size)
  _require(2 <= k <= dataset.num_samples,
           f"n_clusters must be between 2 and the number of samples "
           f"({dataset.num_samples}), got {k}.")
  distinct = _count_distinct_rows(dataset.x)
  _require(distinct >= k,
           f"The data has only {distinct} distinct point(s), fewer than "
           f"n_clusters={k}; constant or duplicated data cannot be clustered.")
  return k


def _count_distinct_rows(x: np.ndarray) -> int:
  """Distinct rows of x, by a random projection (O(N D), no row sort)."""
  projection = np.random.default_rng(0).standard_normal(x.shape[1])
  return int(np.unique(x.astype(np.float64) @ projection).size)


def _check_batch_sizes(config, n: int) -> None:
  for stage in ("pretrain", "dec"):
    _require(config[stage].batch_size <= n,
             f"{stage}.batch_size ({config[stage].batch_size}) is larger than "
             f"the number of samples ({n}).")


# ------------------------------------------------------------------ context


class RunContext:
  """What a method needs: config, data, workdir, keys, and shared steps."""

  def __init__(self, config: ml_collections.ConfigDict, dataset: data.Dataset,
               workdir: Workdir, n_clusters: int,
               pretrained: Optional[Any]):
    self.config = config
    self.dataset = dataset
    self.workdir = workdir
    self.n_clusters = n_clusters
    self.key = jax.random.key(config.seed)
    self.x = jnp.asarray(dataset.x)  # resident on the device for the run
    self.times: dict[str, float] = {}
    self.extra: dict[str, Any] = {}
    self._pretrained = pretrained

  @contextlib.contextmanager
  def stage(self, name: str):
    """Times a stage into `self.times`; the body blocks on its device work."""
    start = time.perf_counter()
    yield
    self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - start

  def log(self, record: dict) -> None:
    self.workdir.log(record)

  def score(self, labels) -> dict:
    return metrics.evaluate(self.dataset.y, np.asarray(labels))

  def log_assignment(self, record: dict) -> None:
    """Logs a clustering record, replacing its `labels` with their scores."""
    labels = record.pop("labels")
    self.log({**record, **self.score(labels)})

  def optimizer(self, cfg: ml_collections.ConfigDict, total_steps: int):
    return optim.make_optimizer(cfg.optimizer, cfg.learning_rate,
                                momentum=cfg.momentum, schedule=cfg.schedule,
                                total_steps=total_steps)

  def kmeans(self, x: jax.Array, stage: str) -> kmeans.KMeansResult:
    cfg = self.config.kmeans
    with self.stage(stage):
      result = kmeans.fit_kmeans(x, self.n_clusters, seed=self.config.seed,
                                 n_init=cfg.n_init, max_iter=cfg.max_iter,
                                 backend=cfg.backend)
      jax.block_until_ready(result)
    return result

  def model(self) -> models.Autoencoder:
    dims = (self.dataset.dim,) + tuple(int(d) for d in self.config.model.dims)
    return models.Autoencoder(dims, dtype=DTYPES[self.config.model.dtype])

  def autoencoder(self) -> tuple[models.Autoencoder, Any]:
    """The pretrained autoencoder: reused from a checkpoint, else trained."""
    model = self.model()
    if self._pretrained is not None:
      self.extra["pretrain_reused"] = True
      return model, jax.tree.map(jnp.asarray, self._pretrained)
    cfg = self.config.pretrain
    key = jax.random.fold_in(self.key, 1)
    params = models.init_autoencoder(model, key)
    steps = cfg.epochs * -(-self.dataset.num_samples // cfg.batch_size)
    with self.stage("pretrain"):
      params = pretrain.pretrain(
          model, params, self.x, key, self.optimizer(cfg, steps),
          epochs=cfg.epochs, batch_size=cfg.batch_size,
          log_every=cfg.log_every, log_fn=self.log)
      jax.block_until_ready(params)
    self.workdir.save_params(AUTOENCODER, params)
    self.extra["pretrain_epochs"] = cfg.epochs
    return model, params

  def embed(self, model: models.Autoencoder, encoder_params) -> jax.Array:
    with self.stage("embed"):
      z = cluster.embed(models.encoder_module(model), encoder_params, self.x,
                        self.config.chunk_size)
      jax.block_until_ready(z)
    return z


# Config fields that determine the pretrained autoencoder.
_PRETRAIN_FIELDS = ("dataset", "data_dir", "split", "scale", "seed", "model",
                    "pretrain")


def _same_pretraining(config, workdir: Workdir) -> bool:
  """Whether the workdir's own config.json pretrained the same autoencoder."""
  try:
    saved = read_json(workdir.file(CONFIG))
  except (OSError, ValueError):
    return False
  current = json.loads(json.dumps(config.to_dict()))  # tuples -> lists
  return all(saved.get(f) == current[f] for f in _PRETRAIN_FIELDS)


def _find_pretrained(config, workdir: Workdir, dims: tuple[int, ...]):
  """The autoencoder to reuse, or None to pretrain one.

  Either `pretrained_workdir`'s (the user asked for it), or this workdir's own
  when an earlier run into it used the same data, seed, model and pretraining
  settings (e.g. a run interrupted during clustering).
  """
  if config.method == "kmeans":
    return None
  if config.pretrained_workdir:
    source = config.pretrained_workdir
  elif _same_pretraining(config, workdir):
    source = workdir.path
  else:
    return None
  params = load_params(source, AUTOENCODER)
  if params is None:
    _require(not config.pretrained_workdir,
             f"pretrained_workdir {config.pretrained_workdir!r} holds no "
             f"checkpoints/{AUTOENCODER}.")
    return None
  model = models.Autoencoder(dims)
  expected = jax.tree.map(lambda a: a.shape, jax.eval_shape(
      lambda key: models.init_autoencoder(model, key), jax.random.key(0)))
  found = jax.tree.map(lambda a: a.shape, params)
  _require(found == expected,
           f"The autoencoder in {source} does not match model dims {dims} "
           "(different input size or layer widths).")
  return params


# ---------------------------------------------------------------- the run


def environment() -> dict:
  """Versions, backend and code commit: what a result depends on."""
  import flax, jaxlib, optax, sklearn  # pylint: disable=g-import-not-at-top,multiple-imports
  try:
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True,
        cwd=os.path.dirname(os.path.abspath(__file__)), timeout=5,
        check=False).stdout.strip() or None
  except OSError:
    commit = None
  device = jax.devices()[0]
  return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
          "flax": flax.__version__,
          "optax": optax.__version__, "numpy": np.__version__,
          "sklearn": sklearn.__version__, "python": platform.python_version(),
          "backend": jax.default_backend(), "device_kind": device.device_kind,
          "device_count": jax.device_count(), "git_commit": commit}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs `config.method` on `config.dataset`; returns what results.json holds."""
  start = time.perf_counter()
  validate_config(config)
  out = Workdir(workdir, overwrite=config.overwrite)
  dataset = load_data(config)
  n_clusters = _resolve_n_clusters(config, dataset)
  _check_batch_sizes(config, dataset.num_samples)
  dims = (dataset.dim,) + tuple(int(d) for d in config.model.dims)
  pretrained = _find_pretrained(config, out, dims)

  out.start(config.to_dict())
  ctx = RunContext(config, dataset, out, n_clusters, pretrained)
  out.log({"stage": "data", "dataset": dataset.name,
           "n_samples": dataset.num_samples, "dim": dataset.dim,
           "n_clusters": n_clusters})
  method_out = METHODS[config.method](ctx)
  labels = np.asarray(method_out.pop("labels"))
  out.save_assignments(labels, method_out.pop("soft_assignment", None))
  scores = ctx.score(labels)
  results = {
      "method": config.method, "dataset": dataset.name, "seed": config.seed,
      "n_samples": dataset.num_samples, "dim": dataset.dim,
      "n_clusters": n_clusters, **scores,
      "nmi_average": metrics.NMI_AVERAGE,
      "cluster_sizes": metrics.cluster_sizes(labels, n_clusters),
      **ctx.extra, **method_out,
      "times_s": {**ctx.times, "total": time.perf_counter() - start},
      "config": config.to_dict(), "environment": environment(),
  }
  ctx.log({"stage": "final", **scores,
           "cluster_sizes": results["cluster_sizes"]})
  out.write_results(results)
  return results
