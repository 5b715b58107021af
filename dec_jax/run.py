"""Run plumbing shared by every method: data, workdir, keys, timing, results.

`run(config, workdir)` checks the config and loads the data (`checks`)
*before* it writes anything, so bad input fails fast with a `DecJaxError`
and leaves the workdir untouched; then it runs the method chosen by
`config.method`, scores its labels and writes results.json last.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import subprocess
import time
from typing import Any, Optional

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from dec_jax import augment
from dec_jax import batching
from dec_jax import checks
from dec_jax import choose_k
from dec_jax import cluster
from dec_jax import data
from dec_jax import diagnostics
from dec_jax import kmeans
from dec_jax import metrics
from dec_jax import models
from dec_jax import optim
from dec_jax import parallel
from dec_jax import pretrain
from dec_jax import progress
from dec_jax import tensorboard
from dec_jax.errors import DecJaxError
from dec_jax.methods import METHODS
from dec_jax.workdir import (CHECKPOINTS, DATA_FINGERPRINT, PARTIAL_SUFFIX,
                             Workdir, load_meta, load_params)

AUTOENCODER = "autoencoder"
PARTIAL = "autoencoder" + PARTIAL_SUFFIX  # pretraining state, as it goes


# ------------------------------------------------------------------ context


class RunContext:
  """What a method needs: config, data, workdir, keys, and shared steps."""

  def __init__(self, config: ml_collections.ConfigDict, dataset: data.Dataset,
               workdir: Workdir, n_clusters: Optional[int],
               dims: tuple[int, ...],
               pretrained: Optional[Any], pretrained_from: Optional[dict],
               mesh: Optional[jax.sharding.Mesh] = None,
               stacked_dec: Optional[dict] = None):
    self.config = config
    self.dataset = dataset
    self.workdir = workdir
    self.n_clusters = n_clusters  # None until chosen, for n_clusters=auto
    self.dims = dims
    self.key = jax.random.key(config.seed)
    # Resident on the device(s) for the whole run; with a mesh, on each.
    # 8-bit inputs stay uint8 there (config.keep_uint8), decoded per
    # minibatch and chunk: features = x / input_divisor.
    self.input_divisor = dataset.divisor
    # With data_on_device=False it stays in host memory and is streamed.
    if not config.data_on_device:
      self.x = dataset.x
    elif mesh is None:
      self.x = jnp.asarray(dataset.x)
    else:
      self.x = parallel.replicate(dataset.x, mesh)
    self.times: dict[str, float] = {}
    self.extra: dict[str, Any] = {}
    self.collapsed_at: list[int] = []  # iterations flagged by log_assignment
    self._pretrained = pretrained
    self._pretrained_from = pretrained_from
    # This seed's share of a vmapped multi-seed DEC phase (multiseed.py).
    self.stacked_dec = stacked_dec
    # Terminal progress of the long stages; TensorBoard scalars.
    self.progress = progress.StageProgress({
        "pretrain": ("epoch", config.pretrain.epochs),
        "dec": ("iteration", config.dec.maxiter)})
    self.tensorboard = tensorboard.open_writer(
        workdir.path, config.get("tensorboard", False) and workdir.primary)

  @contextlib.contextmanager
  def stage(self, name: str):
    """Times a stage into `self.times`; the body blocks on its device work."""
    start = time.perf_counter()
    yield
    self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - start

  def log(self, record: dict) -> None:
    self.progress.clear()
    self.workdir.log(record)
    self.progress.update(record)
    if self.tensorboard is not None:
      self.tensorboard.write_record(record)

  def score(self, labels) -> dict:
    return metrics.evaluate(self.dataset.y, np.asarray(labels))

  def log_assignment(self, record: dict) -> None:
    """Logs a target-update record: scores its `labels` (unless scored
    already), flags collapse."""
    if "labels" in record:
      record.update(self.score(record.pop("labels")))
    flags = diagnostics.collapse_flags(record["cluster_sizes"],
                                       self.config.collapse_fraction,
                                       record.get("mean_max_q"))
    if diagnostics.is_collapsed(flags):
      self.collapsed_at.append(record["iteration"])
    self.log({**record, **flags})

  def kmeans(self, x: jax.Array, stage: str) -> kmeans.KMeansResult:
    """k-means on x with the configured k; chooses k first if it is 'auto'."""
    cfg = self.config.kmeans
    fit = functools.partial(kmeans.fit_kmeans, x, seed=self.config.seed,
                            n_init=cfg.n_init, max_iter=cfg.max_iter,
                            backend=cfg.backend)
    if self.n_clusters is None:
      with self.stage("choose_k"):
        self.n_clusters = self._choose_k(x, fit)
    with self.stage(stage):
      result = fit(self.n_clusters)
      jax.block_until_ready(result)
    return result

  def _choose_k(self, x: jax.Array, fit) -> int:
    """The k with the best silhouette over auto_k's range; logs the curve."""
    cfg = self.config.auto_k
    curve = choose_k.silhouette_curve(
        x, range(cfg.min, cfg.max + 1), lambda k: fit(k).labels,
        seed=self.config.seed, sample_size=cfg.sample_size)
    for k, score in curve.items():
      self.log({"stage": "choose_k", "k": k, choose_k.CRITERION: score})
    chosen = choose_k.best_k(curve)
    self.extra["n_clusters_auto"] = {"criterion": choose_k.CRITERION,
                                     "curve": curve, "chosen": chosen}
    return chosen

  def model(self) -> models.AnyAutoencoder:
    return build_model(self.config, self.dims, self.dataset.image_shape)

  def augment_fn(self) -> Optional[augment.AugmentFn]:
    """DEC-DA's random shifts and rotations of the images (config.augment),
    for the pretraining and clustering minibatches; None when off."""
    if not self.config.augment:
      return None
    return augment.make_augment_fn(self.dataset.image_shape)

  def autoencoder(self) -> tuple[models.AnyAutoencoder, Any]:
    """The pretrained autoencoder: reused from a checkpoint, else trained."""
    model = self.model()
    if self._pretrained is not None:
      self.extra["pretrain_reused"] = True
      self.extra["pretrained_from"] = self._pretrained_from
      return model, jax.tree.map(jnp.asarray, self._pretrained)
    cfg = self.config.pretrain
    init_key, shuffle_key = jax.random.split(jax.random.fold_in(self.key, 1))
    params = models.init_autoencoder(model, init_key)
    steps = cfg.epochs * -(-self.dataset.num_samples // cfg.batch_size)
    tx = optim.from_config(cfg, steps)
    fingerprint = pretraining_fingerprint(self.config, self.dims,
                                          self.dataset.fingerprint)
    self.note_not_reused(AUTOENCODER, _with_defaults(
        load_meta(self.workdir.path, AUTOENCODER)), fingerprint)
    state, start_epoch = self._pretraining_resume_point(fingerprint, params,
                                                        tx)

    def save_partial(epoch, state):
      self.workdir.save_params(PARTIAL, state, {"settings": fingerprint,
                                                "epoch": epoch})

    if cfg.greedy_epochs and state is None:  # (a resumed state has had it)
      params = self._greedy_pretraining(model, params)
    with self.stage("pretrain"):
      params = pretrain.pretrain(
          model, params, self.x, shuffle_key, tx, epochs=cfg.epochs,
          batch_size=cfg.batch_size, log_every=cfg.log_every,
          log_fn=self.log, state=state, start_epoch=start_epoch,
          checkpoint_every=cfg.checkpoint_every, checkpoint_fn=save_partial,
          augment_fn=self.augment_fn(), input_divisor=self.input_divisor)
      jax.block_until_ready(params)
    self.workdir.save_params(AUTOENCODER, params, fingerprint)
    self.workdir.remove_checkpoint(PARTIAL)
    self.extra["pretrain_epochs"] = cfg.epochs
    return model, params

  def _pretraining_resume_point(self, fingerprint: dict, params, tx):
    """(optimizer state, epoch) of this workdir's partial pretraining with
    these settings, or (None, 0)."""
    state, meta = self.resume_point(
        PARTIAL, fingerprint,
        lambda meta: {"params": params, "opt": tx.init(params)})
    if meta is None:
      return None, 0
    self.extra["pretrain_resumed_from_epoch"] = meta["epoch"]
    self.log({"stage": "pretrain", "resumed_from_epoch": meta["epoch"]})
    return state, meta["epoch"]

  def note_not_reused(self, name: str, saved: Optional[dict],
                      wanted: dict) -> None:
    """Logs why checkpoint `name` (described by `saved`) is not reused, when
    there is one that does not fit `wanted`."""
    reason = why_not_reused(saved, wanted)
    if reason:
      self.log({"stage": "checkpoint", "checkpoint": name, "reused": False,
                "reason": reason})

  def _greedy_pretraining(self, model: models.AnyAutoencoder, params):
    """DEC's greedy layer-wise denoising pretraining (pretrain.greedy_epochs
    per layer pair), before the end-to-end epochs; not checkpointed."""
    cfg = self.config.pretrain
    steps = cfg.greedy_epochs * -(-self.dataset.num_samples // cfg.batch_size)
    with self.stage("pretrain_greedy"):
      params = pretrain.greedy_pretrain(
          model, params, self.features(),
          jax.random.fold_in(self.key, _GREEDY_STREAM),
          optim.from_config(cfg, steps), epochs=cfg.greedy_epochs,
          batch_size=cfg.batch_size, log_every=cfg.log_every,
          log_fn=self.log, chunk_size=self.config.chunk_size)
      jax.block_until_ready(params)
    self.extra["pretrain_greedy_epochs"] = cfg.greedy_epochs
    return params

  def resume_point(self, name: str, settings: dict, target_fn):
    """(state, description) of partial checkpoint `name` when it was saved
    with exactly these `settings` and config.resume is on, else (None, None).

    `target_fn(description)` returns a pytree shaped like the saved state
    (only its shapes and dtypes are used).
    """
    meta = load_meta(self.workdir.path, name)
    if not self.config.resume or meta is None:
      return None, None
    if meta.get("settings") != settings:
      self.note_not_reused(name, meta.get("settings"), settings)
      return None, None
    target = jax.eval_shape(lambda: target_fn(meta))
    return load_params(self.workdir.path, name, target), meta

  def result_settings(self) -> dict:
    """The config without the fields that cannot change the result: what a
    partial clustering checkpoint must agree with to be resumed."""
    settings = json.loads(json.dumps(self.config.to_dict(), default=str))
    for key in ("overwrite", "resume", "report", "tensorboard"):
      settings.pop(key, None)
    settings[DATA_FINGERPRINT] = self.dataset.fingerprint
    return settings

  def features(self) -> jax.Array:
    """All inputs as float32 features [N, D] (a full copy when x is uint8)."""
    return batching.as_features(self.x, self.input_divisor)

  def embed(self, model: models.Autoencoder, encoder_params) -> jax.Array:
    embed = (cluster.embed_streamed if isinstance(self.x, np.ndarray)
             else cluster.embed)
    with self.stage("embed"):
      z = embed(models.encoder_module(model), encoder_params, self.x,
                self.config.chunk_size, self.input_divisor)
      jax.block_until_ready(z)
    return z


# Short config keys: `--config.model=conv` (and a sweep grid's `model=conv`)
# mean `model.kind=conv`, the spelling issue #4 gave.
CONFIG_SHORTHANDS = {"model": "model.kind"}


def expand_config_shorthands(argv: list[str]) -> list[str]:
  """argv with each `--config.<shorthand>=v` written out (CONFIG_SHORTHANDS)."""
  out = []
  for arg in argv:
    name, eq, value = arg.partition("=")
    key = name.removeprefix("--config.")
    if eq and name.startswith("--config.") and key in CONFIG_SHORTHANDS:
      arg = f"--config.{CONFIG_SHORTHANDS[key]}={value}"
    out.append(arg)
  return out


_GREEDY_STREAM = 3  # fold_in(run key, .) of greedy pretraining's key


def build_model(config: ml_collections.ConfigDict, dims: tuple[int, ...],
                image_shape: Optional[tuple[int, ...]]
                ) -> models.AnyAutoencoder:
  """The configured autoencoder (model.kind) for inputs of width dims[0]."""
  return models.make_autoencoder(
      config.model.kind, dims, image_shape=image_shape,
      conv_features=config.model.conv_features,
      dtype=models.DTYPES[config.model.dtype],
      conv_impl=config.model.conv_impl)


def pretraining_fingerprint(config: ml_collections.ConfigDict,
                            dims: tuple[int, ...],
                            data_fingerprint: Optional[str] = None) -> dict:
  """What determines a pretrained autoencoder; saved beside its checkpoint.
  `data_fingerprint`: `Dataset.fingerprint` of the data it is trained on."""
  conv = config.model.kind == "conv"
  return json.loads(json.dumps({
      DATA_FINGERPRINT: data_fingerprint,
      "dataset": config.dataset, "split": config.split,
      "scale": str(config.scale), "seed": config.seed, "dims": list(dims),
      "dtype": config.model.dtype, "model_kind": config.model.kind,
      **({"conv_features": list(config.model.conv_features)} if conv else {}),
      "augment": bool(config.augment), "pretrain": config.pretrain.to_dict()}))


# Fields that must agree for a pretrained_workdir's autoencoder to be used.
_DATA_FIELDS = ("dataset", "split", "scale", "dims", "model_kind")

# Settings added after autoencoders had been saved without them: those were
# trained with these values (the options did not exist yet).
_FINGERPRINT_DEFAULTS = {"model_kind": "mlp", "augment": False}
_PRETRAIN_DEFAULTS = {"greedy_epochs": 0}


def why_not_reused(saved: Optional[dict], wanted: dict) -> Optional[str]:
  """Why a checkpoint described by `saved` cannot stand for `wanted` (the
  data first), or None when it can or there is none."""
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


def _with_defaults(meta: Optional[dict]) -> Optional[dict]:
  """A saved fingerprint, completed with the settings it predates."""
  if meta is None:
    return None
  return {**_FINGERPRINT_DEFAULTS, **meta,
          "pretrain": {**_PRETRAIN_DEFAULTS, **meta.get("pretrain", {})}}


def _find_pretrained(config, workdir: Workdir, dims: tuple[int, ...],
                     image_shape: Optional[tuple[int, ...]] = None,
                     data_fingerprint: Optional[str] = None):
  """(params, origin) of the autoencoder to reuse, or (None, None).

  Either `pretrained_workdir`'s (the user asked for it; it must have been
  trained on the same data, scaling and dims), or this workdir's own when it
  was pretrained with exactly the same settings on the same data (e.g. a run
  interrupted during clustering, rerun). `data_fingerprint`: that of the
  data the run loaded (None: the config's data is loaded to compute it).
  """
  if config.method == "kmeans":
    return None, None
  if data_fingerprint is None:
    data_fingerprint = checks.load_data(config).fingerprint
  wanted = pretraining_fingerprint(config, dims, data_fingerprint)
  if config.pretrained_workdir:
    source = config.pretrained_workdir
    meta = _with_defaults(load_meta(source, AUTOENCODER))
    _check_pretrained_workdir(source, meta, wanted)
  else:
    source = workdir.path
    meta = _with_defaults(load_meta(workdir.path, AUTOENCODER))
    if meta != wanted:
      return None, None
  params = load_params(source, AUTOENCODER)
  if params is None:
    checks.require(not config.pretrained_workdir,
                   f"pretrained_workdir {config.pretrained_workdir!r} holds no "
                   f"checkpoints/{AUTOENCODER}.")
    return None, None
  model = build_model(config, dims, image_shape)
  expected = jax.tree.map(lambda a: a.shape, jax.eval_shape(
      lambda key: models.init_autoencoder(model, key), jax.random.key(0)))
  found = jax.tree.map(lambda a: a.shape, params)
  checks.require(found == expected,
                 f"The autoencoder in {source} does not match model dims {dims} "
                 f"(kind {config.model.kind}; different input size or layer "
                 "widths).")
  return params, {"workdir": os.path.abspath(source), "settings": meta}


def _check_pretrained_workdir(source: str, meta: Optional[dict],
                              wanted: dict) -> None:
  """Refuses `pretrained_workdir`'s autoencoder (described by `meta`) when
  it was trained on other data, scaling or dims than `wanted`."""
  checks.require(meta is not None or not os.path.isdir(
      os.path.join(source, CHECKPOINTS, AUTOENCODER)),
                 f"{source}'s checkpoints/{AUTOENCODER} has no description "
                 f"({AUTOENCODER}.json): unfinished or foreign, not reused.")
  if meta is None:
    return
  differ = [f"{f} ({meta.get(f)} vs {wanted[f]})" for f in _DATA_FIELDS
            if meta.get(f) != wanted[f]]
  checks.require(not differ, f"The autoencoder in {source} was pretrained "
                 f"with other {', '.join(differ)}.")
  if meta.get(DATA_FINGERPRINT) != wanted[DATA_FINGERPRINT]:
    raise DecJaxError(
        f"The autoencoder in {source} cannot be reused: "
        f"{why_not_reused(meta, wanted)}. Pretrain on this data (drop "
        "pretrained_workdir) or point it at a run on this data.")


# ---------------------------------------------------------------- the run


def environment() -> dict:
  """Versions, backend and code commit: what a result depends on."""
  # pylint: disable-next=g-import-not-at-top,multiple-imports
  import flax, jaxlib, optax, sklearn
  try:
    git = functools.partial(
        subprocess.run, capture_output=True, text=True, timeout=5,
        check=False, cwd=os.path.dirname(os.path.abspath(__file__)))
    commit = git(["git", "rev-parse", "HEAD"]).stdout.strip() or None
    dirty = bool(git(["git", "status", "--porcelain", "--untracked-files=no"])
                 .stdout.strip()) if commit else None
  except (OSError, subprocess.SubprocessError):
    commit = dirty = None
  device = jax.devices()[0]
  return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
          "flax": flax.__version__,
          "optax": optax.__version__, "numpy": np.__version__,
          "sklearn": sklearn.__version__, "python": platform.python_version(),
          "backend": jax.default_backend(), "device_kind": device.device_kind,
          "device_count": jax.device_count(),
          "process_count": jax.process_count(), "git_commit": commit,
          "git_dirty": dirty}


def _report(workdir: str, dataset: data.Dataset, tb_writer) -> None:
  """WORKDIR/plots, after results.json: a failure here is a warning,
  never a failed run."""
  try:
    from dec_jax import report  # pylint: disable=g-import-not-at-top
    report.build_report(workdir, dataset=dataset, tb_writer=tb_writer)
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("The run's plots were not drawn (%s: %s).",
                    type(e).__name__, e)


def run(config: ml_collections.ConfigDict, workdir: str,
        dataset: Optional[data.Dataset] = None, *,
        stacked_dec: Optional[dict] = None) -> dict:
  """Runs `config.method` on `config.dataset` (or on `dataset`, e.g. arrays
  from `data.from_arrays`, whose name is then recorded as config.dataset);
  returns what results.json holds. `stacked_dec`: this seed's result of a
  vmapped multi-seed DEC phase (multiseed.py), used instead of its own."""
  start = time.perf_counter()
  if dataset is not None:
    config = ml_collections.ConfigDict({**config.to_dict(),
                                        "dataset": dataset.name,
                                        "scale": str(dataset.scale)})
  checks.validate_config(config)
  checks.check_streaming(config)
  out = Workdir(workdir, overwrite=config.overwrite)
  dataset = dataset or checks.load_data(config,
                                        keep_uint8=config.keep_uint8)
  n_clusters = checks.resolve_n_clusters(config, dataset)
  checks.check_batch_sizes(config, dataset.num_samples)
  checks.check_model_fits_data(config, dataset)
  dims = (dataset.dim,) + tuple(int(d) for d in config.model.dims)
  pretrained, pretrained_from = _find_pretrained(
      config, out, dims, dataset.image_shape, dataset.fingerprint)
  env = environment()  # the code that runs, read before it can change

  mesh = checks.data_mesh(config)
  # Inside the mesh, arrays are created replicated on its devices (on every
  # host), and the compiled steps split their rows over it.
  with contextlib.nullcontext() if mesh is None else jax.set_mesh(mesh):
    continued = out.start(config.to_dict(), resume=config.resume)
    ctx = RunContext(config, dataset, out, n_clusters, dims, pretrained,
                     pretrained_from, mesh, stacked_dec)
    if continued:
      out.log({"stage": "resume", "partial_checkpoints":
               out.partial_checkpoints()})
    out.log({"stage": "data", "dataset": dataset.name,
             "n_samples": dataset.num_samples, "dim": dataset.dim,
             "n_clusters": n_clusters or "auto",
             "devices": 1 if mesh is None else mesh.size,
             DATA_FINGERPRINT: dataset.fingerprint})
    method_out = METHODS[config.method](ctx)
    n_clusters = ctx.n_clusters
    labels = np.asarray(method_out.pop("labels"))
    q = method_out.pop("soft_assignment", None)
    out.save_assignments(labels, q)
    scores = ctx.score(labels)
    sizes = np.bincount(labels, minlength=n_clusters).tolist()
    mean_max_q = None if q is None else float(np.mean(np.max(q, axis=1)))
    collapse = {**diagnostics.collapse_flags(sizes, config.collapse_fraction,
                                             mean_max_q),
                "flagged_updates": len(ctx.collapsed_at),
                "first_flagged_iteration": (ctx.collapsed_at or [None])[0]}
    results = {
        "method": config.method, "dataset": dataset.name, "seed": config.seed,
        "n_samples": dataset.num_samples, "dim": dataset.dim,
        "n_clusters": n_clusters, **scores,
        DATA_FINGERPRINT: dataset.fingerprint,
        "nmi_average": metrics.NMI_AVERAGE,
        "cluster_sizes": sizes, "collapse": collapse,
        **({} if mean_max_q is None else {"mean_max_q": mean_max_q}),
        **({} if dataset.y is None else {
            "per_class_recall": metrics.per_class_recall(dataset.y, labels)}),
        **ctx.extra, **method_out,
        # "shared": this seed's share of stages run for several seeds at
        # once (multiseed.py), which took place before this call.
        "times_s": {**ctx.times, "total": time.perf_counter() - start
                    + ctx.times.get("shared", 0.0)},
        "config": config.to_dict(), "environment": env,
    }
    ctx.log({"stage": "final", **scores, "cluster_sizes": sizes})
    out.write_results(results)
    ctx.progress.clear()
    if config.get("report", False) and out.primary:
      _report(out.path, dataset, ctx.tensorboard)
    if ctx.tensorboard is not None:
      ctx.tensorboard.close()
    if jax.process_count() > 1:  # no process leaves while another writes
      multihost_utils.sync_global_devices("dec_jax: run finished")
    return results
