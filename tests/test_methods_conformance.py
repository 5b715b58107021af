"""One conformance test over every registered method (as optax tests every
transformation): on tiny blobs each method fits; the same seed twice gives
identical labels; a second run of the same settings in one process compiles
nothing again; a stack of seeds gives each seed what its own run gives
(up to float summation order); and a run killed right after its first
checkpoint, rerun, ends exactly where the uninterrupted run ends. A new
method registered in dec_jax/methods/ is tested here without a line added."""

import os

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from dec_jax import methods
from dec_jax.runner import run as run_lib
from dec_jax.runner.workdir import Workdir, read_json
from tests.conftest import lowerings
from tests.test_end_to_end import tiny_config

# Stacked vs separate runs: the same partition up to float summation order
# (ARI, as N2D's mixture may number the same clusters differently).
MIN_ARI_TO_OWN_RUN = 0.95


def _config(path, method, **overrides):
  config = tiny_config(path, method=method, **overrides)
  config.pretrain.epochs, config.pretrain.checkpoint_every = 10, 5
  config.dec.maxiter, config.dec.update_interval = 20, 5
  config.dec.checkpoint_every = 10
  config.kmeans.n_init = 2
  config.n2d.n_neighbors = 10
  return config


def _labels(workdir):
  return np.load(os.path.join(workdir, "assignments.npz"))["labels"]


@pytest.mark.parametrize("name", sorted(methods.METHODS))
def test_method_conformance(tmp_path, blobs_npz, name, monkeypatch):
  method = methods.get(name)
  runs = {0: run_lib.run(_config(blobs_npz, name, seed=0),
                        str(tmp_path / "seed0"))}
  with lowerings() as lowered:  # another seed: the same programs
    runs[1] = run_lib.run(_config(blobs_npz, name, seed=1),
                          str(tmp_path / "seed1"))
  assert not lowered, f"{len(lowered)} programs compiled again"
  for seed, result in runs.items():  # it fits
    assert result["method"] == name and result["ari"] > 0.5, result["ari"]
    assert len(_labels(tmp_path / f"seed{seed}")) == result["n_samples"]

  run_lib.run(_config(blobs_npz, name, seed=0), str(tmp_path / "again"))
  np.testing.assert_array_equal(_labels(tmp_path / "again"),
                                _labels(tmp_path / "seed0"))

  stacked = run_lib.run(_config(blobs_npz, name, seeds="0,1"),
                        str(tmp_path / "stack"))
  assert stacked["groups"] == [["seed 0", "seed 1"]]
  for seed in (0, 1):
    agree = adjusted_rand_score(_labels(tmp_path / "stack" / f"seed{seed}"),
                                _labels(tmp_path / f"seed{seed}"))
    assert agree >= MIN_ARI_TO_OWN_RUN, (seed, agree)

  saved = []
  save_params = Workdir.save_params

  def save_then_die(self, checkpoint, params, meta):
    save_params(self, checkpoint, params, meta)
    if checkpoint.endswith("_partial"):
      saved.append(checkpoint)
      raise KeyboardInterrupt

  monkeypatch.setattr(Workdir, "save_params", save_then_die)
  killed = str(tmp_path / "killed")
  if not method.needs_autoencoder:  # nothing to checkpoint: it just runs
    run_lib.run(_config(blobs_npz, name, seed=0), killed)
    assert not saved
  else:
    with pytest.raises(KeyboardInterrupt):
      run_lib.run(_config(blobs_npz, name, seed=0), killed)
    monkeypatch.undo()
    run_lib.run(_config(blobs_npz, name, seed=0), killed)
  np.testing.assert_array_equal(_labels(killed), _labels(tmp_path / "seed0"))
  assert read_json(os.path.join(killed, "results.json"))["ari"] == \
      runs[0]["ari"]
