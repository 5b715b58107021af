r"""DEC-DA (Guo et al., ACML 2018), convolutional: DCEC's conv autoencoder
with data augmentation in pretraining and clustering.

  python -m experiments.main --config=experiments/configs/mnist_dec_da_conv.py \
      --workdir=runs/dec_da_conv_mnist_test --config.data_dir=data/mnist \
      --config.split=test

Recipe: DCEC's network (mnist_conv.py: stride-2 convs 32-64-128 to a 10-d
embedding, mirrored), augmented minibatches (shifts +-3 px, rotations +-10
deg), 500 epochs of Adam (lr 0.001) pretraining; the clustering stage of
mnist.py (DEC, SGD lr 0.01) on augmented inputs against clean targets.

Paper: DEC-DA reports MNIST-test ACC 0.983, NMI 0.958. Not run here yet:
on the 2-core CPU a (not augmented) conv epoch of the 10k test set took
7.7 s beside another run (session 14, mnist_conv.py), so 500 epochs take
about 65 min a seed.
"""

from experiments.configs import mnist_conv


def get_config():
  config = mnist_conv.get_config()
  config.method = "dec"
  config.augment = True
  config.pretrain.epochs = 500
  config.dec.optimizer = "sgd"
  config.dec.learning_rate = 0.01
  config.dec.momentum = 0.9
  return config
