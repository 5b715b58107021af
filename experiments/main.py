r"""Runs one clustering job and writes its workdir.

  python -m experiments.main --config=experiments/configs/default.py \
      --workdir=/tmp/dec_digits --config.method=dec --config.seed=3

With `--config.seeds=0,1,2` (and `--config.grid='{"idec.gamma": [0.1, 1]}'`)
the members train as one stack into WORKDIR/seed<s>/ (WORKDIR/<point>/seed<s>/)
and WORKDIR/results.json holds their mean ± sd (dec_jax/runner/members.py).
"""

import json
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from dec_jax.apps import report
from dec_jax.runner import members
from dec_jax import parallel
from dec_jax.errors import DecJaxError
from dec_jax.runner.run import expand_config_shorthands
from dec_jax.runner.run import hide_orbax_info
from dec_jax.runner.run import parse_config_flags
from dec_jax.runner.run import run

_CONFIG = config_flags.DEFINE_config_file(
    "config", "experiments/configs/default.py", "Config file (ml_collections).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the run writes its files.")
flags.mark_flags_as_required(["workdir"])
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Multi-host: call jax.distributed.initialize first "
    "(one process per host; see docs/scaling.md, 'Several devices').")
_COORDINATOR = flags.DEFINE_string(
    "coordinator", None, "With --distributed: host:port of process 0 "
    "(unset: detected on SLURM / Open MPI / Cloud TPU).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None,
                                      "With --distributed: process count.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None,
                                   "With --distributed: this process's index.")


def check_seed_flags(argv: list[str], config) -> None:
  """Refuses --config.seed beside --config.seeds, or beside a config that
  sets seeds: the seed would be ignored."""
  given = {arg.partition("=")[0] for arg in argv}
  if {"--config.seed", "--config.seeds"} <= given:
    raise DecJaxError(
        "--config.seed and --config.seeds were both given, and a run has "
        "one seed (--config.seed=3) or a stack of them (--config.seeds=3,4): "
        "drop one.")
  if "--config.seed" in given and str(config.get("seeds", "")).strip():
    raise DecJaxError(
        f"--config.seed was given, but this config sets seeds="
        f"{config.seeds!r}, which win: pass --config.seeds={config.seed} "
        "for one seed.")


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)
  hide_orbax_info()
  if _DISTRIBUTED.value:
    parallel.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value,
                                    _PROCESS_ID.value)
  try:
    check_seed_flags(sys.argv, _CONFIG.value)
    results = run(_CONFIG.value, _WORKDIR.value,
                  after_member=report.hook(_CONFIG.value))
    if members.is_stack_layout(_CONFIG.value):
      print(members.describe(results) + f" -> {_WORKDIR.value}")
      if "consensus" in results:
        print("consensus: " + json.dumps(
            {k: results["consensus"].get(k) for k in
             ("acc", "nmi", "ari", "reference", "mean_pairwise_ari")}))
      return
  except DecJaxError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  scores = " ".join(f"{k.upper()}={results[k]:.4f}" for k in ("acc", "nmi", "ari")
                    if k in results)
  print(f"{results['method']} on {results['dataset']} "
        f"(n={results['n_samples']}, k={results['n_clusters']}): {scores} "
        f"in {results['times_s']['total']:.1f}s -> {_WORKDIR.value}")


if __name__ == "__main__":
  # Rewritten in place: config_flags reads sys.argv for the override flags.
  sys.argv = expand_config_shorthands(sys.argv)
  app.run(main, flags_parser=parse_config_flags)
