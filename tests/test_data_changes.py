"""Checkpoints are reused only for the data they were made from: a data
file changed in place (same path) means retraining, and the log says why."""

import json
import logging
import os

import numpy as np
import pytest

from dec_jax.runner import data
from dec_jax.runner import run as run_lib
from dec_jax.runner import stack
from dec_jax.methods.dec import DEC_PARTIAL
from dec_jax.errors import DecJaxError
from dec_jax.runner.workdir import (DATA_FINGERPRINT, load_meta, read_json,
                                    read_metrics)
from tests.test_end_to_end import tiny_config
from tests.test_resume import _dec_config, _interrupted_run

CHANGED = "the data changed since the checkpoint was saved"


@pytest.fixture
def blobs(tmp_path):
  """A small labelled .npz that the tests change in place."""
  from sklearn.datasets import make_blobs
  x, y = make_blobs(n_samples=120, centers=4, n_features=8, cluster_std=0.6,
                    random_state=0)
  path = str(tmp_path / "blobs.npz")
  np.savez(path, x=x.astype(np.float32), y=y)
  return path


def _change_one_value(path):
  with np.load(path) as saved:
    x, y = saved["x"].copy(), saved["y"]
  x[7, 3] += 0.5
  np.savez(path, x=x, y=y)


def _ae_kmeans(path, **overrides):
  config = tiny_config(path, method="ae_kmeans", overwrite=True, **overrides)
  config.pretrain.epochs = 4
  return config


def _not_reused(workdir, name):
  """The reasons logged for not reusing checkpoint `name`."""
  return [r["reason"] for r in read_metrics(workdir)
          if r.get("stage") == "checkpoint" and r["checkpoint"] == name]


def test_autoencoder_is_reused_for_the_same_data_only(tmp_path, blobs,
                                                      caplog):
  workdir = str(tmp_path / "w")
  assert "pretrain_reused" not in run_lib.run(_ae_kmeans(blobs), workdir)
  assert run_lib.run(_ae_kmeans(blobs), workdir)["pretrain_reused"]
  assert not _not_reused(workdir, stack.AUTOENCODER)

  _change_one_value(blobs)
  caplog.set_level(logging.INFO)
  results = run_lib.run(_ae_kmeans(blobs), workdir)
  assert "pretrain_reused" not in results  # retrained on the new data
  [reason] = _not_reused(workdir, stack.AUTOENCODER)
  assert reason.startswith(CHANGED)
  assert CHANGED in caplog.text  # absl's log too, not only metrics.jsonl
  # The retrained autoencoder is reused for the changed file.
  assert run_lib.run(_ae_kmeans(blobs), workdir)["pretrain_reused"]


def test_autoencoder_saved_without_a_fingerprint_is_not_reused(tmp_path,
                                                                blobs):
  workdir = str(tmp_path / "w")
  run_lib.run(_ae_kmeans(blobs), workdir)
  described = os.path.join(workdir, "checkpoints", "autoencoder.json")
  with open(described) as f:
    meta = json.load(f)
  del meta[DATA_FINGERPRINT]  # as an older dec_jax saved it
  with open(described, "w") as f:
    json.dump(meta, f)
  assert "pretrain_reused" not in run_lib.run(_ae_kmeans(blobs), workdir)
  [reason] = _not_reused(workdir, stack.AUTOENCODER)
  assert "without a fingerprint of its data" in reason


def test_partial_pretraining_of_other_data_is_not_resumed(tmp_path, blobs,
                                                          monkeypatch):
  config = _ae_kmeans(blobs)
  config.pretrain.epochs, config.pretrain.checkpoint_every = 8, 4
  workdir = str(tmp_path / "w")
  _interrupted_run(config, workdir, monkeypatch, stack.PARTIAL, "epoch", 4)
  _change_one_value(blobs)
  assert "pretrain_resumed_from_epoch" not in run_lib.run(config, workdir)
  [reason] = _not_reused(workdir, stack.PARTIAL)
  assert reason.startswith(CHANGED)


def test_partial_clustering_of_other_data_is_not_resumed(tmp_path, blobs,
                                                         monkeypatch):
  config = _dec_config(blobs)
  workdir = str(tmp_path / "w")
  _interrupted_run(config, workdir, monkeypatch, DEC_PARTIAL,
                   "iteration", 40)
  _change_one_value(blobs)
  results = run_lib.run(config, workdir)
  assert "dec_resumed_from_iteration" not in results
  assert "pretrain_reused" not in results
  [reason] = _not_reused(workdir, DEC_PARTIAL)
  assert reason.startswith(CHANGED)


def test_partial_clustering_of_the_same_data_is_resumed(tmp_path, blobs,
                                                        monkeypatch):
  config = _dec_config(blobs)
  workdir = str(tmp_path / "w")
  _interrupted_run(config, workdir, monkeypatch, DEC_PARTIAL,
                   "iteration", 40)
  assert run_lib.run(config, workdir)["dec_resumed_from_iteration"] == 40
  assert not _not_reused(workdir, DEC_PARTIAL)
  # The trained model's description names the data it was made from.
  assert load_meta(workdir, "dec")[DATA_FINGERPRINT] == data.load(
      blobs).fingerprint


def test_pretrained_workdir_of_changed_data_is_refused(tmp_path, blobs):
  source = str(tmp_path / "ae")
  run_lib.run(_ae_kmeans(blobs), source)
  _change_one_value(blobs)
  config = tiny_config(blobs, method="dec", pretrained_workdir=source)
  with pytest.raises(DecJaxError, match=f"cannot be reused: {CHANGED}"):
    run_lib.run(config, str(tmp_path / "dec"))
  assert not os.path.exists(tmp_path / "dec")


def test_pretrained_workdir_of_another_input_scale_is_refused(tmp_path,
                                                             blobs):
  """The data's fingerprint is the raw arrays': an autoencoder pretrained on
  x / 1 must not be reused on x / 10. A scale that resolves to the same
  number (auto is 1 for float data) is the same scale."""
  source = str(tmp_path / "ae")
  run_lib.run(_ae_kmeans(blobs), source)
  assert load_meta(source, stack.AUTOENCODER)["input_scale"] == 1.0
  config = tiny_config(blobs, method="ae_kmeans", scale="10",
                       pretrained_workdir=source)
  with pytest.raises(DecJaxError, match="pretrained on inputs divided by 1; "
                     "this run divides them by 10"):
    run_lib.run(config, str(tmp_path / "scaled"))
  assert not os.path.exists(tmp_path / "scaled")
  same = tiny_config(blobs, method="ae_kmeans", scale="1",
                     pretrained_workdir=source)
  assert run_lib.run(same, str(tmp_path / "same"))["pretrain_reused"]


def test_a_stack_retrains_the_autoencoders_of_changed_data(tmp_path, blobs):
  config = _ae_kmeans(blobs, seeds="0,1")
  workdir = str(tmp_path / "seeds")

  def reused():  # each member's results.json: its autoencoder reused?
    return [read_json(os.path.join(
        workdir, f"seed{seed}", "results.json")).get("pretrain_reused", False)
            for seed in (0, 1)]

  run_lib.run(config, workdir)
  assert reused() == [False, False]
  run_lib.run(config, workdir)  # same data: both autoencoders reused
  assert reused() == [True, True]
  _change_one_value(blobs)
  run_lib.run(config, workdir)
  assert reused() == [False, False]  # both retrained, and the logs say why
  for seed in (0, 1):
    [reason] = _not_reused(os.path.join(workdir, f"seed{seed}"),
                           stack.AUTOENCODER)
    assert reason.startswith(CHANGED)