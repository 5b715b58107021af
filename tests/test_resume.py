"""An interrupted pretraining resumes from its last checkpoint and ends
exactly where an uninterrupted run ends."""

import jax
import numpy as np
import pytest

from dec_jax import run as run_lib
from dec_jax.workdir import Workdir, load_params
from tests.test_end_to_end import tiny_config


def test_killed_pretraining_resumes_to_the_same_result(tmp_path, blobs_npz,
                                                       monkeypatch):
  config = tiny_config(blobs_npz, method="ae_kmeans",
                       pretrain={"epochs": 10, "checkpoint_every": 4,
                                 "log_every": 2})
  whole = run_lib.run(config, str(tmp_path / "whole"))

  save_params = Workdir.save_params

  def save_then_die(self, name, params, meta):
    save_params(self, name, params, meta)
    if name == run_lib.PARTIAL and meta["epoch"] == 8:
      raise KeyboardInterrupt  # killed right after the epoch-8 checkpoint

  monkeypatch.setattr(Workdir, "save_params", save_then_die)
  with pytest.raises(KeyboardInterrupt):
    run_lib.run(config, str(tmp_path / "killed"))
  monkeypatch.undo()
  resumed = run_lib.run(config, str(tmp_path / "killed"))

  assert resumed["pretrain_resumed_from_epoch"] == 8
  assert load_params(str(tmp_path / "killed"), run_lib.PARTIAL) is None
  jax.tree.map(np.testing.assert_array_equal,
               load_params(str(tmp_path / "whole"), run_lib.AUTOENCODER),
               load_params(str(tmp_path / "killed"), run_lib.AUTOENCODER))
  for key in ("acc", "nmi", "ari", "cluster_sizes"):
    assert resumed[key] == whole[key]


def test_partial_checkpoint_of_other_settings_is_not_resumed(tmp_path,
                                                             blobs_npz,
                                                             monkeypatch):
  config = tiny_config(blobs_npz, method="ae_kmeans",
                       pretrain={"epochs": 10, "checkpoint_every": 4})
  save_params = Workdir.save_params

  def save_then_die(self, name, params, meta):
    save_params(self, name, params, meta)
    if name == run_lib.PARTIAL:
      raise KeyboardInterrupt

  monkeypatch.setattr(Workdir, "save_params", save_then_die)
  with pytest.raises(KeyboardInterrupt):
    run_lib.run(config, str(tmp_path / "w"))
  monkeypatch.undo()
  changed = run_lib.run(tiny_config(
      blobs_npz, method="ae_kmeans", pretrain={"epochs": 10,
                                               "checkpoint_every": 4,
                                               "learning_rate": 0.002}),
                        str(tmp_path / "w"))
  assert "pretrain_resumed_from_epoch" not in changed
