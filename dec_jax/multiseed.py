"""Several seeds of one config: `--config.seeds=0,1,2,3,4`.

  WORKDIR/seed0/, seed1/, ...   each a normal run workdir (run.run)
  WORKDIR/results.json          per-seed ACC / NMI / ARI, mean ± sd, times
  WORKDIR/multiseed.jsonl       the log of the shared stages

The autoencoders of all seeds are pretrained together, in one compiled
program: their parameters and optimizer states are stacked on a leading seed
axis and `pretrain.make_epoch_fn`'s epoch (a pure function of state, data,
key) is vmapped over it. Each seed uses exactly the keys a single run with
that seed would (init and shuffling from fold_in(key(seed), 1)), and its
autoencoder is saved into seedS/checkpoints/autoencoder with the same
description a single run writes, so `run.run` then reuses it.

For dec and idec the clustering stage is stacked too: each seed's k-means
init is computed as its own run would, then `cluster.run_dec_seeds` runs
all the DEC loops in one compiled program (the seed keys those of the single
runs; a seed that converges leaves the stack). Each seed's `run.run` then
logs the records and keeps the result of its share (`stacked_dec`), and
writes its workdir as usual. The stacked DEC phase is not checkpointed: an
interrupted one is rerun (the autoencoders are kept).

Vmapped pretraining is used when the stacked program fits in memory (its
compiled size, from XLA's memory analysis, against the free device memory,
or free host RAM on CPU) and the recipe allows it, the vmapped DEC phase
likewise (an estimate of its size); otherwise, and with
`seeds_mode=sequential`, each seed runs that stage in its own run. The reason is
logged and written to results.json. Seeds whose results.json exists are not
rerun (unless config.overwrite), so an interrupted multi-seed run resumes.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dec_jax import augment
from dec_jax import checks
from dec_jax import cluster
from dec_jax import data
from dec_jax import kmeans
from dec_jax import methods
from dec_jax import metrics
from dec_jax import models
from dec_jax import optim
from dec_jax import pretrain
from dec_jax import run as run_lib
from dec_jax.errors import DecJaxError, TrainingDiverged
from dec_jax.workdir import RESULTS, Workdir, load_meta, read_json
from dec_jax.workdir import write_json_atomic

MODES = ("auto", "vmap", "sequential")
LOG = "multiseed.jsonl"
SCORES = ("acc", "nmi", "ari")
# Use at most this share of the free memory for the stacked program.
MEMORY_FRACTION = 0.8


def parse_seeds(value: Any) -> tuple[int, ...]:
  """config.seeds as a tuple of distinct ints: "0,1,2", (0, 1), 3 or ""."""
  if value is None or value == "" or value == ():
    return ()
  if isinstance(value, str):
    parts = [p.strip() for p in value.strip("()[] ").split(",") if p.strip()]
  elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
    parts = [value]
  elif isinstance(value, (list, tuple)):
    parts = list(value)
  else:
    raise DecJaxError(f"seeds must be a list like '0,1,2', got {value!r}.")
  seeds = []
  for p in parts:
    try:
      seed = int(p)
    except (TypeError, ValueError):
      raise DecJaxError(f"seeds must be integers, got {p!r} in "
                        f"{value!r}.") from None
    if isinstance(p, (float, bool)) or seed < 0:
      raise DecJaxError(f"seeds must be non-negative integers, got {p!r}.")
    checks.check_seed(seed, "seeds")
    seeds.append(seed)
  if len(set(seeds)) != len(seeds):
    raise DecJaxError(f"seeds must be distinct, got {value!r}.")
  return tuple(seeds)


def seed_config(config: ml_collections.ConfigDict,
                seed: int) -> ml_collections.ConfigDict:
  """The single-run config of one seed."""
  return ml_collections.ConfigDict({**config.to_dict(), "seed": seed,
                                    "seeds": ""})


def validate(config: ml_collections.ConfigDict) -> None:
  """The checks of a single run, plus seeds_mode."""
  checks.validate_config(config)
  checks.require(config.seeds_mode in MODES,
                 f"Unknown seeds_mode {config.seeds_mode!r}; expected one of "
                 f"{MODES}.")


def seed_dir(workdir: str, seed: int) -> str:
  return os.path.join(workdir, f"seed{seed}")


# ------------------------------------------------------------------- memory


def available_bytes() -> tuple[int, str]:
  """Free memory of the default device, or free host RAM where the device
  does not report it (CPU): (bytes, where it was read)."""
  device = jax.devices()[0]
  try:
    stats = device.memory_stats()
  except Exception:  # pylint: disable=broad-except
    stats = None
  if stats and "bytes_limit" in stats:
    return (int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)),
            f"{device.device_kind} memory_stats")
  pages = os.sysconf("SC_AVPHYS_PAGES")
  return int(pages * os.sysconf("SC_PAGE_SIZE")), "host RAM (sysconf)"


def _tree_bytes(tree) -> int:
  return sum(math.prod(a.shape) * np.dtype(a.dtype).itemsize
             for a in jax.tree.leaves(tree))


def _compiled_bytes(compiled, fallback: int) -> tuple[int, str]:
  """Peak bytes of a compiled program (arguments + outputs + temporaries)."""
  try:
    m = compiled.memory_analysis()
    total = (m.argument_size_in_bytes + m.output_size_in_bytes
             + m.temp_size_in_bytes - m.alias_size_in_bytes)
    return int(total), "XLA memory analysis"
  except Exception:  # pylint: disable=broad-except
    return fallback, "estimate (4 x stacked state + data)"


def _memory_check(needed: int, needed_from: str, what: str,
                  mode: str) -> tuple[dict, Optional[str]]:
  """(what results.json says about memory, why `what` does not fit or None).

  seeds_mode=vmap skips the check."""
  free, where = available_bytes()
  memory = {"needed_bytes": needed, "needed_from": needed_from,
            "available_bytes": free, "available_from": where,
            "fraction": MEMORY_FRACTION}
  if needed <= MEMORY_FRACTION * free or mode == "vmap":
    return memory, None
  return memory, (f"{what} needs {needed / 2**20:.0f} MiB, more than "
                  f"{MEMORY_FRACTION:.0%} of the {free / 2**20:.0f} MiB free "
                  f"({where})")


# --------------------------------------------------------- vmapped pretraining


def vmap_blockers(config: ml_collections.ConfigDict) -> list[str]:
  """Why this recipe's pretraining cannot be vmapped (empty: it can)."""
  reasons = []
  if config.method == "kmeans":
    reasons.append("method=kmeans has no autoencoder")
  if config.pretrained_workdir:
    reasons.append("the autoencoder comes from pretrained_workdir")
  if config.pretrain.get("greedy_epochs", 0):
    reasons.append("greedy layer-wise pretraining runs per seed")
  if config.pretrain.epochs == 0:
    reasons.append("pretrain.epochs=0")
  if not config.data_on_device:
    reasons.append("data_on_device=False streams the data, which the stacked "
                   "program would hold whole on the device")
  return reasons


class _Pretrainer:
  """The stacked pretraining of several seeds, one compiled epoch."""

  def __init__(self, config, dataset: data.Dataset, dims, seeds):
    self.config, self.seeds = config, tuple(seeds)
    cfg = config.pretrain
    self.model = run_lib.build_model(config, dims, dataset.image_shape)
    steps = cfg.epochs * -(-dataset.num_samples // cfg.batch_size)
    self.tx = optim.from_config(cfg, steps)
    augment_fn = None
    if config.get("augment", False):
      augment_fn = augment.make_augment_fn(dataset.image_shape)
    epoch_fn = pretrain.make_epoch_fn(self.model, self.tx,
                                      dataset.num_samples, cfg.batch_size,
                                      augment_fn,
                                      input_divisor=dataset.divisor)
    self.epoch = jax.jit(jax.vmap(epoch_fn, in_axes=(0, None, 0)),
                         donate_argnums=0)
    # The keys of RunContext.autoencoder, one pair per seed.
    pairs = [jax.random.split(jax.random.fold_in(jax.random.key(s), 1))
             for s in self.seeds]
    self.init_keys = jnp.stack([p[0] for p in pairs])
    self.shuffle_keys = jnp.stack([p[1] for p in pairs])

  def init_state(self):
    params = jax.vmap(lambda k: models.init_autoencoder(self.model, k))(
        self.init_keys)
    return {"params": params, "opt": jax.vmap(self.tx.init)(params)}

  def compile(self, x: jax.ShapeDtypeStruct):
    """The compiled stacked epoch and its peak memory in bytes (x: only its
    shape and dtype, so that nothing is copied before the memory check)."""
    state = jax.eval_shape(self.init_state)
    keys = jax.eval_shape(lambda k: k, self.shuffle_keys)
    compiled = self.epoch.lower(state, x, keys).compile()
    fallback = 4 * _tree_bytes(state) + x.size * x.dtype.itemsize
    return compiled, _compiled_bytes(compiled, fallback)

  def run(self, compiled, x: jax.Array, log_fn) -> list[Any]:
    """Trains all seeds; returns each seed's parameters (unstacked)."""
    cfg = self.config.pretrain
    state = self.init_state()
    start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
      keys = jax.vmap(lambda k: jax.random.fold_in(k, epoch))(
          self.shuffle_keys)
      state, losses = compiled(state, x, keys)
      if epoch % cfg.log_every == 0 or epoch == cfg.epochs:
        losses = np.asarray(losses).tolist()
        for seed, loss in zip(self.seeds, losses):
          if not math.isfinite(loss):
            raise TrainingDiverged(
                f"pretraining of seed {seed} diverged by epoch {epoch} (loss "
                f"{loss}); rerun with a lower pretrain.learning_rate.")
        log_fn({"stage": "pretrain_vmapped", "epoch": epoch,
                "loss": dict(zip(map(str, self.seeds), losses)),
                "time_s": time.perf_counter() - start})
    params = jax.block_until_ready(state["params"])
    return [jax.tree.map(lambda a, i=i: a[i], params)
            for i in range(len(self.seeds))]


def _to_pretrain(config, workdir: str, seeds: Sequence[int], dims,
                 data_fingerprint: str, log_fn) -> list[int]:
  """The seeds whose workdir holds no autoencoder of these settings and
  data (nor a partial pretraining, which their own run resumes); logs why
  an autoencoder found is not reused."""
  todo = []
  for seed in seeds:
    folder = seed_dir(workdir, seed)
    wanted = run_lib.pretraining_fingerprint(seed_config(config, seed), dims,
                                             data_fingerprint)
    # pylint: disable-next=protected-access
    have = run_lib._with_defaults(load_meta(folder, run_lib.AUTOENCODER))
    if have is not None and have == wanted:
      continue
    reason = run_lib.why_not_reused(have, wanted)
    if reason:
      log_fn({"stage": "checkpoint", "seed": seed,
              "checkpoint": run_lib.AUTOENCODER, "reused": False,
              "reason": reason})
    if load_meta(folder, run_lib.PARTIAL) is not None:
      continue
    todo.append(seed)
  return todo


def _pretrain_vmapped(config, dataset: data.Dataset, dims, seeds, workdir,
                      log_fn) -> dict:
  """Plans and (when it fits) runs the stacked pretraining; returns what
  results.json says about it."""
  mode = config.seeds_mode
  blockers = vmap_blockers(config)
  if mode == "sequential":
    blockers.append("seeds_mode=sequential")
  todo = [] if blockers else _to_pretrain(config, workdir, seeds, dims,
                                          dataset.fingerprint, log_fn)
  if not blockers and len(todo) < 2:
    blockers.append(f"{len(todo)} seed(s) left to pretrain")
  if blockers:
    return {"mode": "sequential", "reason": "; ".join(blockers)}
  trainer = _Pretrainer(config, dataset, dims, todo)
  start = time.perf_counter()
  compiled, (needed, how) = trainer.compile(
      jax.ShapeDtypeStruct(dataset.x.shape, dataset.x.dtype))
  memory, reason = _memory_check(needed, how, "the stacked program", mode)
  if reason:
    log_fn({"stage": "pretrain_vmapped", "skipped": reason, **memory})
    return {"mode": "sequential", "reason": reason, "memory": memory}
  log_fn({"stage": "pretrain_vmapped", "seeds": todo, **memory})
  params = trainer.run(compiled, jnp.asarray(dataset.x), log_fn)
  for seed, p in zip(todo, params):
    cfg = seed_config(config, seed)
    out = Workdir(seed_dir(workdir, seed), overwrite=True)
    os.makedirs(out.path, exist_ok=True)
    out.save_params(run_lib.AUTOENCODER, p, run_lib.pretraining_fingerprint(
        cfg, dims, dataset.fingerprint))
  return {"mode": "vmap", "seeds": todo, "memory": memory,
          "time_s": time.perf_counter() - start,
          "reason": f"{len(todo)} seeds fit in memory"}


# ------------------------------------------------------- vmapped DEC phase


def dec_vmap_blockers(config: ml_collections.ConfigDict) -> list[str]:
  """Why this recipe's clustering stage cannot be vmapped (empty: it can)."""
  reasons = []
  if config.method not in ("dec", "idec"):
    reasons.append(f"method={config.method} has no DEC phase")
  if config.seeds_mode == "sequential":
    reasons.append("seeds_mode=sequential")
  if not config.data_on_device:
    reasons.append("data_on_device=False streams each run's data")
  if config.n_clusters == "auto":
    reasons.append("n_clusters=auto is chosen per seed")
  if config.num_devices != 1 and jax.device_count() > 1:
    reasons.append("data parallelism over devices runs one seed at a time")
  return reasons


# Copies of the trained parameters the stacked DEC phase holds per seed:
# params + 2 optimizer moments, twice while donated.
STATE_COPIES = 6


def _dec_trained_params(config, model, params, centres) -> dict:
  """What one seed's DEC loop trains: the encoder, the centres [k, d] and,
  for idec, the decoder (`methods.clustering_loss`)."""
  _, extra = methods.clustering_loss(config, model, params)
  return {**extra, "encoder": params["encoder"], "centres": centres}


def _dec_memory_estimate(trained, num_seeds: int, n: int, k: int,
                         chunk: int, width: int) -> int:
  """Bytes of the stacked DEC phase: the state of every trained parameter
  (`_dec_trained_params`), q / p / labels of the full set, and one chunk's
  activations, per seed."""
  return num_seeds * (STATE_COPIES * _tree_bytes(trained) + 3 * 4 * n * k
                      + 2 * 4 * chunk * width)


def _ready_autoencoders(config, dataset: data.Dataset, dims, seeds,
                        workdir) -> dict[int, Any]:
  """The pretrained autoencoder of each seed that can join the stacked DEC
  phase (not those whose interrupted clustering resumes in its own run)."""
  ready = {}
  for seed in seeds:
    folder = Workdir(seed_dir(workdir, seed), overwrite=True)
    if config.resume and load_meta(folder.path, methods.DEC_PARTIAL):
      continue
    # pylint: disable-next=protected-access
    params, _ = run_lib._find_pretrained(seed_config(config, seed), folder,
                                         dims, dataset.image_shape,
                                         dataset.fingerprint)
    if params is not None:
      ready[seed] = params
  return ready


def _kmeans_inits(config, model, ready: dict[int, Any], x: jax.Array, k: int,
                  dataset: data.Dataset) -> tuple[list[dict], dict[int, dict]]:
  """Each ready seed's k-means init, as its own run computes it: (the
  stacked loop's starts, per seed its init scores and k-means time)."""
  encoder = models.encoder_module(model)
  starts, inits = [], {}
  for seed, params in ready.items():
    t0 = time.perf_counter()
    z = cluster.embed(encoder, params["encoder"], x, config.chunk_size,
                      dataset.divisor)
    init = kmeans.fit_kmeans(z, k, seed=seed, n_init=config.kmeans.n_init,
                             max_iter=config.kmeans.max_iter,
                             backend=config.kmeans.backend)
    jax.block_until_ready(init)
    starts.append({"params": _dec_trained_params(config, model, params,
                                                 init.centres),
                   "init_labels": init.labels})
    inits[seed] = {"init_metrics": metrics.evaluate(dataset.y, init.labels),
                   "times_s": {"kmeans": time.perf_counter() - t0}}
  return starts, inits


def _dec_vmapped(config, dataset: data.Dataset, dims, k: Optional[int], seeds,
                 workdir, log_fn, shared_s: dict[int, float]
                 ) -> tuple[dict, dict[int, dict]]:
  """Runs the k-means inits and the DEC loops of the seeds whose autoencoder
  is ready, stacked (`cluster.run_dec_seeds`); returns what results.json
  says about it and each seed's `run.run(..., stacked_dec=)`, whose
  times_s.shared is its share of the stacked loop plus `shared_s[seed]`
  (its share of the stacked pretraining)."""
  blockers = dec_vmap_blockers(config)
  ready = {} if blockers else _ready_autoencoders(config, dataset, dims,
                                                  seeds, workdir)
  if not blockers and len(ready) < 2:
    blockers.append(f"{len(ready)} seed(s) with a pretrained autoencoder "
                    "left to cluster")
  if blockers:
    return {"mode": "sequential", "reason": "; ".join(blockers)}, {}
  start = time.perf_counter()
  model = run_lib.build_model(config, dims, dataset.image_shape)
  encoder = models.encoder_module(model)
  needed = _dec_memory_estimate(
      _dec_trained_params(config, model, next(iter(ready.values())),
                          jax.ShapeDtypeStruct((k, dims[-1]), jnp.float32)),
      len(ready), dataset.num_samples, k, config.chunk_size, max(dims))
  memory, reason = _memory_check(needed, "estimate", "the stacked DEC phase",
                                 config.seeds_mode)
  if reason:
    log_fn({"stage": "dec_vmapped", "skipped": reason, **memory})
    return {"mode": "sequential", "reason": reason, "memory": memory}, {}
  x = jnp.asarray(dataset.x)  # after the check: it may not fit
  starts, inits = _kmeans_inits(config, model, ready, x, k, dataset)
  log_fn({"stage": "dec_vmapped", "seeds": list(ready), **memory})
  loss_fn, _ = methods.clustering_loss(config, model,
                                       next(iter(ready.values())))

  records: dict[int, list] = {seed: [] for seed in ready}

  def record_fn(seed):
    def log(record):  # scored now: the labels of every update are not kept
      labels = record.pop("labels")
      records[seed].append({**record, **metrics.evaluate(dataset.y, labels)})
      log_fn({"stage": "dec_vmapped", "seed": seed,  # progress, as it goes
              **{k: records[seed][-1].get(k) for k in (
                  "iteration", "label_change", "loss", "acc", "time_s")}})
    return log

  augment_fn = (augment.make_augment_fn(dataset.image_shape)
                if config.augment else None)
  t0 = time.perf_counter()
  results = cluster.run_dec_seeds(
      encoder, starts, x,
      [methods.dec_key(jax.random.key(seed)) for seed in ready],
      methods.dec_optimizer(config),
      methods.dec_settings(config, dataset.divisor),
      [record_fn(seed) for seed in ready], loss_fn=loss_fn,
      augment_fn=augment_fn)
  loop_s = time.perf_counter() - t0
  phase = {"mode": "vmap", "seeds": list(ready), "memory": memory,
           "loop_s": loop_s, "time_s": time.perf_counter() - start,
           "reason": f"{len(ready)} seeds' autoencoders ready"}
  stacked = {}
  for seed, result in zip(ready, results):
    inits[seed]["times_s"]["shared"] = (shared_s.get(seed, 0.0)
                                        + loop_s / len(ready))
    stacked[seed] = {
        **inits[seed], "records": records[seed], "result": result,
        "dec_phase": {"mode": "vmap", "seeds": list(ready),
                      "shared_loop_s": loop_s}}
  log_fn({"stage": "dec_vmapped", "seeds": list(ready), "loop_s": loop_s,
          "iterations": {str(s): r.iterations for s, r in zip(ready,
                                                               results)}})
  return phase, stacked


# ---------------------------------------------------------------- the runs


def _mean_sd(values: list[float]) -> dict:
  return {"mean": statistics.mean(values),
          "sd": statistics.stdev(values) if len(values) > 1 else 0.0}


def summarize(per_seed: dict[int, dict]) -> dict:
  """Mean and sample sd (n - 1) of each score over the seeds that have it."""
  out = {}
  for key in SCORES:
    values = [r[key] for r in per_seed.values() if r.get(key) is not None]
    if values:
      out[key] = _mean_sd(values)
  times = [r["times_s"]["total"] for r in per_seed.values()]
  out["time_s"] = _mean_sd(times)
  return out


def run_seeds(config: ml_collections.ConfigDict, workdir: str,
              log_fn: Optional[Any] = None) -> dict:
  """Runs config for each of config.seeds into workdir/seed<s>/ and writes
  workdir/results.json; returns what it holds."""
  start = time.perf_counter()
  seeds = parse_seeds(config.seeds)
  checks.require(len(seeds) >= 1, "seeds is empty; use run.run for one seed.")
  first = seed_config(config, seeds[0])
  validate(first)
  top = Workdir(workdir, overwrite=config.overwrite)  # refuses a finished one
  # As run.run loads it: 8-bit images stay uint8, decoded in the steps.
  dataset = checks.load_data(first, keep_uint8=first.keep_uint8)
  n_clusters = checks.resolve_n_clusters(first, dataset)  # None: auto
  checks.check_batch_sizes(first, dataset.num_samples)
  dims = (dataset.dim,) + tuple(int(d) for d in config.model.dims)
  todo = [s for s in seeds if config.overwrite or not os.path.exists(
      os.path.join(seed_dir(workdir, s), RESULTS))]

  os.makedirs(top.path, exist_ok=True)
  if os.path.exists(top.file(RESULTS)):
    os.remove(top.file(RESULTS))  # stale once a seed reruns

  def log(record: dict) -> None:
    with open(top.file(LOG), "a") as f:
      f.write(json.dumps(record) + "\n")
    if log_fn:
      log_fn(record)

  log({"stage": "multiseed", "seeds": list(seeds), "to_run": todo,
       "finished_before": [s for s in seeds if s not in todo]})
  pretraining = _pretrain_vmapped(config, dataset, dims, todo, workdir, log)
  log({"stage": "multiseed", "pretraining": pretraining["mode"],
       "reason": pretraining["reason"]})
  pretrain_share = {s: pretraining["time_s"] / len(pretraining["seeds"])
                    for s in pretraining.get("seeds", [])}
  dec_phase, stacked = _dec_vmapped(config, dataset, dims, n_clusters, todo,
                                    workdir, log, pretrain_share)
  log({"stage": "multiseed", "dec_phase": dec_phase["mode"],
       "reason": dec_phase["reason"]})
  for seed in todo:
    result = run_lib.run(seed_config(config, seed), seed_dir(workdir, seed),
                         stacked_dec=stacked.get(seed))
    log({"stage": "seed_done", "seed": seed,
         **{k: result.get(k) for k in SCORES},
         "time_s": result["times_s"]["total"]})
  per_seed = {s: read_json(os.path.join(seed_dir(workdir, s), RESULTS))
              for s in seeds}
  results = {
      "kind": "multiseed", "method": config.method,
      "dataset": per_seed[seeds[0]]["dataset"], "seeds": list(seeds),
      "n_samples": dataset.num_samples,
      "per_seed": {str(s): {**{k: r.get(k) for k in SCORES},
                            "n_clusters": r.get("n_clusters"),
                            "time_s": r["times_s"]["total"],
                            "workdir": os.path.basename(seed_dir(workdir, s)),
                            **({"stop_reason": r["stop_reason"]}
                               if "stop_reason" in r else {})}
                   for s, r in per_seed.items()},
      **summarize(per_seed),
      "sd_is": "sample standard deviation (n - 1) over the seeds",
      "pretraining": pretraining, "dec_phase": dec_phase, "reran": todo,
      "times_s": {"pretrain_vmapped": pretraining.get("time_s", 0.0),
                  "dec_vmapped": dec_phase.get("time_s", 0.0),
                  "total": time.perf_counter() - start},
      "config": config.to_dict(),
  }
  write_json_atomic(top.file(RESULTS), results)
  return results


def is_multiseed(config: ml_collections.ConfigDict) -> bool:
  return bool(parse_seeds(config.get("seeds", "")))


def describe(results: dict) -> str:
  """One line: method, data, seeds and mean ± sd of each score."""
  scores = " ".join(
      f"{k.upper()}={results[k]['mean']:.4f}±{results[k]['sd']:.4f}"
      for k in SCORES if k in results)
  return (f"{results['method']} on {results['dataset']} "
          f"(n={results['n_samples']}, seeds {results['seeds']}, "
          f"pretraining {results['pretraining']['mode']}): {scores} in "
          f"{results['times_s']['total']:.1f}s")
