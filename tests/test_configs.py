"""Every shipped config file passes the config checks."""

import glob
import importlib
import os

import pytest

from dec_jax.runner import members
from dec_jax.runner.checks import validate_config

CONFIGS = sorted(
    os.path.splitext(os.path.basename(p))[0] for p in glob.glob(
        os.path.join(os.path.dirname(__file__), "..", "experiments", "configs",
                     "*.py")) if not p.endswith("__init__.py"))


@pytest.mark.parametrize("name", CONFIGS)
def test_config_file_is_valid(name):
  config = importlib.import_module(f"experiments.configs.{name}").get_config()
  validate_config(config)
  assert config.dec.update_interval <= config.dec.maxiter


def test_mnist_configs_differ_only_in_pretraining():
  from experiments.configs import mnist, mnist_dec_keras
  a, b = mnist.get_config().to_dict(), mnist_dec_keras.get_config().to_dict()
  assert {k for k in a if a[k] != b[k]} == {"pretrain"}
  assert b["pretrain"]["optimizer"] == "sgd" and b["pretrain"]["epochs"] == 300


def test_n2d_consensus_builds_on_the_named_autoencoder_recipe():
  from experiments.configs import mnist, n2d_consensus
  config = n2d_consensus.get_config("mnist")
  assert (config.method, config.ensemble) == ("n2d", "consensus")
  assert members.parse_seeds(config.seeds) == (0, 1, 2, 3, 4)
  assert config.pretrain.to_dict() == mnist.get_config().pretrain.to_dict()
  with pytest.raises(ValueError, match="unknown autoencoder recipe 'mnst'"):
    n2d_consensus.get_config("mnst")


def test_n2d_consensus_on_augmented_autoencoders_keeps_dec_da_pretraining():
  from experiments.configs import mnist_dec_da, n2d_consensus
  config = n2d_consensus.get_config("mnist_dec_da")
  assert config.method == "n2d" and config.augment
  assert config.pretrain.to_dict() == (
      mnist_dec_da.get_config().pretrain.to_dict())
