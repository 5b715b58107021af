r"""Runs a grid of config overrides, each cell over several seeds; resumable.

  python -m experiments.sweep --config=experiments/configs/default.py \
      --workdir=/tmp/sweep --grid="method=dec,idec;dec.update_interval=30,140" \
      --seeds=0,1,2

Grid syntax: axes separated by `;`, each `dotted.key=value,value,...`; the
cells are every combination of one value per axis. A value is a Python
literal (3, 0.1, True, (32,4)) or else a bare string (dec); commas inside
parentheses or brackets do not split, so `model.dims=(500,500,2000,10),(32,4)`
has two values. Keys must exist in the config (any field: method,
dec.update_interval, pretrain.epochs, n2d.n_neighbors, ...); other flags
(`--config.pretrain.epochs=50`) apply to every cell.

Numeric axes that change no shape (dec_jax/runner/members.py STACKABLE: learning
rates, momentum, dec.tol, dec.alpha, idec.gamma, ...) are not separate runs:
within a cell, the seeds and those values are the members of one stack,
trained as one compiled program (pretraining done once per seed when only
clustering settings differ). Only the other axes (method, dims, batch sizes,
data, ...) make cells that run one after the other.

Layout: DIR/<cell>/seed<s>/ (DIR/<cell>/<point>/seed<s>/ with stacked axes)
is a normal run workdir, DIR/<cell>/results.json the cell's mean ± sd per
point, DIR/sweep.csv one row per member, DIR/sweep.md the markdown table of
mean ± sd per cell and point, with the mean wall time of its members and the
cell's total. A cell is named by its overrides
(`method=dec__dec.update_interval=30`), a point likewise
(`dec.learning_rate=0.1`).

Resumable: runs whose results.json exists are not redone, so rerunning an
interrupted sweep finishes only what is missing. With --share_pretraining
(default) cells whose pretraining settings agree (e.g. method=dec vs idec)
share each seed's autoencoder: the first cell trains it, the next ones copy
it into their seed folders and reuse it (their results.json then says
pretrain_reused; their times_s still count its recorded pretraining).
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from dec_jax.apps import sweep
from dec_jax.errors import DecJaxError
from dec_jax.runner.run import expand_config_shorthands
from dec_jax.runner.run import hide_orbax_info
from dec_jax.runner.run import parse_config_flags

# -------------------------------------------------------------------- CLI

_CONFIG = config_flags.DEFINE_config_file(
    "config", "experiments/configs/default.py", "Base config (ml_collections).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder of the sweep.")
_GRID = flags.DEFINE_string(
    "grid", "", "Axes 'key=v1,v2;other.key=v3,v4' (empty: the base config).")
_SEEDS = flags.DEFINE_string(
    "seeds", "", "Seeds of every cell, '0,1,2' (default: config.seeds, else "
    "config.seed).")
_SHARE = flags.DEFINE_bool(
    "share_pretraining", True, "Cells with the same pretraining settings "
    "reuse each seed's autoencoder.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)
  hide_orbax_info()
  try:
    sweep.run_sweep(_CONFIG.value, _WORKDIR.value, _GRID.value, _SEEDS.value,
              share_pretraining=_SHARE.value,
              log_fn=lambda record: logging.info("sweep %s", record))
  except DecJaxError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  with open(os.path.join(_WORKDIR.value, sweep.TABLE)) as f:
    print(f.read(), end="")
  print(f"-> {os.path.join(_WORKDIR.value, sweep.CSV)}, "
        f"{os.path.join(_WORKDIR.value, sweep.TABLE)}")


if __name__ == "__main__":
  # Rewritten in place: config_flags reads sys.argv for the override flags.
  sys.argv = expand_config_shorthands(sys.argv)
  app.run(main, flags_parser=parse_config_flags)
