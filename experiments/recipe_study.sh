#!/usr/bin/env bash
# Issue #15's transfer study: each recipe on each data set, its seeds as one
# stack, then experiments.summarize's table (ACC / NMI / ARI mean ± sd, the
# recipe, median wall time). MNIST and Fashion-MNIST run on their 10k test
# split. A default is chosen by what works on all the sets, never by one
# set's labels. Finished runs are skipped, so a rerun completes an
# interrupted one. Further arguments are config overrides for every run.
# Usage: experiments/recipe_study.sh OUT [MNIST_DIR [OVERRIDES...]]
# Environment: RECIPES (config files in experiments/configs, default
# "default mnist"), DATASETS (default "digits mnist fashion_mnist"), SEEDS
# (default 0,1,2), METHOD (default dec), PYTHON (default python).
set -euo pipefail
out=${1:?usage: experiments/recipe_study.sh OUT [MNIST_DIR [OVERRIDES...]]}
mnist_dir=${2:-data/mnist}
shift $(( $# < 2 ? $# : 2 ))
py=${PYTHON:-python}
for recipe in ${RECIPES:-default mnist}; do
  for ds in ${DATASETS:-digits mnist fashion_mnist}; do
    extra=()
    [[ $ds == mnist || $ds == fashion_mnist ]] && extra=(--config.split=test)
    [[ $ds == mnist ]] && extra+=(--config.data_dir="$mnist_dir")
    dir="$out/$recipe/$ds"
    [[ -f $dir/results.json ]] && { echo "skip $dir"; continue; }
    $py -m experiments.main --config="experiments/configs/$recipe.py" \
      --workdir="$dir" --config.dataset="$ds" \
      --config.method="${METHOD:-dec}" --config.seeds="${SEEDS:-0,1,2}" \
      --config.report=False "${extra[@]}" "$@"
  done
done
$py -m experiments.summarize "$out"
