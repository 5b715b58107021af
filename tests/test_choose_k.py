"""n_clusters=auto: the silhouette over a range of k picks the true k."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from dec_jax.core import choose_k, kmeans
from dec_jax.errors import DecJaxError
from dec_jax.runner.run import run
from dec_jax.runner.workdir import read_metrics
from tests.test_end_to_end import tiny_config


def test_best_k_takes_the_highest_silhouette_smallest_on_ties():
  assert choose_k.best_k({2: 0.3, 3: 0.7, 4: 0.5}) == 3
  assert choose_k.best_k({2: 0.5, 3: 0.5}) == 2


@pytest.mark.parametrize("offset,dtype", [(1e4, np.float32),
                                          (1e8, np.float64)])
def test_silhouette_curve_unchanged_by_a_large_common_offset(offset, dtype):
  # 1e4: an offset float32 embedding; 1e8: float64 features, where sklearn's
  # expanded distances alone are off by ~1e-3. The features lie on a 2^-6
  # grid, exact at both offsets, so any difference is the computation's.
  x, y = make_blobs(n_samples=200, centers=3, n_features=4, random_state=0)
  x = np.round(x * 64) / 64
  labels = {k: (y + np.arange(200) // 50) % k for k in range(2, 5)}

  def curve(shift):
    return choose_k.silhouette_curve((x + shift).astype(dtype), range(2, 5),
                                     labels.get, seed=0)

  shifted, plain = curve(offset), curve(0.0)
  assert shifted == pytest.approx(plain, abs=1e-9)


@pytest.mark.parametrize("method", ["kmeans", "ae_kmeans"])
def test_auto_k_finds_the_number_of_blobs(tmp_path, method, monkeypatch):
  x, y = make_blobs(n_samples=300, centers=5, n_features=6, cluster_std=0.5,
                    random_state=3)
  path = tmp_path / "blobs.npz"
  np.savez(path, x=x.astype(np.float32), y=y)
  config = tiny_config(str(path), method=method, n_clusters="auto",
                       auto_k={"min": 2, "max": 8})
  config.pretrain.epochs = 60
  config.kmeans.backend = "sklearn"  # no compile per k: the test is choose_k's
  fitted = []
  fit = kmeans.fit_kmeans
  monkeypatch.setattr(kmeans, "fit_kmeans",
                      lambda x, k, **kw: fitted.append(k) or fit(x, k, **kw))
  results = run(config, str(tmp_path / "run"))
  assert fitted == list(range(2, 9))  # each k once, the chosen one too
  assert results["n_clusters"] == 5
  auto = results["n_clusters_auto"]
  assert auto["chosen"] == 5 and auto["criterion"] == "silhouette"
  assert sorted(auto["curve"]) == list(range(2, 9))
  logged = [r for r in read_metrics(str(tmp_path / "run"))
            if r["stage"] == "choose_k"]
  assert [r["k"] for r in logged] == list(range(2, 9))
  assert len(results["cluster_sizes"]) == 5


def test_auto_k_range_is_checked_before_running(tmp_path, blobs_npz):
  with pytest.raises(DecJaxError, match="auto_k.max"):
    run(tiny_config(blobs_npz, n_clusters="auto",
                    auto_k={"min": 2, "max": 1000}), str(tmp_path / "never"))
  with pytest.raises(DecJaxError, match="n_clusters must be"):
    run(tiny_config(blobs_npz, n_clusters="many"), str(tmp_path / "never"))
  assert not (tmp_path / "never").exists()
