#!/usr/bin/env bash
# One stacked grid command against the same members as separate runs: 3 seeds
# x 3 idec.gamma on MNIST-test (10k), IDEC with Adam after 20 pretraining
# epochs. Writes OUT/stack (one command: 9 members, 3 pretrainings shared by
# the gamma values), OUT/separate/s<seed>_g<gamma> (9 commands, each
# pretraining its own autoencoder) and OUT/times.txt (wall seconds of each
# command). Finished runs are skipped, so a rerun completes an interrupted one.
# Further arguments are config overrides for every run (on a 2-core CPU, IDEC
# to tol 0.1 % takes hours for 9 members: --config.dec.maxiter=700 cuts it).
# Usage: experiments/grid_vs_separate.sh OUT [MNIST_DIR [OVERRIDES...]]
set -euo pipefail
out=${1:?usage: experiments/grid_vs_separate.sh OUT [MNIST_DIR [OVERRIDES...]]}
data=${2:-data/mnist}
shift $(( $# < 2 ? $# : 2 ))
py=${PYTHON:-python}
common=(--config=experiments/configs/mnist.py --config.data_dir="$data"
        --config.split=test --config.method=idec --config.pretrain.epochs=20
        --config.dec.optimizer=adam --config.dec.learning_rate=0.001 "$@")
mkdir -p "$out/separate"
timed() {  # timed WORKDIR [overrides...]: one run, its wall time to times.txt
  local dir=$1; shift
  [[ -f $dir/results.json ]] && { echo "skip $dir"; return; }
  local start=$(date +%s.%N)
  $py -m experiments.main "${common[@]}" --workdir="$dir" "$@"
  echo "$dir $(python3 -c "import time; print(round(time.time() - $start, 1))")" \
    >> "$out/times.txt"
}
timed "$out/stack" --config.seeds=0,1,2 \
  --config.grid='{"idec.gamma": [0.01, 0.1, 1.0]}'
for seed in 0 1 2; do
  for gamma in 0.01 0.1 1.0; do
    timed "$out/separate/s${seed}_g${gamma}" --config.seed=$seed \
      --config.idec.gamma=$gamma
  done
done
