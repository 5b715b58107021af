r"""Prints a markdown table of the results.json files under some folders.

  python -m experiments.summarize workdirs/

One row per (dataset, method) with the mean ± sd of ACC / NMI / ARI over the
seeds found, the number of seeds, and the median wall time per run.
"""

import collections
import glob
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


def summary_table(results: list[dict]) -> str:
  groups = collections.defaultdict(list)
  for r in results:
    groups[(r["dataset"], r["method"])].append(r)
  lines = ["| data | method | seeds | ACC | NMI | ARI | wall time / run |",
           "|---|---|---|---|---|---|---|"]
  for (dataset, method), runs in sorted(groups.items()):
    scores = [_mean_sd([r[m] for r in runs if m in r])
              if any(m in r for r in runs) else "–"
              for m in ("acc", "nmi", "ari")]
    wall = statistics.median(r["times_s"]["total"] for r in runs)
    lines.append(f"| {dataset} | {method} | {len(runs)} | " +
                 " | ".join(scores) + f" | {wall / 60:.1f} min |")
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
