#!/usr/bin/env bash
# Issue #15's consensus study: for each data set, 3 independent ensembles of 5
# DEC members (seeds 0-4, 5-9, 10-14) on the 10k test split, each with
# --config.ensemble=consensus; then a table of the members' ACC (mean ± sd
# over all 15) against the 3 consensus ACCs (mean ± sd). Finished ensembles are
# skipped. Usage: experiments/consensus_study.sh OUT [MNIST_DIR] [CONFIG]
set -euo pipefail
out=${1:?usage: experiments/consensus_study.sh OUT [MNIST_DIR] [CONFIG]}
mnist_dir=${2:-data/mnist}
config=${3:-experiments/configs/mnist.py}
py=${PYTHON:-python}
for ds in mnist fashion_mnist; do
  extra=()
  [[ $ds == mnist ]] && extra=(--config.data_dir="$mnist_dir")
  for block in 0 1 2; do
    dir="$out/$ds/ensemble$block"
    [[ -f $dir/results.json ]] && { echo "skip $dir"; continue; }
    $py -m experiments.main --config="$config" --workdir="$dir" \
      --config.dataset=$ds --config.split=test "${extra[@]}" \
      --config.seeds="$(seq -s, $((block * 5)) $((block * 5 + 4)))" \
      --config.ensemble=consensus
  done
done
$py - "$out" <<'PY'
import glob, json, statistics, sys
for ds in ("mnist", "fashion_mnist"):
  runs = [json.load(open(p)) for p in
          sorted(glob.glob(f"{sys.argv[1]}/{ds}/ensemble*/results.json"))]
  if not runs:
    continue
  members = [m["acc"] for r in runs for m in r["members"]]
  votes = [r["consensus"]["acc"] for r in runs]
  sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
  print(f"{ds}: members ACC {statistics.mean(members):.3f} ± {sd(members):.3f}"
        f" ({len(members)}); consensus {statistics.mean(votes):.3f} ± "
        f"{sd(votes):.3f} ({len(votes)} ensembles): {votes}")
PY
