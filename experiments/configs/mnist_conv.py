r"""DCEC on MNIST, train + test (70,000 images): the convolutional autoencoder.

  python -m experiments.main --config=experiments/configs/mnist_conv.py \
      --workdir=/tmp/dcec_mnist --config.data_dir=../shared/data/mnist

DCEC's recipe (Guo et al., ICONIP 2017): conv 32-64-128 (5x5, 5x5, 3x3,
stride 2) to a 10-d embedding, mirrored transposed convs; 200 epochs of Adam
pretraining, batch 256; then the clustering stage keeps the decoder
(method=idec: L_rec + 0.1 KL) with Adam, update_interval 140, tol 0.1 %.
`--config.method=dec` or `ae_kmeans` use the same autoencoder;
`--config.augment=True` adds DEC-DA's shifts and rotations.

Runtime and result on the 2-core CPU (convs computed as matmuls, see
model.conv_impl), beside another run: a pretraining epoch of the 10k test
set takes about 7.7 s, of 70k images about 7x that. MNIST-test
(--config.split=test), seeds 0-2 (session 14): AE + k-means 0.794 +-
0.017, IDEC 0.858 +- 0.011 / NMI 0.841 +- 0.011 (4 and 9 mixed in every
seed; DCEC reports 0.889 on the 70k set), 34 min a seed.
Fashion-MNIST-test (--config.dataset=fashion_mnist, seeds 0-2 as one
stack, 118 min for the 3): 0.517 +- 0.037, consensus 0.514. MNIST 70k,
the command above with --config.seeds=0 (session 18, commit fa4493f):
IDEC 0.892, NMI 0.888, ARI 0.854, from an AE + k-means start of 0.858
(the 4s and 9s mixed), stopped by tol at 8,820 iterations; 133 min
(pretraining 112 min at 28-35 s an epoch, beside the test suite for most
of it).
"""

from experiments.configs import mnist_idec


def get_config():
  # IDEC's recipe (mnist_idec.py: 200 epochs of Adam, then Adam on
  # L_rec + 0.1 KL), on DCEC's convolutional autoencoder.
  config = mnist_idec.get_config()
  config.model.kind = "conv"
  config.model.conv_features = (32, 64, 128)
  config.model.dims = (10,)        # conv: only the embedding width is used
  return config
