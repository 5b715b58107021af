r"""N2D + consensus (beyond the papers): five N2D members, seeds 0-4, trained
as one stack, then one label-free k-means consensus of their assignments.

  python -m experiments.main --config=experiments/configs/n2d_consensus.py \
      --workdir=runs/n2d_consensus_digits
  python -m experiments.main --config=experiments/configs/n2d_consensus.py:mnist \
      --workdir=runs/n2d_consensus_mnist_test --config.data_dir=data/mnist \
      --config.split=test --config.pretrain.epochs=200

The text after ':' names the config whose autoencoder recipe the members
use: `default` (a new data set's: Adam with a cosine schedule, 200
epochs; the default), `mnist` (the same, 50 epochs, for tens of
thousands of images) or `mnist_dec_da` (DEC-DA's augmented pretraining:
500 epochs of SGD on randomly shifted and rotated images). Each member
is N2D (UMAP of its own autoencoder's embedding, then a Gaussian mixture);
N2D's accuracy swings from seed to seed when a mixture merges two classes;
the consensus (core.consensus, no labels) repairs a merge that most
members do not share, and keeps one they do.
WORKDIR/results.json holds every member and `consensus`.

Measured here (ACC; docs/results.md and docs/consensus.md, "N2D members"):
where the members err in different ways the consensus gains most, e.g. 3
members on the digits (`default` as it was, SGD lr 1) 0.841 +- 0.003,
consensus 0.924; 5 members on the digits (`default`, session 12) 0.869 +-
0.042, consensus 0.938; on
MNIST-test (`mnist`, 200 epochs) 0.911 +- 0.073, consensus 0.958. Where
they share an error it keeps it: over 3 ensembles of 5 on the 10k test sets
with 50 epochs, MNIST-test members 0.815 +- 0.067, consensus 0.853 +- 0.077;
Fashion-MNIST-test 0.586 +- 0.031 and 0.587 +- 0.022. On augmented
autoencoders (`mnist_dec_da`, session 13): the digits 0.857 +- 0.022,
consensus 0.933 (no better than `default`); 3 members on DEC-DA's
MNIST-test autoencoders 0.966 +- 0.003, consensus 0.969, on its
Fashion-MNIST-test ones 0.586 +- 0.028, consensus 0.596. Wall time: the
autoencoders' pretraining (the base recipe's, 5 members), then about 1.5
min per member on 10k images for UMAP and the mixture.
"""

import importlib

import ml_collections

BASES = ("default", "mnist", "mnist_dec_da")


def get_config(base: str = "default") -> ml_collections.ConfigDict:
  """`base`'s config (its data and autoencoder recipe) as 5 N2D members
  with their consensus."""
  if base not in BASES:
    raise ValueError(f"n2d_consensus.py:{base}: unknown autoencoder recipe "
                     f"{base!r}; expected one of {BASES}.")
  config = importlib.import_module(f"experiments.configs.{base}").get_config()
  config.method = "n2d"
  config.ensemble = "consensus"
  config.seeds = "0,1,2,3,4"
  return config
