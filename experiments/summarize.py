r"""Prints a markdown table of the results.json files under some folders.

  python -m experiments.summarize workdirs/

One row per (dataset, method, settings): runs that differ only in their seed
(or data folder, or where the autoencoder came from) are grouped, with the
mean ± sd of ACC / NMI / ARI over them, the pretraining recipe, the number of
seeds, and the median wall time per run.
"""

import collections
import glob
import json
import os
import statistics
import sys

from dec_jax.workdir import RESULTS, read_json


def find_results(roots: list[str]) -> list[dict]:
  paths = []
  for root in roots:
    paths += glob.glob(os.path.join(root, "**", RESULTS), recursive=True)
  return [read_json(p) for p in sorted(paths)]


def _mean_sd(values: list[float]) -> str:
  if len(values) == 1:
    return f"{values[0]:.3f}"
  return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


# Config fields that vary across seeds or do not change what a run computes.
_NOT_SETTINGS = ("seed", "data_dir", "overwrite", "pretrained_workdir",
                 "chunk_size", "collapse_fraction")


def _settings_key(result: dict) -> str:
  config = {k: v for k, v in result.get("config", {}).items()
            if k not in _NOT_SETTINGS}
  return json.dumps(config, sort_keys=True)


def _pretraining(result: dict) -> str:
  """The recipe of the autoencoder used, e.g. 'adam 0.001 cosine, 50 ep'."""
  if result["method"] == "kmeans":
    return "–"
  reused = result.get("pretrained_from") or {}
  cfg = (reused.get("settings") or {}).get("pretrain") or result.get(
      "config", {}).get("pretrain")
  if not cfg:
    return "?"
  return (f"{cfg['optimizer']} {cfg['learning_rate']:g} {cfg['schedule']}, "
          f"{cfg['epochs']} ep")


def summary_table(results: list[dict]) -> str:
  groups = collections.defaultdict(list)
  for r in results:
    groups[(r["dataset"], r["method"], _settings_key(r))].append(r)
  lines = ["| data | method | pretraining | seeds | ACC | NMI | ARI | "
           "wall time / run |", "|---|---|---|---|---|---|---|---|"]
  for (dataset, method, _), runs in sorted(groups.items()):
    scores = [_mean_sd([r[m] for r in runs if m in r])
              if any(m in r for r in runs) else "–"
              for m in ("acc", "nmi", "ari")]
    wall = statistics.median(r["times_s"]["total"] for r in runs)
    lines.append(f"| {dataset} | {method} | {_pretraining(runs[0])} | "
                 f"{len(runs)} | " + " | ".join(scores) +
                 f" | {wall / 60:.1f} min |")
  return "\n".join(lines)


def main(argv: list[str]) -> None:
  if len(argv) < 2:
    sys.exit("usage: python -m experiments.summarize DIR [DIR ...]")
  results = find_results(argv[1:])
  if not results:
    sys.exit(f"error: no {RESULTS} under {argv[1:]}")
  print(summary_table(results))


if __name__ == "__main__":
  main(sys.argv)
