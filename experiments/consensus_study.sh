#!/usr/bin/env bash
# Issue #15's consensus study: for each data set and method, 3 independent
# ensembles of 5 members (seeds 0-4, 5-9, 10-14), each with
# --config.ensemble=consensus (MNIST and Fashion-MNIST on their 10k test
# split); then a table of the members' ACC (mean ± sd over all 15) against
# the 3 consensus ACCs (mean ± sd). Finished ensembles are skipped.
# Usage: experiments/consensus_study.sh OUT [MNIST_DIR] [CONFIG]
# Environment: DATASETS (default "mnist fashion_mnist"; also "digits"),
# METHODS (default "dec"), PYTHON (default python).
set -euo pipefail
out=${1:?usage: experiments/consensus_study.sh OUT [MNIST_DIR] [CONFIG]}
mnist_dir=${2:-data/mnist}
config=${3:-experiments/configs/mnist.py}
py=${PYTHON:-python}
for ds in ${DATASETS:-mnist fashion_mnist}; do
  extra=()
  [[ $ds == mnist || $ds == fashion_mnist ]] && extra=(--config.split=test)
  [[ $ds == mnist ]] && extra+=(--config.data_dir="$mnist_dir")
  for method in ${METHODS:-dec}; do
    for block in 0 1 2; do
      dir="$out/$ds/$method/ensemble$block"
      [[ -f $dir/results.json ]] && { echo "skip $dir"; continue; }
      $py -m experiments.main --config="$config" --workdir="$dir" \
        --config.dataset=$ds --config.method=$method "${extra[@]}" \
        --config.seeds="$(seq -s, $((block * 5)) $((block * 5 + 4)))" \
        --config.ensemble=consensus --config.report=False
    done
  done
done
$py - "$out" <<'PY'
import glob, json, os, statistics, sys
sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
for folder in sorted(glob.glob(f"{sys.argv[1]}/*/*/")):
  runs = [json.load(open(p)) for p in
          sorted(glob.glob(f"{folder}/ensemble*/results.json"))]
  if not runs:
    continue
  members = [m["acc"] for r in runs for m in r["members"]]
  votes = [r["consensus"]["acc"] for r in runs]
  name = os.path.relpath(folder, sys.argv[1])
  print(f"{name}: members ACC {statistics.mean(members):.3f} ± "
        f"{sd(members):.3f} ({len(members)}); consensus "
        f"{statistics.mean(votes):.3f} ± {sd(votes):.3f} ({len(votes)} "
        f"ensembles): {[round(v, 3) for v in votes]}")
PY
