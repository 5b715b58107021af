"""The default config of every run: each field with its meaning.

`experiments/configs/*.py` recipes start from `get_config()` and override a
few fields; any field can be overridden on the command line
(`--config.seed=3`). The library (estimator, organiser) builds its runs from
it too, so it lives here, not in `experiments/`.
"""

import ml_collections

from dec_jax import methods
from dec_jax.core import consensus


def get_config() -> ml_collections.ConfigDict:
  """Every field, each section from its own function; the methods' sections
  (dec, idec, n2d, ...) come from their modules (`methods.config_sections`)."""
  config = ml_collections.ConfigDict()
  config.method = "dec"            # kmeans | ae_kmeans | dec | idec | n2d
  config.dataset = "digits"        # a name (digits, mnist, usps, ...) | path
  config.data_dir = ""             # folder with the four IDX gz files (offline);
                                   # usps: usps.h5 or the folder holding it
  config.split = "all"             # all (train + test) | train | test
  config.scale = "auto"            # divide inputs by this; auto: 255 / 16 / 1
  config.label_column = ""         # CSV only: column index holding labels
  # k: an int, 0 (the number of classes in the labels) or "auto" (the best
  # silhouette over auto_k's range, on the embedding or the inputs).
  config.n_clusters = ml_collections.FieldReference(10, field_type=object)
  config.auto_k = ml_collections.ConfigDict()
  config.auto_k.min = 2
  config.auto_k.max = 15
  config.auto_k.sample_size = 5000  # points the silhouette is computed on
  _add_member_fields(config)
  config.overwrite = False         # allow a workdir that holds a finished run
  config.resume = True             # continue from an interrupted run's
                                   # checkpoints in the workdir (same config)
  config.pretrained_workdir = ""   # reuse checkpoints/autoencoder from here
  config.chunk_size = 8192         # rows embedded at once on the full set
  config.keep_uint8 = True         # 8-bit images stay uint8 on the device
                                   # (1/4 of float32), decoded per batch
  config.data_on_device = True     # False: data stay in host memory and are
                                   # streamed (larger than device memory)
  config.num_devices = 0           # data parallel over this many devices
                                   # (0: all visible, on every host)
  config.collapse_fraction = 0.1   # flag clusters under 0.1 x N / k points
  config.report = True             # draw WORKDIR/plots/*.png at the end
                                   # (experiments.main, sweep: apps.report)
  config.tensorboard = True        # TensorBoard files in WORKDIR/tensorboard
  config.model = _model()
  # DEC-DA: random shifts (+-3 px at 28x28, scaled) and rotations (+-10 deg)
  # of every pretraining and clustering minibatch, on the device (images).
  config.augment = False
  config.pretrain = _pretrain()
  config.kmeans = _kmeans()
  for name, make_section in methods.config_sections().items():
    config[name] = make_section()
  return config


def _add_member_fields(config: ml_collections.ConfigDict) -> None:
  """The fields that say which members a run has and how they combine."""
  config.seed = 0
  # Several seeds in one workdir (seed0/, seed1/, ... + results.json with
  # mean ± sd): "0,1,2,3,4" or a tuple; empty = one run with `seed`.
  config.seeds = ml_collections.FieldReference("", field_type=object)
  # Numeric hyperparameters as lists, crossed with the seeds, all members
  # of one stack: '{"idec.gamma": [0.01, 0.1, 1.0]}' (members.STACKABLE).
  config.grid = ml_collections.FieldReference("", field_type=object)
  # How members are grouped into stacks: auto (as many as fit in memory) |
  # vmap (all in one) | sequential (one at a time).
  config.seeds_mode = "auto"
  # none | consensus: after the members, one label-free clustering from all
  # of them (WORKDIR/consensus.npz and results.json's `consensus`). Needs
  # 2+ members and an integer k.
  # consensus_refine (dec, idec): each member's DEC stage once more from the
  # consensus first, then the consensus of the refined members.
  config.ensemble = "none"
  # How the consensus combines the members: kmeans (k-means on their
  # concatenated soft assignments) | vote (aligned to the medoid member).
  config.consensus_combine = consensus.DEFAULT_COMBINE


def _model() -> ml_collections.ConfigDict:
  model = ml_collections.ConfigDict()
  model.dims = (500, 500, 2000, 10)  # hidden widths, embedding last
  model.dtype = "float32"   # float32 | bfloat16 (compute dtype)
  # mlp: the dense stack `dims`. conv: DCEC's convolutional autoencoder on the
  # images (needs an image shape): stride-2 convs of conv_features channels,
  # dense to the embedding width dims[-1] (the other dims are not used).
  model.kind = "mlp"        # mlp | conv
  # mlp only: the kernels' init, dec_keras (DEC-keras's U(+-sqrt(1/fan_in)))
  # | glorot_uniform (Keras's default, as N2D's and IDEC's code).
  model.mlp_init = "dec_keras"
  model.conv_features = (32, 64, 128)  # conv only (kernels 5, 5, 3)
  # How convs are computed (same result): matmul (im2col; fast inside
  # XLA:CPU's loops) | xla (XLA's convs, cuDNN on GPU) | auto (CPU: matmul).
  model.conv_impl = "auto"
  return model


def _pretrain() -> ml_collections.ConfigDict:
  pretrain = ml_collections.ConfigDict()
  # Adam with a cosine decay over 200 epochs: of the recipes measured on
  # the digits, MNIST-test and Fashion-MNIST-test it transfers best
  # (docs/methods.md, "Which recipe for which data"); DEC-keras's SGD (lr 1)
  # is mnist_dec_keras.py.
  pretrain.optimizer = "adam"  # sgd | adam
  pretrain.learning_rate = 1e-3
  pretrain.momentum = 0.9      # sgd only
  pretrain.schedule = "cosine"  # constant | cosine
  pretrain.epochs = 200
  pretrain.batch_size = 256
  pretrain.log_every = 10
  pretrain.checkpoint_every = 25  # epochs; a rerun resumes from it
  # >0: first DEC's greedy layer-wise denoising pretraining (dropout 0.2),
  # this many epochs per layer pair, then `epochs` end to end (mlp only).
  pretrain.greedy_epochs = 0
  return pretrain


def _kmeans() -> ml_collections.ConfigDict:
  kmeans = ml_collections.ConfigDict()
  kmeans.backend = "jax"    # jax | sklearn
  kmeans.n_init = 20
  kmeans.max_iter = 300
  return kmeans
