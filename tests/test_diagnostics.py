"""Run checks: starved clusters, near-uniform soft assignments, and
autoencoders that did not learn."""

import json

import numpy as np
import pytest

from dec_jax.core import diagnostics
from dec_jax.runner.run import run
from dec_jax.runner.workdir import read_metrics
from tests.test_end_to_end import tiny_config


def test_small_clusters_are_those_under_the_fraction_of_balanced_size():
  # Balanced size 100; threshold 0.1 * 100 = 10 points.
  assert diagnostics.small_clusters([190, 9, 101, 100], 0.1) == [1]
  assert diagnostics.small_clusters([100, 100, 0, 200], 0.1) == [2]
  assert diagnostics.small_clusters([100, 100], 0.0) == []


def test_near_uniform_q_is_flagged():
  flags = diagnostics.collapse_flags([50, 50, 50, 50], 0.1, mean_max_q=0.3)
  assert flags == {"small_clusters": [], "near_uniform_q": True}
  assert diagnostics.is_collapsed(flags)
  assert not diagnostics.is_collapsed(
      diagnostics.collapse_flags([50, 50, 50, 50], 0.1, mean_max_q=0.9))


def test_starved_cluster_is_flagged_in_metrics_and_results(tmp_path):
  # Three blobs of 100 points and one of 3: k = 4 leaves one cluster starved.
  rng = np.random.default_rng(0)
  centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], np.float32)
  sizes = [100, 100, 100, 3]
  x = np.concatenate([c + 0.3 * rng.standard_normal((s, 2))
                      for c, s in zip(centres, sizes)]).astype(np.float32)
  y = np.repeat(np.arange(4), sizes)
  path = tmp_path / "starved.npz"
  np.savez(path, x=x, y=y)
  results = run(tiny_config(str(path)), str(tmp_path / "run"))
  assert results["collapse"]["small_clusters"]
  assert results["collapse"]["first_flagged_iteration"] == 0
  dec_records = [r for r in read_metrics(str(tmp_path / "run"))
                 if r["stage"] == "dec"]
  assert all(r["small_clusters"] for r in dec_records)
  # Every target update was flagged, and each is counted.
  assert results["collapse"]["flagged_updates"] == len(dec_records) > 1
  # mean_max_q is the saved q's mean confidence, and the near-uniform flag
  # compares it with 1.5 / k.
  q = np.load(tmp_path / "run" / "assignments.npz")["q"]
  assert results["mean_max_q"] == pytest.approx(q.max(axis=1).mean(),
                                                rel=1e-6)
  assert results["collapse"]["near_uniform_q"] == bool(
      q.max(axis=1).mean() < 1.5 / 4)
  assert set(results["per_class_recall"]) == {0, 1, 2, 3}


def test_reseed_moves_an_empty_clusters_centre_to_the_farthest_point():
  import jax.numpy as jnp
  from dec_jax.train.dec_loop import reseed_small_clusters
  z = jnp.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0]])
  centres = jnp.array([[0.0, 0.0], [100.0, 100.0]])  # the second one is empty
  new, reseeded = reseed_small_clusters(z, centres, 0.1)
  np.testing.assert_array_equal(reseeded, [False, True])
  np.testing.assert_allclose(new, [[0.0, 0.0], [5.0, 5.0]])
  same, none = reseed_small_clusters(z, new, 0.1)
  assert not none.any()
  np.testing.assert_allclose(same, new)


def _two_blobs(tmp_path) -> str:
  rng = np.random.default_rng(0)
  x = np.concatenate([rng.normal(0, 0.3, (150, 2)), rng.normal(8, 0.3, (150, 2))])
  path = tmp_path / "two.npz"
  np.savez(path, x=x.astype(np.float32))
  return str(path)


def _reseeded(workdir) -> bool:
  return any(r.get("reseeded") for r in read_metrics(str(workdir))
             if r["stage"] == "dec")


def test_reseeding_is_logged_when_enabled(tmp_path, monkeypatch):
  from dec_jax.train import dec_loop  # pylint: disable=g-import-not-at-top
  moved = []
  forget = dec_loop.forget_moved_centres
  monkeypatch.setattr(dec_loop, "forget_moved_centres", lambda opt, mask:
                      moved.append(int(np.asarray(mask).sum()))
                      or forget(opt, mask))
  config = tiny_config(_two_blobs(tmp_path), n_clusters=6,
                       dec={"reseed_fraction": 0.9})
  run(config, str(tmp_path / "run"))
  assert _reseeded(tmp_path / "run")
  assert sum(moved) > 0  # the moved centres' optimizer moments were reset


@pytest.mark.parametrize("optimizer", ["sgd_momentum", "adam"])
def test_a_reseeded_centre_starts_at_rest(optimizer):
  """The moved centre's momentum (SGD's trace, Adam's first moment) is
  zeroed, in its member only; Adam's second moment, the other centres' and
  the encoder's states are kept. So its next step, under the gradient it
  had all along, is smaller than the others' (at rest), not larger (a
  zeroed second moment made it about 3x larger after 500 steps)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from dec_jax.train import dec_loop  # pylint: disable=g-import-not-at-top
  tx = (optax.sgd(0.1, momentum=0.9) if optimizer == "sgd_momentum"
        else optax.adam(0.1))
  params = {"encoder": {"w": jnp.ones((2, 3, 4))},  # 2 members
            "centres": jnp.ones((2, 5, 4))}
  grads = jax.tree.map(jnp.ones_like, params)
  update = jax.vmap(lambda g, o, p: tx.update(g, o, p))
  opt = jax.vmap(tx.init)(params)
  for _ in range(500):
    opt = update(grads, opt, params)[1]
  moved = jnp.zeros((2, 5), bool).at[1, 3].set(True)
  after = dec_loop.forget_moved_centres(opt, moved)
  for (path, new), old in zip(jax.tree_util.tree_leaves_with_path(after),
                              jax.tree_util.tree_leaves(opt)):
    name = jax.tree_util.keystr(path)
    if "centres" in name and ".nu" not in name:
      assert float(jnp.abs(old[1, 3]).max()) > 0.0, name
      old = np.asarray(old).copy()
      old[1, 3] = 0.0  # that row alone zeroed
    np.testing.assert_array_equal(new, old, err_msg=name)
  steps = np.abs(np.asarray(update(grads, after, params)[0]["centres"][1]))
  assert steps[3].max() < steps[0].min()


def test_each_grid_point_reseeds_by_its_own_fraction(tmp_path):
  # The first point does not reseed; the second must, in the same program.
  config = tiny_config(_two_blobs(tmp_path), n_clusters=6, seeds="0",
                       grid='{"dec.reseed_fraction": [0.0, 0.9]}')
  run(config, str(tmp_path / "run"))
  assert not _reseeded(tmp_path / "run" / "dec.reseed_fraction=0.0" / "seed0")
  assert _reseeded(tmp_path / "run" / "dec.reseed_fraction=0.9" / "seed0")


def test_mean_image_loss_is_the_mean_per_feature_variance():
  x = np.random.default_rng(0).integers(0, 256, (50, 3, 3)).astype(np.uint8)
  expected = np.mean(np.var(x / 255.0, axis=0))
  assert diagnostics.mean_image_loss(x, 255.0, chunk_size=7) == pytest.approx(
      expected, rel=1e-12)
  constant = np.full((10, 4), 3.0, np.float32)
  assert diagnostics.mean_image_loss(constant) == 0.0


@pytest.mark.parametrize("learning_rate, untrained", [(1e-2, False),
                                                      (1e-9, True)])
def test_an_autoencoder_that_did_not_learn_is_flagged(tmp_path, blobs_npz,
                                                      learning_rate,
                                                      untrained):
  # lr 1e-9: the autoencoders stay at their random start, worse than the
  # mean image; lr 1e-2 (Adam, 20 epochs) trains them to 0.01 of it.
  config = tiny_config(blobs_npz, seeds="0,1",
                       pretrain={"learning_rate": learning_rate})
  summary = run(config, str(tmp_path / "run"))
  assert [m["autoencoder_untrained"] for m in summary["members"]] == [
      untrained] * 2
  for seed in (0, 1):
    member = json.load(open(tmp_path / "run" / f"seed{seed}" /
                            "results.json"))
    ratio = member["reconstruction_loss"] / member["mean_image_loss"]
    assert member["autoencoder_untrained"] is untrained
    assert ratio > 1 if untrained else ratio < 0.5
    logged = [r for r in read_metrics(str(tmp_path / "run" / f"seed{seed}"))
              if r["stage"] == "reconstruction"]
    assert logged[0]["autoencoder_untrained"] is untrained


def test_kmeans_that_leaves_clusters_empty_is_reported(tmp_path, blobs_npz,
                                                       monkeypatch):
  # Features with fewer distinct groups than k (here: k-means made to use
  # only 2 of its 4 clusters) are said in results.json, not passed on.
  from dec_jax.core import kmeans  # pylint: disable=g-import-not-at-top
  fit = kmeans.fit_kmeans
  monkeypatch.setattr(kmeans, "fit_kmeans", lambda *a, **k: (
      lambda r: r._replace(labels=r.labels % 2))(fit(*a, **k)))
  results = run(tiny_config(blobs_npz, method="kmeans"),
                str(tmp_path / "run"))
  assert results["kmeans_empty_clusters"] == 2
  monkeypatch.undo()
  results = run(tiny_config(blobs_npz, method="kmeans"),
                str(tmp_path / "again"))
  assert "kmeans_empty_clusters" not in results
