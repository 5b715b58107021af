r"""N2D + consensus (beyond the papers): five N2D members, seeds 0-4, trained
as one stack, then one label-free k-means consensus of their assignments.

  python -m experiments.main --config=experiments/configs/n2d_consensus.py \
      --workdir=runs/n2d_consensus_digits
  python -m experiments.main --config=experiments/configs/n2d_consensus.py:mnist \
      --workdir=runs/n2d_consensus_mnist_test --config.data_dir=data/mnist \
      --config.split=test --config.pretrain.epochs=200

The text after ':' names the config whose autoencoder recipe the members
use: `default` (a new data set's, DEC-keras's SGD; the default) or `mnist`
(Adam with a cosine schedule, for tens of thousands of images). Each member
is N2D (UMAP of its own autoencoder's embedding, then a Gaussian mixture);
N2D's accuracy swings from seed to seed when a mixture merges two classes,
and the consensus (core.consensus, no labels) removes most of that swing.
WORKDIR/results.json holds every member and `consensus`.

Measured here (3 members; docs/results.md, "N2D + consensus"): the digits,
members 0.841 +- 0.003, consensus 0.924; MNIST-test with 200 epochs,
members 0.911 +- 0.073, consensus 0.958.
"""

import importlib

BASES = ("default", "mnist")


def get_config(base: str = "default"):
  if base not in BASES:
    raise ValueError(f"n2d_consensus.py:{base}: unknown autoencoder recipe "
                     f"{base!r}; expected one of {BASES}.")
  config = importlib.import_module(f"experiments.configs.{base}").get_config()
  config.method = "n2d"
  config.ensemble = "consensus"
  config.seeds = "0,1,2,3,4"
  return config
