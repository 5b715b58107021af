"""The runner: a config in, a workdir out, for one member or a stack.

`run(config, workdir)` checks the config and loads the data *before* it
writes anything, so bad input fails fast with a `DecJaxError` and leaves the
workdir untouched. It then builds the run's members (seeds x grid points,
`members.py`), groups them into stacks that fit in memory, runs
`config.method` on each stack (`methods/`), scores each member's labels and
writes its workdir, results.json last; with several members, the workdir's
own results.json summarizes them (mean ± sd, per grid point).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging as std_logging
import math
import os
import platform
import subprocess
import sys
import time
from typing import Callable, Optional

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app
from absl import logging

from dec_jax.runner import checks
from dec_jax.runner import data
from dec_jax.runner import ensemble
from dec_jax.core import diagnostics
from dec_jax.runner import members as members_lib
from dec_jax import methods
from dec_jax.core import metrics
from dec_jax import parallel
from dec_jax.runner import pretrained
from dec_jax.runner.stack import MemberRun, Stack
from dec_jax.runner.workdir import (DATA_FINGERPRINT, RESULTS, Workdir,
                                    read_json, write_json_atomic)

LOG = "multiseed.jsonl"  # the stack's own log, beside the members' folders
MODES = ("auto", "vmap", "sequential")
# Use at most this share of the free memory for one stack's programs.
MEMORY_FRACTION = 0.8

# Short config keys: `--config.model=conv` (and a sweep grid's `model=conv`)
# mean `model.kind=conv`, the spelling issue #4 gave.
CONFIG_SHORTHANDS = {"model": "model.kind"}


def expand_config_shorthands(argv: list[str]) -> list[str]:
  """argv with each `--config.<shorthand>` written out (CONFIG_SHORTHANDS),
  its value after `=` or in the next argument."""
  out = []
  for arg in argv:
    name, eq, value = arg.partition("=")
    key = name.removeprefix("--config.")
    if name.startswith("--config.") and key in CONFIG_SHORTHANDS:
      arg = f"--config.{CONFIG_SHORTHANDS[key]}{eq}{value}"
    out.append(arg)
  return out


def hide_orbax_info() -> None:
  """Keeps Orbax's INFO lines (one per checkpoint read or write) off the
  console of an entry point; its warnings and errors still show."""
  logging.get_absl_handler().addFilter(
      lambda r: "orbax" not in r.pathname or r.levelno >= std_logging.WARNING)


def parse_config_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing (app.run's `flags_parser`) for an entry point with
  config overrides: a misspelt `--config.<field>` ends with one line naming
  it and exit code 2, not ml_collections' traceback."""
  try:
    return app.parse_flags_with_usage(argv)
  except (KeyError, AttributeError) as e:
    chain = [e]  # ml_collections raises its KeyError again, as others
    while chain[-1].__context__ is not None:
      chain.append(chain[-1].__context__)
    field = str(chain[-1].args[0]) if chain[-1].args else ""
    hint = next((line for error in chain for arg in error.args[:1]
                 for line in str(arg).splitlines()
                 if line.startswith("Did you mean")), "")
    given = next((name for name in (a.partition("=")[0] for a in argv[1:])
                  if name.startswith("--config.")
                  and field in name.split(".")), None)
    if given is None:  # not an override's: the config file's own error
      raise
    print(f"error: {given}: the config has no field {field!r}"
          f"{'. ' + hint if hint else ''} (the fields: docs/config.md)",
          file=sys.stderr)
    sys.exit(2)


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


# after_member(workdir, dataset, tensorboard_writer): what an application
# adds to each finished member's folder (apps.report draws its plots).
AfterMember = Callable[[str, data.Dataset, Optional[object]], None]


def _after(after_member: AfterMember, workdir: str, dataset: data.Dataset,
           tb_writer) -> None:
  """Runs the hook after results.json: a failure is a warning, never a
  failed run."""
  try:
    after_member(workdir, dataset, tb_writer)
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("after_member on %s failed (%s: %s).", workdir,
                    type(e).__name__, e)


# ------------------------------------------------------------------ memory


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


def member_bytes(config: ml_collections.ConfigDict, dims: tuple[int, ...],
                 dataset: data.Dataset, k: int) -> int:
  """An estimate of one member's share of a stack's memory: every parameter
  the programs hold (autoencoder, centres) with its gradient, two optimizer
  moments and the donated copy; its full-set q / p / labels; one chunk's
  activations."""
  model = pretrained.build_model(config, dims, dataset.image_shape)
  shapes = jax.eval_shape(model.init, jax.random.key(0),
                          jnp.zeros((1, dims[0]), jnp.float32))
  params = sum(math.prod(a.shape) * 4 for a in jax.tree.leaves(shapes))
  params += 4 * k * dims[-1]
  n = dataset.num_samples
  return 6 * params + 3 * 4 * n * k + 2 * 4 * config.chunk_size * max(dims)


def group_size(config: ml_collections.ConfigDict, size: int, needed: int,
               data_bytes: int) -> tuple[int, dict]:
  """How many members run as one stack: all (seeds_mode=vmap), one
  (sequential), or as many as fit in MEMORY_FRACTION of the free memory."""
  free, where = available_bytes()
  memory = {"member_bytes": needed, "data_bytes": data_bytes,
            "available_bytes": free, "available_from": where,
            "fraction": MEMORY_FRACTION}
  if config.seeds_mode == "vmap":
    return size, memory
  if config.seeds_mode == "sequential":
    return 1, memory
  fits = int((MEMORY_FRACTION * free - data_bytes) // max(needed, 1))
  return max(1, min(size, fits)), memory


# ------------------------------------------------------------------ the run


def _with_dataset(config, dataset: Optional[data.Dataset]):
  """config naming the arrays `dataset` holds (estimator, from_arrays)."""
  if dataset is None:
    return config
  return ml_collections.ConfigDict({**config.to_dict(),
                                    "dataset": dataset.name,
                                    "scale": str(dataset.scale)})


def validate(config) -> tuple[list, list]:
  """The members and their configs, each config checked."""
  checks.require(config.seeds_mode in MODES,
                 f"Unknown seeds_mode {config.seeds_mode!r}; expected one of "
                 f"{MODES}.")
  members = members_lib.from_config(config)
  ensemble.check(config, len(members))
  configs = [members_lib.member_config(config, m) for m in members]
  for member_config in configs:
    checks.validate_config(member_config)
  checks.check_streaming(config)
  return members, configs


def check_data_fits(config: ml_collections.ConfigDict, dataset: data.Dataset
                    ) -> tuple[Optional[int], tuple[int, ...]]:
  """The checks that need the data (k against its distinct points, batch
  sizes, image shapes); (k, or None for 'auto'; the autoencoder's dims)."""
  n_clusters = checks.resolve_n_clusters(config, dataset)
  checks.check_batch_sizes(config, dataset.num_samples)
  checks.check_model_fits_data(config, dataset)
  return n_clusters, (dataset.dim,) + tuple(int(d) for d in config.model.dims)


def run(config: ml_collections.ConfigDict, workdir: str,
        dataset: Optional[data.Dataset] = None, *,
        after_member: Optional[AfterMember] = None) -> dict:
  """Runs `config.method` for every member of the config on
  `config.dataset` (or on `dataset`, e.g. arrays from `data.from_arrays`,
  whose name is then recorded as config.dataset); returns what the
  workdir's results.json holds. `after_member` is called on each member's
  finished folder (e.g. `apps.report.after_member` draws its plots)."""
  start = time.perf_counter()
  config = _with_dataset(config, dataset)
  members, configs = validate(config)
  layout = members_lib.is_stack_layout(config)
  top = Workdir(workdir, overwrite=config.overwrite)
  dataset = dataset or checks.load_data(config, keep_uint8=config.keep_uint8)
  n_clusters, dims = check_data_fits(config, dataset)
  folders = [members_lib.member_dir(top.path, m, layout) for m in members]
  todo = [i for i, folder in enumerate(folders) if not layout
          or config.overwrite or not _finished(folder, configs[i], dataset)]
  member_dirs = {i: Workdir(folders[i], overwrite=True) for i in todo}
  if config.pretrained_workdir:  # a foreign autoencoder: refused up front
    for i in todo:
      pretrained.find(configs[i], member_dirs[i], dims, dataset)
  env = environment()  # the code that runs, read before it can change
  mesh = checks.data_mesh(config)
  with contextlib.nullcontext() if mesh is None else jax.set_mesh(mesh):
    needed = member_bytes(config, dims, dataset, n_clusters or
                          config.auto_k.max)
    size, memory = group_size(config, len(todo), needed, dataset.x.nbytes)
    groups = [todo[g:g + size] for g in range(0, len(todo), size)]
    ensemble.check_groups(config, groups, len(members) - len(todo))
    log = _stack_log(top, config, layout)
    log({"stage": "stack", "members": [members[i].name for i in todo],
         "finished_before": [members[i].name for i in range(len(members))
                             if i not in todo],
         "groups": [[members[i].name for i in g] for g in groups], **memory})
    x = _resident(dataset, config, mesh)
    results = {}
    for group in groups:
      home = top if layout else member_dirs[group[0]]
      results.update(_run_group(
          config, [members[i] for i in group], [configs[i] for i in group],
          [member_dirs[i] for i in group], group, home, dataset, x, dims,
          n_clusters, env, log, after_member))
    summary = results[0] if not layout else _summary(
        config, members, folders, top, dataset, memory, groups,
        time.perf_counter() - start)
    if jax.process_count() > 1:  # no process leaves while another writes
      multihost_utils.sync_global_devices("dec_jax: run finished")
    return summary


def _finished(folder: str, config: ml_collections.ConfigDict,
              dataset: data.Dataset) -> bool:
  """Whether a member's folder holds its results (then it is not rerun).
  Results made with other settings or data are refused: the summary would
  mix them with this run's."""
  path = os.path.join(folder, RESULTS)
  if not os.path.exists(path):
    return False
  saved = read_json(path)
  reason = why_made_otherwise(saved.get("config", {}),
                              saved.get(DATA_FINGERPRINT), config,
                              dataset.fingerprint)
  checks.require(reason is None, f"{folder} holds a finished member made "
                 f"otherwise: {reason}. Pass --config.overwrite=True to "
                 "rerun every member, or choose another workdir.")
  return True


def why_made_otherwise(saved_config: dict, saved_data: Optional[str],
                       config: ml_collections.ConfigDict,
                       data_fingerprint: Optional[str]) -> Optional[str]:
  """Why results made with `saved_config` on data `saved_data` are not what
  `config` on `data_fingerprint` would make (None when they are)."""
  return pretrained.why_not_reused(
      members_lib.result_settings(saved_config, saved_data),
      members_lib.result_settings(config.to_dict(), data_fingerprint))


def _stack_log(top: Workdir, config, layout: bool):
  """log(record): the stack's own records (WORKDIR/multiseed.jsonl and the
  console) when members have folders of their own; the console otherwise."""
  def log(record: dict) -> None:
    logging.info("stack %s", record)
    if layout and top.primary:
      os.makedirs(top.path, exist_ok=True)
      with open(top.file(LOG), "a") as f:
        f.write(json.dumps(record, default=str) + "\n")
  if layout and top.primary:
    os.makedirs(top.path, exist_ok=True)
    if os.path.exists(top.file(RESULTS)):
      os.remove(top.file(RESULTS))  # stale once a member reruns
    if not config.resume:
      for name in top.partial_checkpoints():
        top.remove_checkpoint(name)
    write_json_atomic(top.file("config.json"), config.to_dict())
  return log


def _resident(dataset: data.Dataset, config, mesh):
  """The data where the steps read it: on the device(s), 8-bit images kept
  uint8 (decoded per minibatch and chunk), or in host memory when
  data_on_device=False (streamed)."""
  if not config.data_on_device:
    return dataset.x
  if mesh is None:
    return jnp.asarray(dataset.x)
  return parallel.replicate(dataset.x, mesh)


def _run_group(config, members, configs, workdirs, index, home, dataset, x,
               dims, n_clusters, env, log, after_member) -> dict[int, dict]:
  """Runs the method on one stack of members; writes their workdirs."""
  start = time.perf_counter()
  runs = []
  for member, member_config, workdir in zip(members, configs, workdirs):
    continued = workdir.start(member_config.to_dict(),
                              resume=member_config.resume,
                              partial=home.partial_checkpoints())
    run_ = MemberRun(member, member_config, workdir, dataset.y,
                     show_progress=member is members[0], continued=continued)
    if continued:
      run_.log({"stage": "resume",
                "partial_checkpoints": home.partial_checkpoints()})
    run_.log({"stage": "data", "dataset": dataset.name,
              "n_samples": dataset.num_samples, "dim": dataset.dim,
              "n_clusters": n_clusters or "auto",
              "devices": jax.device_count() if config.num_devices == 0
              else config.num_devices, "stack_size": len(members),
              DATA_FINGERPRINT: dataset.fingerprint})
    runs.append(run_)
  stack = Stack(members, configs, runs, dataset, x, dims, home, n_clusters)
  try:
    outputs = methods.get(config.method).run(stack)
  except BaseException:  # what was logged reaches the files, e.g. on ^C
    for run_ in runs:
      run_.close()
    raise
  elapsed = time.perf_counter() - start
  results = {}
  for j, (run_, out) in enumerate(zip(runs, outputs)):
    results[index[j]] = _finish_member(run_, out, stack, dataset, env,
                                       elapsed, after_member)
    log({"stage": "member_done", "member": run_.member.name,
         **{k: results[index[j]].get(k) for k in members_lib.SCORES}})
  return results


def _finish_member(run_: MemberRun, out: dict, stack: Stack,
                   dataset: data.Dataset, env: dict, elapsed: float,
                   after_member: Optional[AfterMember]) -> dict:
  """Scores a member's output and writes its assignments and results.json.

  Its times_s are its share (1 / S) of the stack's stages and wall time."""
  config, workdir = run_.config, run_.workdir
  labels = np.asarray(out.pop("labels"))
  q = out.pop("soft_assignment", None)
  n_clusters = out.pop("n_clusters")
  own_times = out.pop("times_s", {})
  workdir.save_assignments(labels, q)
  scores = run_.score(labels)
  sizes = np.bincount(labels, minlength=n_clusters).tolist()
  mean_max_q = None if q is None else float(np.mean(np.max(q, axis=1)))
  collapse = {**diagnostics.collapse_flags(sizes, config.collapse_fraction,
                                           mean_max_q),
              "flagged_updates": len(run_.collapsed_at),
              "first_flagged_iteration": (run_.collapsed_at or [None])[0]}
  share = 1.0 / stack.size
  results = {
      "method": config.method, "dataset": dataset.name, "seed": config.seed,
      "n_samples": dataset.num_samples, "dim": dataset.dim,
      "n_clusters": n_clusters, **scores, "nmi_average": metrics.NMI_AVERAGE,
      DATA_FINGERPRINT: dataset.fingerprint,
      "cluster_sizes": sizes, "collapse": collapse,
      **({} if mean_max_q is None else {"mean_max_q": mean_max_q}),
      **({} if dataset.y is None else {
          "per_class_recall": metrics.per_class_recall(dataset.y, labels)}),
      **out,
      "stack": {"size": stack.size,
                "members": [m.name for m in stack.members],
                "member": run_.member.name,
                "point": dict(run_.member.point)},
      "times_s": _times(stack, own_times, elapsed, share),
      "config": config.to_dict(), "environment": env,
  }
  run_.log({"stage": "final", **scores, "cluster_sizes": sizes})
  workdir.write_results(results)
  if after_member is not None and workdir.primary:
    _after(after_member, workdir.path, dataset, run_.tensorboard)
  run_.close()
  return results


def _times(stack: Stack, own: dict, elapsed: float, share: float) -> dict:
  """A member's times_s: its share of each stage and of the wall time,
  with the seconds earlier processes spent (Stack.carried_over), also given
  apart as `carried_over`."""
  earlier = sum(stack.carried_over.values())
  return {**{k: v * share for k, v in stack.stage_totals().items()}, **own,
          **({"carried_over": earlier * share} if earlier else {}),
          "total": (elapsed + earlier) * share}


def _summary(config, members, folders, top: Workdir, dataset, memory,
             groups, elapsed: float) -> dict:
  """The workdir's results.json over all members (those finished before
  included): each member's scores, mean ± sd, and one row per grid point."""
  results = [read_json(os.path.join(f, RESULTS)) for f in folders]
  rows = [{"member": m.name, "seed": m.seed, "point": dict(m.point),
           "workdir": os.path.relpath(f, top.path),
           **{k: r.get(k) for k in members_lib.SCORES},
           "n_clusters": r.get("n_clusters"),
           "time_s": r["times_s"]["total"],
           **{k: r[k] for k in ("stop_reason", "autoencoder_untrained")
              if k in r}}
          for m, f, r in zip(members, folders, results)]
  summary = {
      "kind": "stack", "method": config.method,
      "dataset": dataset.name, "n_samples": dataset.num_samples,
      "seeds": sorted({m.seed for m in members}), "members": rows,
      **members_lib.summarize(results),
      "sd_is": "sample standard deviation (n - 1) over the members",
      **({"grid": members_lib.by_point(members, results)}
         if config.get("grid") else
         {"per_seed": {str(row["seed"]): row for row in rows}}),
      "groups": [[members[i].name for i in g] for g in groups],
      "memory": memory, "times_s": {"total": elapsed},
      "config": config.to_dict()}
  if config.get("ensemble", "none") != "none":
    summary["consensus"] = ensemble.build(
        folders, [m.name for m in members], results[0]["n_clusters"],
        dataset.y, top.path if top.primary else None,
        ensemble.combine_of(config))
  if top.primary:
    write_json_atomic(top.file(RESULTS), summary)
  return summary
