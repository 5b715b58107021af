"""N2D: UMAP of the autoencoder embedding, then a Gaussian mixture."""

import json
import os

import numpy as np
import pytest

from dec_jax.runner import checks
from dec_jax.core import n2d
from dec_jax.errors import DecJaxError
from dec_jax.runner.run import run
from tests.conftest import independent_scores
from tests.test_end_to_end import tiny_config


def test_n2d_separates_blobs_and_is_deterministic():
  from sklearn.datasets import make_blobs
  z, y = make_blobs(n_samples=150, centers=3, n_features=5, cluster_std=0.5,
                    random_state=1)
  first = n2d.cluster(z, 3, n_neighbors=10, seed=0)
  second = n2d.cluster(z, 3, n_neighbors=10, seed=0)
  assert first.embedding.shape == (150, 3)  # n_components = k
  assert first.posteriors.shape == (150, 3)
  np.testing.assert_allclose(first.posteriors.sum(1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(first.labels, first.posteriors.argmax(1))
  np.testing.assert_array_equal(first.labels, second.labels)
  np.testing.assert_array_equal(first.embedding, second.embedding)
  # Each blob is one cluster.
  from sklearn.metrics import adjusted_rand_score
  assert adjusted_rand_score(y, first.labels) == pytest.approx(1.0)


def test_gmm_info_reports_whether_the_mixture_converged(monkeypatch):
  """gmm_converged is the mixture's own verdict: True where EM converges,
  False where it is stopped after one step; n_iter counts EM steps."""
  from sklearn import mixture
  from sklearn.datasets import make_blobs
  u, _ = make_blobs(n_samples=150, centers=3, n_features=3, cluster_std=0.3,
                    random_state=0)
  _, _, info = n2d.fit_gmm(u, 3, covariance_type="full", seed=0)
  assert info["gmm_converged"] is True
  assert 1 <= info["gmm_n_iter"] < 100  # sklearn's max_iter: stopped early
  assert np.isfinite(info["gmm_lower_bound"])
  one_step = mixture.GaussianMixture
  monkeypatch.setattr(mixture, "GaussianMixture",
                      lambda **kwargs: one_step(max_iter=1, tol=0.0,
                                                **kwargs))
  _, _, info = n2d.fit_gmm(u, 3, covariance_type="full", seed=0)
  assert info["gmm_converged"] is False and info["gmm_n_iter"] == 1


def test_n2d_runs_end_to_end(tmp_path, blobs_npz):
  config = tiny_config(blobs_npz, method="n2d", report=False,
                       tensorboard=False)
  config.n2d.n_neighbors = 10
  results = run(config, str(tmp_path / "run"))
  assert results["method"] == "n2d"
  assert results["acc"] > 0.9
  assert {"pretrain", "embed", "n2d", "umap", "gmm"} <= set(results["times_s"])
  # Four tight UMAP clumps: the mixture converges before max_iter.
  assert results["n2d"]["gmm_converged"] is True
  assert 1 <= results["n2d"]["gmm_n_iter"] < 100
  with np.load(tmp_path / "run" / "assignments.npz") as saved:
    assert saved["q"].shape == (240, 4)
    np.testing.assert_array_equal(saved["labels"], saved["q"].argmax(1))
    labels = saved["labels"]
  recomputed = independent_scores(np.load(blobs_npz)["y"], labels)
  for key in ("acc", "nmi", "ari"):
    assert results[key] == pytest.approx(recomputed[key], abs=1e-12)
  records = [json.loads(l) for l in open(tmp_path / "run" / "metrics.jsonl")]
  n2d_record, = [r for r in records if r["stage"] == "n2d"]
  assert n2d_record["acc"] == pytest.approx(recomputed["acc"], abs=1e-12)
  assert {k: n2d_record[k] for k in results["n2d"]} == results["n2d"]


@pytest.mark.parametrize("grid,umaps", [
    ('{"dec.learning_rate": [0.01, 0.02]}', [0, 1]),  # one autoencoder: shared
    ('{"pretrain.learning_rate": [0.001, 0.002]}', [0, 0, 1, 1])])  # two
def test_grid_points_share_n2d_only_where_its_inputs_match(
    tmp_path, blobs_npz, monkeypatch, grid, umaps):
  fitted = []
  cluster = n2d.cluster
  monkeypatch.setattr(n2d, "cluster", lambda z, k, **kw:
                      fitted.append(kw["seed"]) or cluster(z, k, **kw))
  config = tiny_config(blobs_npz, method="n2d", report=False,
                       tensorboard=False, seeds="0,1", grid=grid)
  config.n2d.n_neighbors = 10
  run(config, str(tmp_path / "w"))
  assert sorted(fitted) == umaps
  key, values = next(iter(json.loads(grid).items()))
  for seed in (0, 1):
    results = [json.load(open(tmp_path / "w" / f"{key}={v}" / f"seed{seed}" /
                              "results.json")) for v in values]
    assert all(r["acc"] > 0.9 for r in results)
    if len(umaps) == 2:  # shared: the same labels in both grid points
      assert results[0]["n2d"] == results[1]["n2d"]


@pytest.mark.parametrize("field,value,match", [
    ("n_neighbors", 1, "n_neighbors"),
    ("min_dist", -0.5, "min_dist"),
    ("metric", "nope", "metric"),
    ("covariance_type", "banana", "covariance_type"),
    ("gmm_n_init", 0, "gmm_n_init"),
])
def test_bad_n2d_settings_are_rejected(field, value, match):
  config = tiny_config("digits", method="n2d")
  config.n2d[field] = value
  with pytest.raises(DecJaxError, match=match):
    checks.validate_config(config)


def test_n2d_rejects_auto_k_and_too_many_neighbours(tmp_path, blobs_npz):
  config = tiny_config(blobs_npz, method="n2d", n_clusters="auto")
  with pytest.raises(DecJaxError, match="fixed n_clusters"):
    checks.validate_config(config)
  config = tiny_config(blobs_npz, method="n2d")
  config.n2d.n_neighbors = 500
  with pytest.raises(DecJaxError, match="n_neighbors"):
    run(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")  # rejected before writing
