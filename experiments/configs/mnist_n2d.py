r"""N2D (McConville, Santos-Rodriguez, Piechocki & Craddock, ICPR 2020) on
MNIST: UMAP of the autoencoder's embedding, then a Gaussian mixture.

  python -m experiments.main --config=experiments/configs/mnist_n2d.py \
      --workdir=runs/n2d_mnist --config.data_dir=data/mnist \
      --config.seeds=0,1,2,3,4

Recipe: the 784-500-500-2000-10 autoencoder with Keras's default
initialisation (glorot_uniform, as N2D's code), 1000 epochs of Adam (lr
0.001, batch 256); UMAP to k dimensions (20 neighbours, min_dist 0, euclidean);
a full-covariance Gaussian mixture with k components.

Paper: MNIST 70k ACC 0.979, NMI 0.942; MNIST-test 0.948 / 0.882;
Fashion-MNIST 0.672 / 0.684. Here, with 50 epochs of cosine Adam instead
of 1000 (mnist.py's pretraining + --config.method=n2d), seeds 0-4 on the
70k set: ACC 0.977 +- 0.001 (docs/results.md). This recipe on MNIST-test
(--config.split=test --config.seeds=0,1,2 --config.ensemble=consensus, one
stack, session 13, commit 67d3027): ACC 0.820, 0.950, 0.946 (0.905 +-
0.074, NMI 0.875), their consensus 0.954 / 0.897; 89 min for the 3 beside
other runs. With DEC-keras's initialisation instead
(--config.model.mlp_init=dec_keras, session 12) every seed split the 1s
and merged two digits: 0.820 +- 0.008. On Fashion-MNIST-test
(--config.dataset=fashion_mnist, same seeds, session 16, commit 0ff851a):
0.575 +- 0.033 (0.586, 0.539, 0.601; NMI 0.641 +- 0.006), consensus
0.582, in 58 min for the 3 beside one or two other runs: no better than
N2D on 50 or 200 epochs of cosine Adam (0.586 +- 0.031, 0.583 +- 0.023).
On the 70k sets, seed 0 (code of fa4493f, sessions 18-19, 2-core CPU):
MNIST (the command above with --config.seeds=0) ACC 0.979, NMI 0.943,
ARI 0.954 in 75 min (paper 0.979 / 0.942); Fashion-MNIST
(--config.dataset=fashion_mnist --config.seeds=0) ACC 0.637, NMI 0.691,
ARI 0.528 in 92 min, resumed once (paper 0.672 / 0.684; 50-epoch
autoencoders: 0.582 +- 0.072).
"""

from experiments.configs import mnist


def get_config():
  config = mnist.get_config()
  config.method = "n2d"
  config.model.mlp_init = "glorot_uniform"  # Keras's default, as N2D's code
  config.pretrain.optimizer = "adam"
  config.pretrain.learning_rate = 1e-3
  config.pretrain.schedule = "constant"
  config.pretrain.epochs = 1000
  config.n2d.n_neighbors = 20
  config.n2d.min_dist = 0.0
  return config
