r"""DEC on MNIST, train + test (70,000 images), DEC-keras's clustering stage.

  python -m experiments.main --config=experiments/configs/mnist.py \
      --workdir=/tmp/dec_mnist --config.data_dir=../shared/data/mnist

Without data_dir the images come from tensorflow-datasets (needs TensorFlow
and a download). Pretraining uses Adam (see README for the time/accuracy
trade-off against DEC-keras's 300 epochs of SGD).
"""

from experiments.configs import default


def get_config():
  config = default.get_config()
  config.dataset = "mnist"
  config.pretrain.optimizer = "adam"
  config.pretrain.learning_rate = 1e-3
  config.pretrain.schedule = "cosine"
  config.pretrain.epochs = 50
  config.dec.update_interval = 140
  return config
