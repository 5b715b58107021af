"""The members of a run: seeds crossed with grid points of numeric
hyperparameters. A run is a stack of members trained as one program; a
single seed is a stack of one.

  --config.seed=0                        1 member:  WORKDIR/
  --config.seeds=0,1,2                   3 members: WORKDIR/seed0/, ...
  --config.seeds=0,1 --config.grid='{"idec.gamma": [0.1, 1.0]}'
                                         4 members: WORKDIR/idec.gamma=0.1/seed0/

Only hyperparameters that change no array shape and no program structure can
be stacked (STACKABLE); the others (dims, batch size, method, data) are
separate runs: `experiments.sweep`.
"""

from __future__ import annotations

import dataclasses
import glob
import itertools
import json
import os
import re
import statistics
from typing import Any, Sequence

import ml_collections
import numpy as np

from dec_jax.core import metrics
from dec_jax.errors import DecJaxError
from dec_jax.runner.workdir import DATA_FINGERPRINT, RESULTS, read_json

# Numeric hyperparameters a stack's members may differ in. Each is read from
# the member's hp inside the compiled steps (optim.from_hyper, the losses),
# or by the host's stopping rule (dec.tol, dec.patience).
STACKABLE = ("pretrain.learning_rate", "pretrain.momentum",
             "dec.learning_rate", "dec.momentum", "dec.tol", "dec.patience",
             "dec.alpha", "dec.reseed_fraction", "idec.gamma")
COUNTS = ("dec.patience",)  # stackable keys whose values are integers
SCORES = metrics.SCORES
# Seeds feed jax.random.key, NumPy and scikit-learn: uint32 values.
MAX_SEED = 2**32 - 1


@dataclasses.dataclass(frozen=True)
class Member:
  """One seed at one grid point (`point`: ((dotted key, value), ...))."""
  seed: int
  point: tuple[tuple[str, Any], ...] = ()

  @property
  def cell(self) -> str:
    """The grid point's folder name ('' without a grid)."""
    return folder_name(self.point)

  @property
  def name(self) -> str:
    """How logs and errors name it: 'seed 3' or 'seed 3 at dec.alpha=2'."""
    return f"seed {self.seed}" + (f" at {self.cell}" if self.point else "")


def folder_name(pairs: Sequence[tuple[str, Any]]) -> str:
  """'key=value' pairs joined by '__', each value cut to folder-safe
  characters: a grid point's or a sweep cell's folder."""
  text = lambda v: re.sub(r"[^A-Za-z0-9._+-]+", "-", str(v)).strip("-")
  return "__".join(f"{k}={text(v)}" for k, v in pairs)


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
    if isinstance(p, (float, bool)) or not 0 <= seed <= MAX_SEED:
      raise DecJaxError(f"seeds must be integers between 0 and {MAX_SEED}, "
                        f"got {p!r}.")
    seeds.append(seed)
  if len(set(seeds)) != len(seeds):
    raise DecJaxError(f"seeds must be distinct, got {value!r}.")
  return tuple(seeds)


def parse_grid(value: Any) -> list[tuple[str, list[float | int]]]:
  """config.grid ('' or a JSON object of STACKABLE keys -> value lists)."""
  if value in (None, "", {}):
    return []
  if isinstance(value, str):
    try:
      value = json.loads(value)
    except json.JSONDecodeError as e:
      raise DecJaxError(f"grid must be a JSON object like "
                        f"'{{\"idec.gamma\": [0.1, 1.0]}}', got {value!r} "
                        f"({e}).") from None
  if not isinstance(value, dict):
    raise DecJaxError(f"grid must be a JSON object, got {value!r}.")
  axes = []
  for key, values in value.items():
    if key not in STACKABLE:
      raise DecJaxError(
          f"grid key {key!r} cannot be stacked; stackable: {STACKABLE}. "
          "Settings that change shapes or the program (dims, batch sizes, "
          "method, dataset, ...) are separate runs: python -m "
          "experiments.sweep.")
    if (not isinstance(values, list) or not values or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool)
        for v in values) or len(set(values)) != len(values)):
      raise DecJaxError(f"grid key {key!r} needs a list of distinct numbers, "
                        f"got {values!r}.")
    if key in COUNTS:
      if not all(float(v).is_integer() and v >= 0 for v in values):
        raise DecJaxError(f"grid key {key!r} needs integers >= 0, got "
                          f"{values!r}.")
      axes.append((key, [int(v) for v in values]))
    else:
      axes.append((key, [float(v) for v in values]))
  return axes


def from_config(config: ml_collections.ConfigDict) -> list[Member]:
  """The members a config asks for: its seeds (or its seed) x its grid."""
  seeds = parse_seeds(config.get("seeds", "")) or (int(config.seed),)
  axes = parse_grid(config.get("grid", ""))
  points = [tuple(zip([k for k, _ in axes], combo))
            for combo in itertools.product(*(v for _, v in axes))]
  return [Member(seed, point) for point in points for seed in seeds]


def is_stack_layout(config: ml_collections.ConfigDict) -> bool:
  """Whether members get folders of their own (seeds or grid given): else
  the one member's files are the workdir's own, as a single run's."""
  return bool(parse_seeds(config.get("seeds", ""))
              or parse_grid(config.get("grid", "")))


# Fields of a member's config that cannot change its result: how the stack
# around it runs, what is drawn and whether earlier work is kept (not the
# ensemble: consensus_refine changes the members).
NOT_RESULT_SETTINGS = ("overwrite", "resume", "report", "tensorboard",
                       "seeds_mode")


def result_settings(config: dict, data_fingerprint: Any) -> dict:
  """A member's config (as a dict) without NOT_RESULT_SETTINGS, plus the
  data's fingerprint: what its results and partial checkpoints are made of
  (compared without pretrained.CADENCE)."""
  settings = json.loads(json.dumps(config, default=str))
  for key in NOT_RESULT_SETTINGS:
    settings.pop(key, None)
  return {**settings, DATA_FINGERPRINT: data_fingerprint}


def member_results(roots: Sequence[str]) -> list[tuple[str, dict]]:
  """(folder, results.json) of every run below the roots, in path order:
  members only, not the stack summaries above them (`kind` "stack"; older
  multi-seed runs wrote "multiseed")."""
  paths = sorted(p for root in roots for p in glob.glob(
      os.path.join(root, "**", RESULTS), recursive=True))
  found = [(os.path.dirname(p), read_json(p)) for p in paths]
  return [(folder, r) for folder, r in found
          if r.get("kind") not in ("stack", "multiseed")]


def member_dir(workdir: str, member: Member, stack_layout: bool) -> str:
  """WORKDIR, WORKDIR/seed<s> or WORKDIR/<cell>/seed<s>."""
  if not stack_layout:
    return workdir
  return os.path.join(workdir, member.cell, f"seed{member.seed}")


def member_config(config: ml_collections.ConfigDict,
                  member: Member) -> ml_collections.ConfigDict:
  """The config of one member: its seed and grid values set, no seeds/grid."""
  member_cfg = ml_collections.ConfigDict({**config.to_dict(),
                                          "seed": member.seed, "seeds": "",
                                          "grid": ""})
  for key, value in member.point:
    section, field = key.split(".")
    member_cfg[section][field] = value
  return member_cfg


def hyper(configs: Sequence[ml_collections.ConfigDict], section: str,
          fields: Sequence[str]) -> dict[str, np.ndarray]:
  """The members' values of `section.field` as [S] float32 arrays: the hp
  the stacked programs read."""
  return {f: np.asarray([c[section][f] for c in configs], np.float32)
          for f in fields}


# ---------------------------------------------------------------- summaries


def mean_sd(values: list[float]) -> dict:
  return {"mean": statistics.mean(values),
          "sd": statistics.stdev(values) if len(values) > 1 else 0.0}


def summarize(results: list[dict]) -> dict:
  """Mean and sample sd (n - 1) of each score over the results having it."""
  out = {}
  for key in SCORES:
    values = [r[key] for r in results if r.get(key) is not None]
    if values:
      out[key] = mean_sd(values)
  out["time_s"] = mean_sd([r["times_s"]["total"] for r in results])
  return out


def by_point(members: Sequence[Member],
             results: Sequence[dict]) -> list[dict]:
  """One row per grid point: its values and mean ± sd over its seeds."""
  rows: dict[tuple, list[dict]] = {}
  for member, result in zip(members, results):
    rows.setdefault(member.point, []).append(result)
  return [{"point": dict(point), "cell": Member(0, point).cell,
           "seeds": [r["seed"] for r in group], **summarize(group)}
          for point, group in rows.items()]


def describe(results: dict) -> str:
  """One line: method, data, seeds and mean ± sd of each score."""
  scores = " ".join(
      f"{k.upper()}={results[k]['mean']:.4f}±{results[k]['sd']:.4f}"
      for k in SCORES if k in results)
  return (f"{results['method']} on {results['dataset']} "
          f"(n={results['n_samples']}, {len(results['members'])} members, "
          f"seeds {results['seeds']}): {scores} in "
          f"{results['times_s']['total']:.1f}s")
