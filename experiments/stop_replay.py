r"""What DEC's stopping rule with a patience would have given on finished runs.

  python -m experiments.stop_replay \
      --runs=runs/dec_da_mnist_test,runs/dec_da_fashion_test

Replays the logged target updates of every dec / idec member below the
folders (metrics.jsonl: iteration, label change, and the ACC scored when
the data had labels) under its dec.tol and each --patience, with the
loop's own rule (dec_loop.replay_stop), and prints one row per run: the final iterate's
ACC (mean ± sd over its members) and, for each patience, the ACC of the
iterate it would have stopped at and the members' iterations there. The
labels are only read to score: the rule never sees them, so a patience can
be chosen on some data sets' logs and reported on others'. A run that
already stopped by a patience cannot be replayed with a longer one, nor a
run whose result is a second DEC stage (consensus_refine): "n/a".
"""

from __future__ import annotations

import collections
import os
import re
from typing import Sequence

from absl import app
from absl import flags

from dec_jax.apps.sweep import format_mean_sd
from dec_jax.methods.dec import REFINE
from dec_jax.runner.workdir import read_metrics
from dec_jax.train.dec_loop import replay_stop
from dec_jax.runner.members import member_results

_RUNS = flags.DEFINE_list("runs", None, "Folders holding the runs.",
                          required=True)
_PATIENCE = flags.DEFINE_list("patience", ["5", "10", "20", "40"],
                              "The patiences (target updates) to replay.")


def member_updates(workdir: str) -> list[dict]:
  """A member's target updates (dec and idec log them as stage `dec`) with
  an ACC, in order; the last record of an iteration wins (a run resumed
  before session 18's code logged again from its checkpoint)."""
  by_iteration = {r["iteration"]: r for r in read_metrics(workdir)
                  if r.get("stage") == "dec" and "label_change" in r
                  and r.get("acc") is not None}
  return [by_iteration[i] for i in sorted(by_iteration)]


def replay(result: dict, updates: Sequence[dict],
           patience: int) -> dict | None:
  """The update at which `patience` stops this member (None: not known)."""
  cfg = result["config"]["dec"]
  own = cfg.get("patience", 0)
  refined = result["config"].get("ensemble") == REFINE
  if not updates or refined or (own and patience > own):
    return None
  index = replay_stop([(u["iteration"], u["label_change"]) for u in updates],
                      cfg["tol"], patience, cfg["maxiter"])
  return updates[index]


def _run_of(workdir: str) -> str:
  """The run a member's folder belongs to: a seed folder's parent (the
  stack, or its grid cell), else the folder itself."""
  if re.fullmatch(r"seed\d+", os.path.basename(workdir)):
    return os.path.dirname(workdir)
  return workdir


def rows(roots: Sequence[str], patiences: Sequence[int]) -> list[dict]:
  """One row per run (its members grouped), in path order."""
  runs = collections.defaultdict(list)
  for workdir, result in member_results(list(roots)):
    if result.get("method") in ("dec", "idec") and "acc" in result:
      runs[_run_of(workdir)].append((result, member_updates(workdir)))
  table = []
  for home, members in runs.items():
    row = {"run": home, "final": [r["acc"] for r, _ in members],
           "stops": {}}
    for p in patiences:
      stops = [replay(r, u, p) for r, u in members]
      row["stops"][p] = None if None in stops else stops
    table.append(row)
  return table


def table(rows_: Sequence[dict], patiences: Sequence[int]) -> str:
  lines = ["| run | final ACC | " + " | ".join(
      f"patience {p}: ACC (iterations)" for p in patiences) + " |",
           "|---|---|" + "---|" * len(patiences)]
  for row in rows_:
    cells = []
    for p in patiences:
      stops = row["stops"][p]
      cells.append("n/a" if stops is None else
                   f"{format_mean_sd([s['acc'] for s in stops])} "
                   f"({', '.join(str(s['iteration']) for s in stops)})")
    lines.append(f"| {row['run']} | {format_mean_sd(row['final'])} | "
                 + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  roots = _RUNS.value
  try:
    patiences = [int(p) for p in _PATIENCE.value]
  except ValueError:
    raise app.UsageError(f"--patience takes integers, got "
                         f"{','.join(_PATIENCE.value)}.") from None
  found = rows(roots, patiences)
  if not found:
    raise app.UsageError(f"No finished dec or idec run with scores under "
                         f"{roots}.")
  print(table(found, patiences))


if __name__ == "__main__":
  app.run(main)
