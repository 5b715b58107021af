r"""ACC against pretraining cost: AE + k-means and DEC, per pretraining length.

  python -m experiments.time_to_accuracy --roots=runs/ep10,runs/ep25,runs/ep50 \
      --plot=docs/time_to_accuracy.png

Reads the results.json of --methods (default dec; idec and n2d too) under
the roots, groups them by (data and split, method, pretraining recipe,
clustering stage, pretraining epochs) and prints a markdown table: seeds,
AE + k-means ACC (the run's starting point, `init_metrics`; "–" for n2d,
which has none), final ACC, NMI, the median pretraining and whole-run wall
times (a run on a reused autoencoder is charged its source's pretraining).
With --plot, draws both ACCs against the epochs and against the median wall
time of a run, one curve per recipe and clustering stage.
"""

from __future__ import annotations

import collections
import os
import statistics
from typing import Sequence

from absl import app
from absl import flags

from dec_jax import methods as dec_methods
from dec_jax.apps import plots
from dec_jax.apps.sweep import format_mean_sd
from dec_jax.runner.pretrained import PRETRAIN_SECONDS
from dec_jax.runner.workdir import RESULTS
from dec_jax.runner.workdir import read_json
from experiments.summarize import clustering
from experiments.summarize import data_label
from experiments.summarize import find_results
from experiments.summarize import pretraining

_ROOTS = flags.DEFINE_list("roots", None, "Folders holding the runs.",
                           required=True)
_PLOT = flags.DEFINE_string("plot", "", "PNG to draw the curves into.")
_METHODS = flags.DEFINE_list("methods", ["dec"], "The methods to include.")


def pretrain_epochs(result: dict) -> int:
  """The epochs of the autoencoder the run used (its own or a reused one)."""
  reused = (result.get("pretrained_from") or {}).get("settings") or {}
  cfg = reused.get("pretrain") or result["config"]["pretrain"]
  return int(cfg["epochs"])


def charged_seconds(result: dict) -> tuple[float, float]:
  """(pretraining, whole run) wall times behind the run: its own, or for a
  reused autoencoder (`pretrained_workdir`) with the source run's
  pretraining added, as its description or results.json records it."""
  times = result["times_s"]
  own = times.get("pretrain", 0.0)
  if own:
    return own, times["total"]
  origin = result.get("pretrained_from") or {}
  reused = origin.get(PRETRAIN_SECONDS)
  path = origin.get("workdir") and os.path.join(origin["workdir"], RESULTS)
  if reused is None and path and os.path.exists(path):
    reused = read_json(path)["times_s"].get("pretrain", 0.0)
  reused = reused or 0.0
  return reused, times["total"] + reused


def curve_rows(results: Sequence[dict],
               methods: Sequence[str] = ("dec",)) -> list[dict]:
  """One row per (data and split, method, pretraining recipe, clustering
  stage, epochs), sorted; runs without labels (no ACC) are left out."""
  groups = collections.defaultdict(list)
  for r in results:
    if ("acc" in r and r["method"] in methods
        and dec_methods.get(r["method"]).needs_autoencoder):
      groups[(data_label(r), r["method"], pretraining(r, epochs=False),
              clustering(r), pretrain_epochs(r))].append(r)
  rows = []
  for (dataset, method, recipe, stage, epochs), runs in sorted(
      groups.items()):
    charged = [charged_seconds(r) for r in runs]
    rows.append({
        "dataset": dataset, "method": method, "recipe": recipe,
        "clustering": stage, "epochs": epochs,
        "seeds": sorted(r["seed"] for r in runs),
        "init_acc": [r["init_metrics"]["acc"] for r in runs
                     if "acc" in r.get("init_metrics", {})],
        "acc": [r["acc"] for r in runs], "nmi": [r["nmi"] for r in runs],
        "pretrain_s": statistics.median(p for p, _ in charged),
        "total_s": statistics.median(t for _, t in charged)})
  return rows


def _mean_sd_or_dash(values: Sequence[float]) -> str:
  return format_mean_sd(values) if values else "–"


def table(rows: Sequence[dict]) -> str:
  lines = ["| data | method | pretraining | clustering stage | epochs | "
           "seeds | AE + k-means ACC | ACC | NMI | pretraining / run | run |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
  for row in rows:
    lines.append(
        f"| {row['dataset']} | {row['method']} | {row['recipe']} | "
        f"{row['clustering']} | {row['epochs']} | "
        f"{len(row['seeds'])} | {_mean_sd_or_dash(row['init_acc'])} | "
        f"{format_mean_sd(row['acc'])} | {format_mean_sd(row['nmi'])} | "
        f"{row['pretrain_s'] / 60:.1f} min | {row['total_s'] / 60:.1f} min |")
  return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  rows = curve_rows(find_results(_ROOTS.value), _METHODS.value)
  if not rows:
    raise app.UsageError(f"No results.json of {_METHODS.value} under "
                         f"{_ROOTS.value}.")
  print(table(rows))
  if _PLOT.value:
    plots.save(plots.accuracy_vs_pretraining(rows), _PLOT.value)
    print(f"curves -> {_PLOT.value}")


if __name__ == "__main__":
  app.run(main)
