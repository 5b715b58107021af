r"""Adds the label-free consensus of its members to a finished stack.

  python -m experiments.consensus --workdir=runs/mnist_seeds [--combine=vote]

For a stack run without `--config.ensemble=consensus` (or before it
existed): reads the members' assignments, writes WORKDIR/consensus.npz and
`consensus` in WORKDIR/results.json, exactly as that flag would have
(with --config.consensus_combine=--combine). Rerun with the other --combine
to compare: the new consensus replaces the old, unless --nowrite (then it
is only printed).
"""

import json
import sys

from absl import app
from absl import flags

from dec_jax.core import consensus
from dec_jax.errors import DecJaxError
from dec_jax.runner import ensemble

_WORKDIR = flags.DEFINE_string("workdir", None, "A finished stack's workdir.")
_COMBINE = flags.DEFINE_enum("combine", consensus.DEFAULT_COMBINE,
                             list(consensus.COMBINE), "How the members are "
                             "combined (core.consensus.COMBINE).")
_WRITE = flags.DEFINE_bool("write", True, "Write consensus.npz and "
                           "results.json's `consensus` (else print only).")
flags.mark_flag_as_required("workdir")


def main(argv):
  del argv
  try:
    result = ensemble.add_to_workdir(_WORKDIR.value, _COMBINE.value,
                                     _WRITE.value)
  except DecJaxError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  app.run(main)
