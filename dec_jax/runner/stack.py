"""What a method runs on: a stack of members, the data, and the stages they
share (pretraining, embedding, k-means), each written once over the stack.

A `Stack` gives each member its outputs (`MemberRun`: workdir, metrics log,
TensorBoard, progress) and computes the shared stages for all members at
once: their states carry a leading member axis, their keys come from their
seeds (`member_key`), their numeric hyperparameters are [S] arrays.
Services return values (and what results.json should say about them); they
never make a method write into the stack.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from typing import Any, Optional, Sequence

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dec_jax.nn import augment
from dec_jax.train import batching
from dec_jax.core import choose_k
from dec_jax.train import dec_loop
from dec_jax.train.member_axis import over_members
from dec_jax.runner import data
from dec_jax.core import diagnostics
from dec_jax.core import kmeans
from dec_jax.runner import members as members_lib
from dec_jax.core import metrics
from dec_jax.nn import models
from dec_jax.train import optim
from dec_jax.train import pretrain
from dec_jax.runner import progress
from dec_jax.runner import tensorboard
from dec_jax.runner import pretrained
from dec_jax.runner.workdir import (DATA_FINGERPRINT, PARTIAL_SUFFIX,
                                    PRETRAINING_STAGES, Workdir, load_meta,
                                    load_params)

AUTOENCODER = pretrained.AUTOENCODER
PARTIAL = AUTOENCODER + PARTIAL_SUFFIX  # stacked pretraining, as it goes

# The stream of each stage's key, fold_in(key(seed), stream).
STREAMS = {"pretrain": 1, "dec": 2, "greedy": 3, "dec_refine": 4}


def member_key(seed: int, stage: str) -> jax.Array:
  """The key of one stage of a member: every run with this seed uses it,
  alone, in any stack and at any grid point."""
  return jax.random.fold_in(jax.random.key(seed), STREAMS[stage])


class MemberRun:
  """One member's outputs: metrics log, TensorBoard, progress, scoring."""

  def __init__(self, member: members_lib.Member,
               config: ml_collections.ConfigDict, workdir: Workdir,
               labels: Optional[np.ndarray], show_progress: bool,
               continued: bool = False):
    self.member, self.config, self.workdir = member, config, workdir
    self.continued = continued  # the log goes on from an interrupted run's
    self._labels = labels
    self.collapsed_at: list[int] = []  # iterations flagged by log_assignment
    stages = {"pretrain": ("epoch", config.pretrain.epochs),
              "dec": ("iteration", config.dec.maxiter)}
    self.progress = progress.StageProgress(
        stages if show_progress else {})
    self.tensorboard = tensorboard.open_writer(
        workdir.path, config.get("tensorboard", False) and workdir.primary)

  def log(self, record: dict) -> None:
    self.progress.clear()
    self.workdir.log(record)
    self.progress.update(record)
    if self.tensorboard is not None:
      self.tensorboard.write_record(record)

  def score(self, labels) -> dict:
    return metrics.evaluate(self._labels, np.asarray(labels))

  def log_assignment(self, record: dict) -> None:
    """Logs a target-update record: scores its `labels`, flags collapse."""
    if "labels" in record:
      record.update(self.score(record.pop("labels")))
    flags = diagnostics.collapse_flags(record["cluster_sizes"],
                                       self.config.collapse_fraction,
                                       record.get("mean_max_q"))
    if diagnostics.is_collapsed(flags):
      self.collapsed_at.append(record["iteration"])
    self.log({**record, **flags})

  def rewind(self, stage: str, counter: str, last: int) -> None:
    """Forgets the log's `stage` records with `counter` past `last`: a stage
    resumed from its checkpoint at `last` writes them again, so the log and
    the collapse count read as an uninterrupted run's."""
    self._keep(lambda r: r.get("stage") != stage
               or r.get(counter, last) <= last)
    if self.tensorboard is not None:
      self.tensorboard.rewind(stage, last + 1)

  def forget(self, stages: Sequence[str]) -> None:
    """Forgets the records of `stages` in a continued log (and TensorBoard):
    those stages start afresh in this run (their partial checkpoint was
    made with other settings), and would otherwise read as part of it."""
    if self.continued:
      self._drop(self.workdir.records(stages))

  def _drop(self, records: list[dict]) -> None:
    """Drops the stages of `records` from the log and TensorBoard."""
    present = {r["stage"] for r in records}
    if not present:
      return
    self._keep(lambda r: r.get("stage") not in present)
    if self.tensorboard is not None:
      for stage in present:
        self.tensorboard.rewind(stage, 0)

  def _keep(self, keep) -> None:
    kept = self.workdir.keep_records(keep)
    self.collapsed_at = [r["iteration"] for r in kept
                         if "small_clusters" in r
                         and diagnostics.is_collapsed(r)]

  def pretraining_records(self) -> list[dict]:
    """How this member's autoencoder was pretrained, as its log says."""
    return self.workdir.records(PRETRAINING_STAGES)

  def show_pretraining(self, records: list[dict]) -> None:
    """Makes the log (and TensorBoard) show `records` as the pretraining of
    the autoencoder in use, when it says otherwise: a reused autoencoder's
    after the log started afresh (a run killed before its first clustering
    checkpoint, or rerun with `overwrite`), or after a run of other
    pretraining settings; a grid point's twin's."""
    shown = self.pretraining_records()
    if shown == records:
      return
    self._drop(shown)
    for record in records:
      self.workdir.log(record, echo=False)
      if self.tensorboard is not None:
        self.tensorboard.write_record(record)

  def close(self) -> None:
    self.progress.clear()
    if self.tensorboard is not None:
      self.tensorboard.close()


class Stack:
  """S members of one run with the shared stages over their stacked state.

  `home` is where stacked partial checkpoints go (the workdir of a single
  run, the top workdir of several members); `runs[i]` member i's outputs.
  """

  def __init__(self, members: Sequence[members_lib.Member],
               configs: Sequence[ml_collections.ConfigDict],
               runs: Sequence[MemberRun], dataset: data.Dataset, x,
               dims: tuple[int, ...], home: Workdir,
               n_clusters: Optional[int]):
    self.members, self.configs, self.runs = list(members), list(configs), list(runs)
    self.config = configs[0]  # what the members share (not seed nor grid)
    self.dataset, self.x, self.dims, self.home = dataset, x, dims, home
    self.n_clusters = n_clusters  # None: chosen per member ('auto')
    self.times: dict[str, float] = {}  # stage wall seconds, this process
    # Stage seconds spent by earlier processes: a resumed stage's up to its
    # partial checkpoint (work after it is lost and redone), and the
    # pretraining of autoencoders reused from the members' own workdirs.
    self.carried_over: dict[str, float] = {}
    self._running: dict[str, float] = {}

  @property
  def size(self) -> int:
    return len(self.members)

  @property
  def names(self) -> list[str]:
    """How errors name the members: by seed and grid point, or not at all
    when the run is one member."""
    if self.size == 1 and not self.members[0].point:
      return [""]
    return [m.name for m in self.members]

  @contextlib.contextmanager
  def stage(self, name: str):
    """Times a stage of the whole stack; the body blocks on its work."""
    start = self._running[name] = time.perf_counter()
    try:
      yield
    finally:
      del self._running[name]
    self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - start

  def stage_seconds(self, name: str) -> float:
    """Wall seconds stage `name` has run so far, carried over included."""
    running = self._running.get(name)
    return (self.carried_over.get(name, 0.0) + self.times.get(name, 0.0)
            + (0.0 if running is None else time.perf_counter() - running))

  def stage_totals(self) -> dict[str, float]:
    """Each stage's wall seconds, carried over included."""
    return {name: self.stage_seconds(name)
            for name in {**self.times, **self.carried_over}}

  def save_partial(self, name: str, state: Any, stage: str,
                   meta: dict) -> None:
    """Saves partial checkpoint `name` of a running `stage`, with the
    stage's seconds so far (resume_point restores them)."""
    self.home.save_params(name, state,
                          {**meta, "elapsed_s": self.stage_seconds(stage)})

  def keys(self, stage: str) -> jax.Array:
    """[S] keys of one stage (member_key of each member's seed)."""
    return jnp.stack([member_key(m.seed, stage) for m in self.members])

  def hyper(self, section: str, fields: Sequence[str],
            index: Optional[Sequence[int]] = None) -> dict:
    configs = self.configs if index is None else [self.configs[i]
                                                  for i in index]
    return members_lib.hyper(configs, section, fields)

  def model(self) -> models.AnyAutoencoder:
    return pretrained.build_model(self.config, self.dims,
                                  self.dataset.image_shape)

  def augment_fn(self) -> Optional[augment.AugmentFn]:
    """DEC-DA's random shifts and rotations (config.augment), or None."""
    if not self.config.augment:
      return None
    return augment.make_augment_fn(self.dataset.image_shape)

  def features(self) -> jax.Array:
    """All inputs as float32 features [N, D] (a full copy when x is uint8)."""
    return batching.as_features(jnp.asarray(self.x), self.dataset.divisor)

  # ------------------------------------------------------------ checkpoints

  def resume_point(self, name: str, settings: Any, target_fn, stage: str):
    """(state, description) of partial checkpoint `name` in `home` when it
    was saved with exactly these `settings` and resume is on, else
    (None, None). `target_fn(description)` gives the saved state's shapes;
    the seconds `stage` had run when it was saved count towards its time."""
    meta = load_meta(self.home.path, name)
    if not self.config.resume or meta is None:
      return None, None
    if (pretrained.comparable(meta.get("settings"))
        != pretrained.comparable(settings)):
      self._note_not_resumed(name, meta.get("settings"), settings)
      return None, None
    target = jax.eval_shape(lambda: target_fn(meta))
    self.carried_over[stage] = float(meta.get("elapsed_s", 0.0))
    return load_params(self.home.path, name, target), meta

  def _note_not_resumed(self, name: str, saved: Any, wanted: Any) -> None:
    """Logs why partial checkpoint `name` is not resumed (the settings of
    its members, in order, against these)."""
    saved = saved if isinstance(saved, list) else [saved]
    for i, run in enumerate(self.runs):
      reason = (pretrained.why_not_reused(saved[i], wanted[i])
                if i < len(saved) else "it holds other members")
      if reason:
        run.log({"stage": "checkpoint", "checkpoint": name, "reused": False,
                 "reason": reason})

  def save_model(self, i: int, name: str, params: Any,
                 description: dict) -> None:
    """Member i's trained model as checkpoints/<name>, its description
    naming the data it was trained on."""
    self.runs[i].workdir.save_params(name, params, {
        **description, DATA_FINGERPRINT: self.dataset.fingerprint})

  def result_settings(self, i: int) -> dict:
    """Member i's `members.result_settings`: what a partial checkpoint must
    match."""
    return members_lib.result_settings(self.configs[i].to_dict(),
                                       self.dataset.fingerprint)

  # ------------------------------------------------------------ autoencoders

  def autoencoders(self) -> tuple[models.AnyAutoencoder, Any, list[dict]]:
    """(model, stacked params, what results.json says per member): each
    member's autoencoder reused when one of its settings exists; the others
    pretrained together as one stack, once per distinct pretraining (grid
    points that differ only after pretraining share their seed's)."""
    model = self.model()
    found = [pretrained.find(c, r.workdir, self.dims, self.dataset)
             for c, r in zip(self.configs, self.runs)]
    infos = [{"pretrain_reused": True, "pretrained_from": origin}
             for _, origin in found]
    todo = [i for i, (params, _) in enumerate(found) if params is None]
    for i, config in enumerate(self.configs):
      if i not in todo and not config.pretrained_workdir:
        self.runs[i].show_pretraining(
            pretrained.pretraining_log(self.runs[i].workdir))
    for i in todo:
      if found[i][1]:  # this workdir's autoencoder differs: say why
        self.runs[i].log({"stage": "checkpoint", **found[i][1]})
    prints = {i: json.dumps(self._fingerprint(i), sort_keys=True)
              for i in todo}
    unique = [i for i in todo if i == next(j for j in todo
                                            if prints[j] == prints[i])]
    own_seconds = sum(origin.get(pretrained.PRETRAIN_SECONDS, 0.0)
                      for c, (params, origin) in zip(self.configs, found)
                      if params is not None and not c.pretrained_workdir)
    if unique:
      trained, info = self._pretrain(model, unique)
      by_print = {prints[i]: jax.tree.map(lambda a, j=j: a[j], trained)
                  for j, i in enumerate(unique)}
      for i in todo:
        found[i] = (by_print[prints[i]], None)
        infos[i] = info
        if i not in unique:  # its twin's, saved as its own (no extra cost)
          twin = next(j for j in unique if prints[j] == prints[i])
          log = self.runs[twin].pretraining_records()
          self.runs[i].show_pretraining(log)
          self.runs[i].workdir.save_params(AUTOENCODER, found[i][0],
                                           self._description(i, 0.0, log))
    if own_seconds:  # this workdir's own autoencoders: their pretraining
      self.carried_over["pretrain"] = (
          self.carried_over.get("pretrain", 0.0) + own_seconds)
    params = dec_loop.stack([jax.tree.map(jnp.asarray, p) for p, _ in found])
    return model, params, self._check_learnt(model, params, infos)

  def _check_learnt(self, model: models.AnyAutoencoder, params,
                    infos: list[dict]) -> list[dict]:
    """Each member's info plus its reconstruction loss on the clean data
    beside the mean image's; a member no better than the mean image
    (diagnostics.autoencoder_untrained) is flagged and logged as a warning."""
    args = (self.config.chunk_size, self.dataset.divisor)
    with self.stage("reconstruction"):
      if isinstance(self.x, np.ndarray):
        losses = [_streamed_loss(model, p, self.x, *args)
                  for p in dec_loop.unstack(params)]
      else:
        losses = _reconstruction_stack(model, params, self.x, *args)
      losses = np.asarray(losses, np.float64).tolist()
    # From the host copy: a resident self.x would be read back from the
    # device(s) in full for a statistic of the data alone.
    baseline = diagnostics.mean_image_loss(self.dataset.x,
                                           self.dataset.divisor)
    out = []
    for run, info, loss in zip(self.runs, infos, losses):
      run.forget(("reconstruction",))  # an interrupted run's, logged again
      untrained = diagnostics.autoencoder_untrained(loss, baseline)
      record = {"reconstruction_loss": loss, "mean_image_loss": baseline,
                "autoencoder_untrained": untrained}
      run.log({"stage": "reconstruction", **record})
      if untrained:
        logging.warning(
            "%s: the autoencoder did not learn (reconstruction loss %.4g, "
            "the mean image's %.4g); its clustering is flagged in "
            "results.json (autoencoder_untrained): try another seed, a "
            "lower pretrain.learning_rate or pretrain.optimizer=adam.",
            run.member.name or "the run", loss, baseline)
      out.append({**info, **record})
    return out

  def _fingerprint(self, i: int) -> dict:
    return pretrained.fingerprint(self.configs[i], self.dims,
                                  self.dataset.fingerprint)

  def _description(self, i: int, seconds: float, log: list[dict]) -> dict:
    """What member i's saved autoencoder is described by: its fingerprint,
    the seconds it cost, the scale of its inputs and its pretraining's log
    records."""
    return {**self._fingerprint(i), pretrained.PRETRAIN_SECONDS: seconds,
            pretrained.INPUT_SCALE: self.dataset.scale,
            pretrained.PRETRAINING_LOG: log}

  def _pretrain(self, model: models.AnyAutoencoder,
                todo: list[int]) -> tuple[Any, dict]:
    """Pretrains members `todo` as one stack; saves each autoencoder."""
    cfg, n = self.config.pretrain, self.dataset.num_samples
    keys = jnp.stack([jax.random.split(member_key(self.members[i].seed,
                                                  "pretrain"))
                      for i in todo])
    init_keys, shuffle_keys = keys[:, 0], keys[:, 1]
    hp = self.hyper("pretrain", ("learning_rate", "momentum"), todo)
    tx = optim.from_hyper(cfg, cfg.epochs * -(-n // cfg.batch_size))
    prints = [self._fingerprint(i) for i in todo]
    params = models.init_autoencoders(model, init_keys)
    state, meta = self.resume_point(
        PARTIAL, prints, lambda meta: optim.init_states(tx, params, hp),
        "pretrain")
    info = {"pretrain_epochs": cfg.epochs}
    if meta is not None:
      info["pretrain_resumed_from_epoch"] = meta["epoch"]
      for i in todo:
        self.runs[i].rewind("pretrain", "epoch", meta["epoch"])
        self.runs[i].log({"stage": "pretrain",
                          "resumed_from_epoch": meta["epoch"]})
    else:
      for i in todo:
        self.runs[i].forget(PRETRAINING_STAGES)
      if cfg.greedy_epochs:
        params = self._greedy(model, params, todo)
        info["pretrain_greedy_epochs"] = cfg.greedy_epochs

    def save_partial(epoch, state):
      self.save_partial(PARTIAL, state, "pretrain",
                        {"settings": prints, "epoch": epoch})

    with self.stage("pretrain"):
      params = pretrain.pretrain(
          model, params, self.x, shuffle_keys, tx, hp=hp,
          epochs=cfg.epochs, batch_size=cfg.batch_size,
          log_every=cfg.log_every,
          log_fn=lambda j, record: self.runs[todo[j]].log(record),
          state=state, start_epoch=0 if meta is None else meta["epoch"],
          elapsed_s=self.carried_over.get("pretrain", 0.0),
          checkpoint_every=cfg.checkpoint_every, checkpoint_fn=save_partial,
          augment_fn=self.augment_fn(), input_divisor=self.dataset.divisor,
          names=[self.names[i] for i in todo])
      jax.block_until_ready(params)
    seconds = self.stage_seconds("pretrain") / len(todo)
    for j, i in enumerate(todo):
      self.runs[i].workdir.save_params(
          AUTOENCODER, jax.tree.map(lambda a: a[j], params),
          self._description(i, seconds, self.runs[i].pretraining_records()))
    self.home.remove_checkpoint(PARTIAL)
    return params, info

  def _greedy(self, model: models.AnyAutoencoder, params,
              todo: list[int]):
    """DEC's greedy layer-wise denoising pretraining of members `todo`, as
    one stack; not checkpointed."""
    cfg = self.config.pretrain
    steps = cfg.greedy_epochs * -(-self.dataset.num_samples // cfg.batch_size)
    keys = jnp.stack([member_key(self.members[i].seed, "greedy")
                      for i in todo])
    with self.stage("pretrain_greedy"):
      params = pretrain.greedy_pretrain(
          model, params, self.features(), keys, optim.from_hyper(cfg, steps),
          hp=self.hyper("pretrain", ("learning_rate", "momentum"), todo),
          epochs=cfg.greedy_epochs, batch_size=cfg.batch_size,
          log_every=cfg.log_every,
          log_fn=lambda j, record: self.runs[todo[j]].log(record),
          chunk_size=self.config.chunk_size,
          names=[self.names[i] for i in todo])
      jax.block_until_ready(params)
    return params

  # --------------------------------------------------------- embed, k-means

  def embed(self, model: models.AnyAutoencoder, encoder_params) -> jax.Array:
    """Embeddings [S, N, d] of the data under each member's encoder."""
    encoder = models.encoder_module(model)
    args = (self.config.chunk_size, self.dataset.divisor)
    with self.stage("embed"):
      if isinstance(self.x, np.ndarray):
        z = jnp.stack([dec_loop.embed_streamed(encoder, e, self.x, *args)
                       for e in dec_loop.unstack(encoder_params)])
      else:
        z = _embed_stack(encoder, encoder_params, self.x, *args)
      jax.block_until_ready(z)
    return z

  def kmeans(self, features: Sequence[jax.Array], stage: str = "kmeans"
             ) -> tuple[list[kmeans.KMeansResult], list[dict]]:
    """k-means of each member on its features (k chosen first per member
    when n_clusters is 'auto'); (results, what results.json says). Members
    with the same seed and features (grid points sharing an autoencoder)
    share one fit."""
    results, infos = [], []
    with self.stage(stage):
      for i, x in enumerate(features):
        twin = next((j for j in range(i) if self._same_kmeans(i, j, features)),
                    None)
        if twin is None:
          result, info = self._fit_kmeans(i, x)
        else:
          result, info = results[twin], infos[twin]
          self._log_curve(i, info)
        results.append(result)
        infos.append(info)
    return results, infos

  def _same_kmeans(self, i: int, j: int, features: Sequence[jax.Array]
                   ) -> bool:
    """Whether members i and j have the same k-means (same seed, inputs)."""
    return self.configs[i].seed == self.configs[j].seed and (
        features[i] is features[j]
        or bool(jnp.array_equal(features[i], features[j])))

  def _fit_kmeans(self, i: int, x: jax.Array
                  ) -> tuple[kmeans.KMeansResult, dict]:
    """Member i's k-means of x: with its n_clusters, or the k of best
    silhouette over auto_k's range (each k fitted once)."""
    cfg = self.configs[i]
    fit = functools.lru_cache(maxsize=None)(functools.partial(
        kmeans.fit_kmeans, x, seed=cfg.seed, n_init=cfg.kmeans.n_init,
        max_iter=cfg.kmeans.max_iter, backend=cfg.kmeans.backend))
    k, info = self.n_clusters, {}
    if k is None:
      curve = choose_k.silhouette_curve(
          x, range(cfg.auto_k.min, cfg.auto_k.max + 1),
          lambda k: fit(k).labels, seed=cfg.seed,
          sample_size=cfg.auto_k.sample_size)
      k = choose_k.best_k(curve)
      info = {"n_clusters_auto": {"criterion": choose_k.CRITERION,
                                  "curve": curve, "chosen": k}}
      self._log_curve(i, info)
    result = jax.block_until_ready(fit(k))
    return result, {**info, **self._empty_clusters(i, result, k)}

  def _empty_clusters(self, i: int, result: kmeans.KMeansResult,
                      k: int) -> dict:
    """{'kmeans_empty_clusters': n} when member i's k-means left n of its k
    clusters empty (its features hold fewer than k distinct groups, e.g. an
    encoder that maps many inputs to one point; DEC's equal centres would
    never part), with a warning; else {}."""
    empty = k - int(np.unique(np.asarray(result.labels)).size)
    if not empty:
      return {}
    logging.warning(
        "%s: k-means left %d of its %d clusters empty: the features hold "
        "fewer distinct groups than n_clusters; choose a smaller k.",
        self.runs[i].member.name or "the run", empty, k)
    return {"kmeans_empty_clusters": empty}

  def _log_curve(self, i: int, info: dict) -> None:
    """Logs the silhouette of each k tried for member i, if k was chosen."""
    for k, score in info.get("n_clusters_auto", {}).get("curve", {}).items():
      self.runs[i].log({"stage": "choose_k", "k": k,
                        choose_k.CRITERION: score})


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _reconstruction_stack(model, params, x, chunk_size, divisor):
  """[S] mean reconstruction losses of the stacked autoencoders on x."""
  return over_members(lambda p: jnp.mean(pretrain.reconstruction_errors(
      model, p, x, chunk_size, divisor)))(params)


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _chunk_error_sum(model, params, chunk, chunk_size, divisor):
  return jnp.sum(pretrain.reconstruction_errors(model, params, chunk,
                                                chunk_size, divisor))


def _streamed_loss(model, params, x: np.ndarray, chunk_size: int,
                   divisor: float) -> float:
  """One autoencoder's mean reconstruction loss on x in host memory, sent
  to the device a chunk at a time."""
  total = sum(float(_chunk_error_sum(model, params, jax.device_put(
      x[start:start + chunk_size]), chunk_size, divisor))
              for start in range(0, x.shape[0], chunk_size))
  return total / x.shape[0]


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _embed_stack(encoder, encoder_params, x, chunk_size, divisor):
  return over_members(lambda e: dec_loop.embed(encoder, e, x, chunk_size,
                                              divisor))(encoder_params)
