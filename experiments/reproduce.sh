#!/usr/bin/env bash
# Runs kmeans, ae_kmeans and dec on MNIST and Fashion-MNIST (70k each) for the
# given seeds; ae_kmeans reuses the autoencoder that the dec run pretrained.
# Usage: experiments/reproduce.sh OUT_DIR [SEEDS...]   (default seed: 0)
set -euo pipefail
out=${1:?usage: experiments/reproduce.sh OUT_DIR [SEEDS...]}; shift
seeds=("${@:-0}")
py=${PYTHON:-python}
mnist_dir=${MNIST_DIR:-../shared/data/mnist}
for seed in "${seeds[@]}"; do
  for ds in mnist fashion_mnist; do
    extra=()
    [[ $ds == mnist ]] && extra=(--config.data_dir="$mnist_dir")
    run() {  # run METHOD [overrides...]
      local method=$1; shift
      local dir="$out/$ds/$method/seed$seed"
      [[ -f $dir/results.json ]] && { echo "skip $dir"; return; }
      $py -m experiments.main --config="experiments/configs/$ds.py" \
        --workdir="$dir" --config.method="$method" --config.seed="$seed" \
        "${extra[@]}" "$@"
    }
    run dec
    run ae_kmeans --config.pretrained_workdir="$out/$ds/dec/seed$seed"
    run kmeans
  done
done
