"""Sweeps: a grid of config overrides, each cell over several seeds;
resumable. The command line is experiments/sweep.py, which documents the
grid syntax and the folder layout."""

from __future__ import annotations

import ast
import csv
import itertools
import json
import os
import re
import shutil
import statistics
from typing import Any, Callable, Optional

import ml_collections

from dec_jax import multiseed
from dec_jax import run as run_lib
from dec_jax.errors import DecJaxError
from dec_jax.workdir import CHECKPOINTS, RESULTS, read_json, write_bytes_atomic

CSV = "sweep.csv"
TABLE = "sweep.md"
SCORES = ("acc", "nmi", "ari")


# ------------------------------------------------------------------- grid


def _split_top_level(text: str, sep: str) -> list[str]:
  """Splits at `sep` outside parentheses / brackets / quotes."""
  parts, depth, quote, current = [], 0, None, []
  for ch in text:
    if quote:
      quote = None if ch == quote else quote
    elif ch in "'\"":
      quote = ch
    elif ch in "([{":
      depth += 1
    elif ch in ")]}":
      depth -= 1
    if ch == sep and depth == 0 and not quote:
      parts.append("".join(current))
      current = []
    else:
      current.append(ch)
  parts.append("".join(current))
  return parts


def _value(text: str) -> Any:
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def parse_grid(text: str) -> list[tuple[str, list[Any]]]:
  """'a=1,2;b.c=x,y' -> [('a', [1, 2]), ('b.c', ['x', 'y'])]."""
  axes = []
  for axis in _split_top_level(text.strip(), ";"):
    axis = axis.strip()
    if not axis:
      continue
    key, eq, values = axis.partition("=")
    key = run_lib.CONFIG_SHORTHANDS.get(key.strip(), key.strip())
    values = [v.strip() for v in _split_top_level(values, ",")]
    if not eq or not key or not all(values):
      raise DecJaxError(f"grid axis {axis!r} must look like "
                        "'key=value1,value2' (axes separated by ';').")
    if key in ("seed", "seeds"):
      raise DecJaxError("put seeds in --seeds, not in the grid.")
    if key in (k for k, _ in axes):
      raise DecJaxError(f"grid key {key!r} appears twice.")
    axes.append((key, [_value(v) for v in values]))
  return axes


def cell_name(overrides: dict[str, Any]) -> str:
  """A folder name for the cell: key=value pairs joined by '__'."""
  if not overrides:
    return "base"
  text = lambda v: re.sub(r"[^A-Za-z0-9._+-]+", "-", str(v)).strip("-")
  return "__".join(f"{k}={text(v)}" for k, v in overrides.items())


def cells(axes: list[tuple[str, list[Any]]]) -> list[tuple[str, dict]]:
  """Every combination of one value per axis, named; names must differ."""
  keys = [k for k, _ in axes]
  out = [(cell_name(dict(zip(keys, combo))), dict(zip(keys, combo)))
         for combo in itertools.product(*(v for _, v in axes))]
  names = [n for n, _ in out]
  if len(set(names)) != len(names):
    raise DecJaxError(f"grid values give clashing cell names: {names}.")
  return out


def apply_overrides(config: ml_collections.ConfigDict,
                    overrides: dict[str, Any]) -> ml_collections.ConfigDict:
  """A copy of config with the dotted keys set; unknown keys and wrong types
  are DecJaxErrors."""
  config = ml_collections.ConfigDict(config.to_dict())
  for key, value in overrides.items():
    *path, last = key.split(".")
    node = config
    for part in path:
      if part not in node or not isinstance(node[part],
                                            ml_collections.ConfigDict):
        raise DecJaxError(f"grid key {key!r}: the config has no section "
                          f"{part!r}.")
      node = node[part]
    if last not in node:
      raise DecJaxError(f"grid key {key!r} is not a config field; fields "
                        f"there: {sorted(node.keys())}.")
    if isinstance(node[last], tuple) and isinstance(value, list):
      value = tuple(value)
    try:
      node[last] = value
    except (TypeError, ValueError) as e:
      raise DecJaxError(f"grid key {key!r} = {value!r}: {e}") from None
  return config


# ------------------------------------------------------------------ sweep


def _share_autoencoders(config, cell_dir: str, seeds, earlier: list) -> None:
  """Copies into cell_dir/seed<s>/ the autoencoder an earlier cell trained
  with the same pretraining settings, where this seed has none yet."""
  if config.method == "kmeans" or config.pretrained_workdir:
    return
  for seed in seeds:
    mine = multiseed.seed_dir(cell_dir, seed)
    target = os.path.join(mine, CHECKPOINTS, run_lib.AUTOENCODER)
    if os.path.exists(target + ".json"):
      continue
    wanted = run_lib.pretraining_fingerprint(
        multiseed.seed_config(config, seed), ())
    for other_config, other_dir in earlier:
      if other_config.method == "kmeans" or run_lib.pretraining_fingerprint(
          multiseed.seed_config(other_config, seed), ()) != wanted:
        continue
      source = os.path.join(multiseed.seed_dir(other_dir, seed), CHECKPOINTS,
                            run_lib.AUTOENCODER)
      if os.path.isdir(source) and os.path.exists(source + ".json"):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
        shutil.copyfile(source + ".json", target + ".json")  # last: valid
        break


def _finished(cell_dir: str, seeds) -> bool:
  return all(os.path.exists(os.path.join(multiseed.seed_dir(cell_dir, s),
                                         RESULTS)) for s in seeds)


def run_sweep(config: ml_collections.ConfigDict, workdir: str, grid: str,
              seeds, *, share_pretraining: bool = True,
              log_fn: Optional[Callable[[dict], Any]] = None) -> list[dict]:
  """Runs every cell x seed not finished yet; writes sweep.csv / sweep.md;
  returns the rows of sweep.csv."""
  axes = parse_grid(grid)
  seeds = multiseed.parse_seeds(seeds) or multiseed.parse_seeds(
      config.seeds) or (config.seed,)
  plan = [(name, overrides, apply_overrides(config, overrides))
          for name, overrides in cells(axes)]
  for _, _, cell_config in plan:  # every cell's settings, before any run
    multiseed.validate(multiseed.seed_config(cell_config, seeds[0]))
  log = log_fn or (lambda record: None)
  earlier = []
  for name, overrides, cell_config in plan:
    cell_dir = os.path.join(workdir, name)
    cell_config = ml_collections.ConfigDict(
        {**cell_config.to_dict(), "seeds": ",".join(map(str, seeds))})
    summary = os.path.join(cell_dir, RESULTS)
    if _finished(cell_dir, seeds) and os.path.exists(summary):
      log({"stage": "sweep", "cell": name, "skipped": "finished"})
    else:
      if os.path.exists(summary):
        os.remove(summary)  # a seed is missing: the summary is stale
      if share_pretraining:
        _share_autoencoders(cell_config, cell_dir, seeds, earlier)
      log({"stage": "sweep", "cell": name, "overrides": overrides})
      result = multiseed.run_seeds(cell_config, cell_dir, log_fn=log_fn)
      log({"stage": "sweep", "cell": name, "done": multiseed.describe(result)})
    earlier.append((cell_config, cell_dir))
    rows = collect(workdir, plan, seeds)
    write_tables(workdir, rows, [k for k, _ in axes])
  return rows


def collect(workdir: str, plan, seeds) -> list[dict]:
  """One row per finished run of the plan, read from its results.json."""
  rows = []
  for name, overrides, _ in plan:
    for seed in seeds:
      path = os.path.join(multiseed.seed_dir(os.path.join(workdir, name),
                                             seed), RESULTS)
      if not os.path.exists(path):
        continue
      r = read_json(path)
      rows.append({"cell": name, "seed": seed,
                   **{k: json.dumps(v) if not isinstance(v, (int, float, str))
                      else v for k, v in overrides.items()},
                   "method": r["method"], "dataset": r["dataset"],
                   "n_clusters": r.get("n_clusters"),
                   **{k: r.get(k) for k in SCORES},
                   "time_s": round(r["times_s"]["total"], 3),
                   "pretrain_reused": bool(r.get("pretrain_reused", False)),
                   "workdir": os.path.relpath(os.path.dirname(path), workdir)})
  return rows


def write_tables(workdir: str, rows: list[dict], keys: list[str]) -> None:
  """DIR/sweep.csv (the rows) and DIR/sweep.md (mean ± sd per cell)."""
  if not rows:
    return
  fields = list(dict.fromkeys(k for row in rows for k in row))

  def write_csv(f):
    text = _csv_text(rows, fields)
    f.write(text.encode())
  write_bytes_atomic(os.path.join(workdir, CSV), write_csv)
  lines = ["| cell | " + " | ".join(keys + ["seeds", "ACC", "NMI", "ARI",
                                              "wall time / run",
                                              "cell total"]) + " |",
           "|" + "---|" * (len(keys) + 7)]
  for cell in dict.fromkeys(r["cell"] for r in rows):
    runs = [r for r in rows if r["cell"] == cell]
    scores = []
    for k in SCORES:
      values = [r[k] for r in runs if r[k] is not None]
      # pylint: disable-next=protected-access
      scores.append(format_mean_sd(values) if values else "–")
    wall = statistics.mean(r["time_s"] for r in runs)
    summary = os.path.join(workdir, cell, RESULTS)
    total = (_duration(read_json(summary)["times_s"]["total"])
             if os.path.exists(summary) else "–")
    lines.append(f"| {cell} | " + " | ".join(
        [str(runs[0].get(k, "")) for k in keys]
        + [str(len(runs))] + scores + [_duration(wall), total]) + " |")
  text = "\n".join(lines) + "\n"
  write_bytes_atomic(os.path.join(workdir, TABLE),
                     lambda f: f.write(text.encode()))


def _csv_text(rows: list[dict], fields: list[str]) -> str:
  import io  # pylint: disable=g-import-not-at-top
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=fields)
  writer.writeheader()
  writer.writerows(rows)
  return buffer.getvalue()


def format_mean_sd(values: list[float]) -> str:
  """'0.912 ± 0.020' (sample sd), or the one value."""
  if len(values) == 1:
    return f"{values[0]:.3f}"
  return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _duration(seconds: float) -> str:
  return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
