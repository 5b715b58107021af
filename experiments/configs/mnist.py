r"""DEC on MNIST, train + test (70,000 images), DEC-keras's clustering stage.

  python -m experiments.main --config=experiments/configs/mnist.py \
      --workdir=/tmp/dec_mnist --config.data_dir=../shared/data/mnist

Without data_dir the images come from tensorflow-datasets (needs TensorFlow
and a download). Pretraining: the default's Adam with a cosine schedule, 50
epochs instead of 200 (13,700 steps on 70,000 images, more than 200 epochs
give the 10k test set), a sixth of DEC-keras's 300 epochs of SGD
(mnist_dec_keras.py). On the 10k test sets (--config.split=test) add
--config.pretrain.epochs=200, which is default.py's recipe.

Expected on a 2-core CPU: about 20 minutes (15 pretraining, 4-5 DEC); ACC
0.910 +- 0.039, NMI 0.866 +- 0.022, ARI 0.853 +- 0.039 over seeds 0-4
(AE + k-means before DEC: ACC 0.858 +- 0.029). 10 epochs instead of 50
gave ACC 0.693 (seed 0; AE + k-means 0.700): see docs/results.md, "Time
to accuracy: how much pretraining DEC needs".
"""

from experiments.configs import default


def get_config():
  config = default.get_config()
  config.dataset = "mnist"
  config.pretrain.epochs = 50
  return config
