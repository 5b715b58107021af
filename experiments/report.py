r"""Draws a finished run's pictures into WORKDIR/plots (see dec_jax.report).

  python -m experiments.report --workdir=/tmp/dec_digits
  python -m experiments.report --workdir=workdirs/  # runs below: summary.png

Runs write these at their end already (config.report); this redraws them,
e.g. with another map (--map=umap) or sample size.
"""

import sys

from absl import app
from absl import flags
from absl import logging

from dec_jax.apps import report
from dec_jax.errors import DecJaxError

_WORKDIR = flags.DEFINE_string("workdir", None, "A run's workdir, or a folder "
                               "of runs (for the mean ± sd summary).")
_SAMPLE = flags.DEFINE_integer("sample", report.EMBEDDING_SAMPLE,
                               "Points in the 2-D map of the embedding.")
_MAP = flags.DEFINE_enum("map", "auto", report.MAPS, "2-D map: t-SNE, UMAP "
                         "(needs umap-learn), or auto (UMAP if installed).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the sample and the map.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  try:
    written = report.build_report(_WORKDIR.value, sample_size=_SAMPLE.value,
                                  seed=_SEED.value, map_method=_MAP.value)
  except DecJaxError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  for path in written:
    print(path)


if __name__ == "__main__":
  app.run(main)
