r"""DEC on MNIST with DEC-keras's full recipe: 300 epochs of SGD (lr 1,
momentum 0.9) pretraining, then the same clustering stage as mnist.py.

  python -m experiments.main --config=experiments/configs/mnist_dec_keras.py \
      --workdir=/tmp/dec_mnist_keras --config.data_dir=../shared/data/mnist

The reference: DEC-keras reports ACC 0.912 +- 0.047 over 10 runs. On a
2-core CPU this recipe's pretraining alone takes about 75 minutes here
(300 epochs at ~15 s); it was not run for the README's table.
"""

from experiments.configs import mnist


def get_config():
  config = mnist.get_config()
  config.pretrain.optimizer = "sgd"
  config.pretrain.learning_rate = 1.0
  config.pretrain.momentum = 0.9
  config.pretrain.schedule = "constant"
  config.pretrain.epochs = 300
  return config
