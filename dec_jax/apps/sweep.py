"""Sweeps: a grid of config overrides, each cell over several seeds;
resumable. The command line is experiments/sweep.py, which documents the
grid syntax and the folder layout.

Numeric axes that change no shape (members.STACKABLE: learning rates,
momentum, dec.tol, dec.alpha, idec.gamma, ...) are not separate runs: they
become the `grid` of every cell, whose members (seeds x those values) train
as one stack. Only the other axes (method, dims, batch sizes, data, ...)
make cells run one after the other."""

from __future__ import annotations

import ast
import csv
import itertools
import json
import os
import shutil
import statistics
from typing import Any, Callable, Optional

import ml_collections

from dec_jax.apps import report
from dec_jax.runner import checks
from dec_jax.runner import members as members_lib
from dec_jax.runner import pretrained
from dec_jax.runner import run as run_lib
from dec_jax import methods
from dec_jax.errors import DecJaxError, require
from dec_jax.runner.workdir import CHECKPOINTS, RESULTS, read_json, write_bytes_atomic

CSV = "sweep.csv"
TABLE = "sweep.md"
SCORES = members_lib.SCORES


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
    if key in ("seed", "seeds", "grid"):
      raise DecJaxError("put seeds in --seeds, not in the grid.")
    if key in (k for k, _ in axes):
      raise DecJaxError(f"grid key {key!r} appears twice.")
    axes.append((key, [_value(v) for v in values]))
  return axes


def cell_name(overrides: dict[str, Any]) -> str:
  """A folder name for the cell: key=value pairs joined by '__'."""
  return members_lib.folder_name(overrides.items()) if overrides else "base"


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


def split_axes(axes: list[tuple[str, list[Any]]]
               ) -> tuple[list[tuple[str, list[Any]]], dict[str, list]]:
  """(axes run as separate cells, stackable axes as a config.grid dict)."""
  stackable = {k: v for k, v in axes if k in members_lib.STACKABLE and all(
      isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)}
  return [(k, v) for k, v in axes if k not in stackable], stackable


def _cell_members(config) -> list[tuple[members_lib.Member, str]]:
  """(member, its folder relative to the cell) of a cell's config."""
  layout = members_lib.is_stack_layout(config)
  return [(m, members_lib.member_dir("", m, layout))
          for m in members_lib.from_config(config)]


def _pretraining_key(config, seed: int) -> str:
  """The pretraining settings of a cell's seed (data and dims aside)."""
  config = ml_collections.ConfigDict({**config.to_dict(), "seed": seed})
  return json.dumps(pretrained.fingerprint(config, (), ""), sort_keys=True)


def _share_autoencoders(config, cell_dir: str, earlier: list) -> None:
  """Copies into cell_dir's member folders the autoencoder an earlier cell
  trained with the same pretraining settings, where a member has none."""
  if not methods.get(config.method).needs_autoencoder or \
      config.pretrained_workdir:
    return
  for member, folder in _cell_members(config):
    target = os.path.join(cell_dir, folder, CHECKPOINTS, pretrained.AUTOENCODER)
    if os.path.exists(target + ".json"):
      continue
    wanted = _pretraining_key(members_lib.member_config(config, member),
                              member.seed)
    for other_config, other_dir in earlier:
      if not methods.get(other_config.method).needs_autoencoder:
        continue
      for other, other_folder in _cell_members(other_config):
        source = os.path.join(other_dir, other_folder, CHECKPOINTS,
                              pretrained.AUTOENCODER)
        if (other.seed == member.seed and os.path.exists(source + ".json")
            and _pretraining_key(members_lib.member_config(other_config,
                                                           other),
                                 other.seed) == wanted):
          os.makedirs(os.path.dirname(target), exist_ok=True)
          shutil.rmtree(target, ignore_errors=True)
          shutil.copytree(source, target)
          shutil.copyfile(source + ".json", target + ".json")  # last: valid
          break
      else:
        continue
      break


def _finished(cell_dir: str, config) -> bool:
  """Whether the cell ran to its end with this config (then it is skipped;
  `overwrite` reruns it). A cell finished with other settings is refused,
  as the runner refuses a finished member made otherwise."""
  summary = os.path.join(cell_dir, RESULTS)
  if config.overwrite or not os.path.exists(summary) or not all(
      os.path.exists(os.path.join(cell_dir, folder, RESULTS))
      for _, folder in _cell_members(config)):
    return False
  unread = "not compared"  # the data: not loaded for a finished cell
  reason = run_lib.why_made_otherwise(read_json(summary).get("config", {}),
                                      unread, config, unread)
  require(reason is None, f"sweep cell {cell_dir} finished with another "
          f"config: {reason}. Pass --config.overwrite=True to rerun it, or "
          "choose another workdir.")
  return True


def _check_data_fits(configs: list[ml_collections.ConfigDict]) -> None:
  """Every cell's checks that need its data (k, batch sizes, image shapes),
  before the first cell runs: a sweep does not fail hours in. Each distinct
  data set is loaded once, one at a time."""
  by_data: dict[str, list] = {}
  for config in configs:
    key = json.dumps([config.get(f) for f in checks.DATA_FIELDS],
                     default=str)
    by_data.setdefault(key, []).append(config)
  for same_data in by_data.values():
    dataset = checks.load_data(same_data[0],
                               keep_uint8=same_data[0].keep_uint8)
    for config in same_data:
      run_lib.check_data_fits(config, dataset)


def run_sweep(config: ml_collections.ConfigDict, workdir: str, grid: str,
              seeds, *, share_pretraining: bool = True,
              log_fn: Optional[Callable[[dict], Any]] = None) -> list[dict]:
  """Runs every cell not finished yet (its members: seeds x the stackable
  axes, one stack); writes sweep.csv / sweep.md; returns sweep.csv's rows."""
  require(str(workdir).strip(), "the sweep's workdir is empty: name a folder "
          "for its cells (--workdir=runs/my_sweep).")
  require(not members_lib.parse_grid(config.get("grid", "")),
          f"the sweep's axes come from --grid; --config.grid={config.grid} "
          "would be dropped: give them in --grid (e.g. "
          "--grid='dec.alpha=1.0,2.0'), where numeric ones are stacked.")
  separate, stackable = split_axes(parse_grid(grid))
  seeds = members_lib.parse_seeds(seeds) or members_lib.parse_seeds(
      config.seeds) or (config.seed,)
  plan = []
  for name, overrides in cells(separate):
    cell_config = apply_overrides(config, overrides)
    cell_config.seeds = ",".join(map(str, seeds))
    cell_config.grid = json.dumps(stackable) if stackable else ""
    run_lib.validate(cell_config)  # every cell's settings, before any run
    plan.append((name, overrides, cell_config))
  _check_data_fits([cell_config for _, _, cell_config in plan])
  log = log_fn or (lambda record: None)
  earlier = []
  for name, overrides, cell_config in plan:
    cell_dir = os.path.join(workdir, name)
    if _finished(cell_dir, cell_config):
      log({"stage": "sweep", "cell": name, "skipped": "finished"})
    else:
      if share_pretraining:
        _share_autoencoders(cell_config, cell_dir, earlier)
      log({"stage": "sweep", "cell": name, "overrides": overrides,
           "stacked": stackable})
      result = run_lib.run(cell_config, cell_dir,
                           after_member=report.hook(cell_config))
      log({"stage": "sweep", "cell": name,
           "done": members_lib.describe(result)})
    earlier.append((cell_config, cell_dir))
    rows = collect(workdir, plan)
    write_tables(workdir, rows, [k for k, _ in separate] + list(stackable))
  return rows


def collect(workdir: str, plan) -> list[dict]:
  """One row per finished member of the plan, read from its results.json."""
  rows = []
  for name, overrides, cell_config in plan:
    for member, folder in _cell_members(cell_config):
      path = os.path.join(workdir, name, folder, RESULTS)
      if not os.path.exists(path):
        continue
      r = read_json(path)
      values = {**overrides, **dict(member.point)}
      rows.append({"cell": os.path.join(name, member.cell).rstrip("/"),
                   "seed": member.seed,
                   **{k: json.dumps(v) if not isinstance(v, (int, float, str))
                      else v for k, v in values.items()},
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
      scores.append(format_mean_sd(values) if values else "–")
    wall = statistics.mean(r["time_s"] for r in runs)
    summary = os.path.join(workdir, cell.split(os.sep)[0], RESULTS)
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
