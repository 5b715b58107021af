r"""DEC on Fashion-MNIST, train + test (70,000 images); same network as MNIST.

  python -m experiments.main --config=experiments/configs/fashion_mnist.py \
      --workdir=/tmp/dec_fashion

Reads `--config.data_dir` when given, else /usr/share/datasets/fashion-mnist
(Debian package dataset-fashion-mnist) when present, else tensorflow-datasets.
"""

from experiments.configs import mnist


def get_config():
  config = mnist.get_config()
  config.dataset = "fashion_mnist"
  return config
