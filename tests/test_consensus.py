"""The label-free consensus over a stack's members (core.consensus) and
`--config.ensemble=consensus` on the runner."""

import json
import os

import numpy as np
import pytest
from sklearn import datasets
from sklearn.metrics import adjusted_rand_score

from dec_jax.core import consensus
from dec_jax.errors import DecJaxError
from dec_jax.runner import config as config_lib
from dec_jax.runner import data
from dec_jax.runner import ensemble
from dec_jax.runner.run import run
from tests.test_end_to_end import tiny_config

RNG = np.random.default_rng(0)
TRUTH = np.repeat(np.arange(10), 50)  # 10 clusters of 50 points


def _renumbered(labels, seed):
  return np.random.default_rng(seed).permutation(10)[labels]


def _merges_4_and_9_splits_1(labels):
  """DEC's typical failure: two classes merged, another split in two."""
  out = labels.copy()
  out[labels == 9] = 4
  ones = np.flatnonzero(labels == 1)
  out[ones[: len(ones) // 2]] = 9
  return out


@pytest.mark.parametrize("combine", consensus.COMBINE)
def test_renumbered_copies_give_the_partition_back(combine):
  members = np.stack([_renumbered(TRUTH, s) for s in range(4)])
  result = consensus.consensus(members, 10, combine=combine)
  assert adjusted_rand_score(TRUTH, result.labels) == 1.0
  np.testing.assert_allclose(result.agreement, 1.0)


@pytest.mark.parametrize("combine", consensus.COMBINE)
def test_a_structured_error_of_a_minority_is_outvoted(combine):
  good = [_renumbered(TRUTH, s) for s in range(3)]
  bad = [_renumbered(_merges_4_and_9_splits_1(TRUTH), s) for s in (7, 8)]
  members = np.stack([bad[0], good[0], bad[1], good[1], good[2]])
  result = consensus.consensus(members, 10, combine=combine)
  assert result.reference in (1, 3, 4)  # a good member is the medoid
  assert adjusted_rand_score(TRUTH, result.labels) == 1.0


def test_kmeans_combine_recovers_the_partition_in_the_references_numbers():
  """k-means on the concatenated one-hot labels (and on soft assignments)
  finds the majority's partition despite a minority's structured error,
  numbered as the medoid member numbers its clusters."""
  good = [_renumbered(TRUTH, s) for s in range(3)]
  bad = [_renumbered(_merges_4_and_9_splits_1(TRUTH), s) for s in (7, 8)]
  members = np.stack([bad[0], good[0], bad[1], good[1], good[2]])
  soft = [np.eye(10)[m] * 0.9 + 0.01 for m in members]
  for given in (None, soft):
    result = consensus.consensus(members, 10, given, combine="kmeans")
    assert adjusted_rand_score(TRUTH, result.labels) == 1.0
    np.testing.assert_array_equal(result.labels, members[result.reference])


def test_kmeans_combine_is_kmeans_of_the_concatenated_assignments():
  """On noisy members (30 % of each one's labels redrawn) the k-means
  combination is the partition scikit-learn's k-means finds on the
  concatenated one-hot labels, which here is not the vote's."""
  from sklearn.cluster import KMeans  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(12)
  truth = np.repeat(np.arange(3), 20)
  members = []
  for _ in range(3):
    noisy = truth.copy()
    flip = rng.random(60) < 0.3
    noisy[flip] = rng.integers(0, 3, flip.sum())
    members.append(rng.permutation(3)[noisy])
  members = np.stack(members)
  combined = consensus.consensus(members, 3, combine="kmeans").labels
  x = np.concatenate([np.eye(3)[m] for m in members], axis=1)
  expected = KMeans(3, n_init=10, random_state=0).fit(x).labels_
  assert adjusted_rand_score(expected, combined) == 1.0
  vote = consensus.consensus(members, 3, combine="vote").labels
  assert adjusted_rand_score(vote, combined) < 0.9


def test_two_hard_label_members_give_the_reference_back():
  """Documented limit of the vote: with 2 members, every disagreement is a
  1-1 tie, which the reference wins (in its own cluster numbers)."""
  a = _merges_4_and_9_splits_1(TRUTH)
  b = _renumbered(TRUTH, 3)
  result = consensus.consensus(np.stack([a, b]), 10, combine="vote")
  reference = (a, b)[result.reference]
  np.testing.assert_array_equal(result.labels, reference)


def test_cluster_means_fall_back_where_a_cluster_is_empty():
  z = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0]])
  fallback = np.full((3, 2), -1.0)
  means = consensus.cluster_means(z, np.array([0, 0, 2]), fallback)
  np.testing.assert_allclose(means, [[1.0, 0.0], [-1.0, -1.0], [10.0, 10.0]])
  # a member's rows renumbered: its cluster c is the consensus's alignment[c]
  np.testing.assert_array_equal(
      consensus.aligned(np.array([10, 11, 12]), np.array([2, 0, 1])),
      [11, 12, 10])


def test_alignment_is_the_maximum_overlap_renumbering():
  perm = RNG.permutation(10)
  noisy = perm[TRUTH].copy()
  noisy[::7] = RNG.integers(0, 10, size=noisy[::7].shape)
  mapping = consensus.align(TRUTH, noisy, 10)
  np.testing.assert_array_equal(mapping[perm], np.arange(10))


def test_soft_assignments_weigh_the_votes():
  # Two members vote cluster 0 with little confidence, one votes 1 surely.
  labels = np.array([[0, 0, 1], [0, 0, 1], [1, 0, 1]])
  weak = np.array([[0.51, 0.49], [0.9, 0.1], [0.1, 0.9]])
  sure = np.array([[0.01, 0.99], [0.9, 0.1], [0.1, 0.9]])
  hard = consensus.consensus(labels, 2, combine="vote")
  soft = consensus.consensus(labels, 2, soft=[weak, weak, sure],
                             combine="vote")
  assert hard.labels[0] == 0 and soft.labels[0] == 1


@pytest.mark.parametrize("labels, k, combine, message", [
    (np.zeros((1, 5), int), 2, "vote", "S >= 2"),
    (np.array([[0, 1, 2], [0, 1, 1]]), 2, "vote", r"\[0, 2\)"),
    (np.array([[0, 1, 1], [0, 1, 1]]), 2, "mean", "combine must be one of"),
])
def test_bad_member_labels_are_refused(labels, k, combine, message):
  with pytest.raises(ValueError, match=message):
    consensus.consensus(labels, k, combine=combine)


# ------------------------------------------------------------------ runner


def _digits_config(**overrides):
  config = config_lib.get_config()
  config.method = "kmeans"
  config.kmeans.n_init = 1  # members that disagree
  config.report = False
  config.tensorboard = False
  config.seeds = "0,1,2,3,4"
  config.ensemble = "consensus"
  for key, value in overrides.items():
    config[key] = value
  return config


def _digits(labels_seed=None):
  x, y = datasets.load_digits(return_X_y=True)
  if labels_seed is not None:
    y = np.random.default_rng(labels_seed).permutation(y)
  return data.from_arrays(x.astype(np.float32) / 16.0, y, scale=1.0)


@pytest.mark.parametrize("combine", ["vote", "kmeans"])
def test_consensus_is_scored_and_saved_and_never_reads_labels(tmp_path,
                                                              combine):
  config = _digits_config(consensus_combine=combine)
  results = run(config, str(tmp_path / "a"), dataset=_digits())
  shuffled = run(config, str(tmp_path / "b"), dataset=_digits(labels_seed=1))
  got = results["consensus"]
  assert {"acc", "nmi", "ari", "reference", "mean_pairwise_ari"} <= set(got)
  assert got["combine"] == combine
  with np.load(tmp_path / "a" / ensemble.FILE) as a, \
       np.load(tmp_path / "b" / ensemble.FILE) as b:
    np.testing.assert_array_equal(a["labels"], b["labels"])
    labels = a["labels"]
  assert got["acc"] == pytest.approx(
      float(_score_acc(_digits().y, labels)))
  assert shuffled["consensus"]["acc"] < got["acc"] - 0.3  # scored, after
  with open(tmp_path / "a" / "results.json") as f:
    assert json.load(f)["consensus"] == got


def _score_acc(y, labels):
  from dec_jax.core import metrics  # pylint: disable=g-import-not-at-top
  return metrics.cluster_accuracy(y, labels)


@pytest.mark.parametrize("grid", ["", {"dec.alpha": [1.0, 2.0]}])  # as the CLI parses it
def test_consensus_of_a_finished_stack_equals_the_flag(tmp_path, grid):
  config = _digits_config(dataset="digits", ensemble="none", grid=grid)
  run(config, str(tmp_path / "plain"))
  printed = ensemble.add_to_workdir(str(tmp_path / "plain"), write=False)
  assert not os.path.exists(tmp_path / "plain" / ensemble.FILE)
  with open(tmp_path / "plain" / "results.json") as f:
    assert "consensus" not in json.load(f)
  added = ensemble.add_to_workdir(str(tmp_path / "plain"))
  assert added == printed
  flagged = run(_digits_config(dataset="digits", grid=grid),
                str(tmp_path / "flag"))
  assert added == flagged["consensus"]
  assert os.path.exists(tmp_path / "plain" / ensemble.FILE)


def test_consensus_of_a_stack_whose_data_changed_is_refused(tmp_path,
                                                           blobs_npz):
  config = _digits_config(dataset=blobs_npz, ensemble="none", n_clusters=4,
                          seeds="0,1")
  run(config, str(tmp_path / "w"))
  with np.load(blobs_npz) as saved:  # same size, other labels
    np.savez(blobs_npz, x=saved["x"], y=saved["y"][::-1])
  with pytest.raises(DecJaxError, match="the data changed since the members"):
    ensemble.add_to_workdir(str(tmp_path / "w"))
  with open(tmp_path / "w" / "results.json") as f:
    assert "consensus" not in json.load(f)


@pytest.mark.parametrize("overrides, message", [
    ({"seeds": ""}, "2 or more members"),
    ({"n_clusters": "auto"}, "n_clusters=auto"),
    ({"ensemble": "majority"}, "Unknown ensemble"),
    ({"consensus_combine": "mean"}, "Unknown consensus_combine"),
    ({"ensemble": "consensus_refine"}, r"method=kmeans does not.*'dec'"),
    ({"ensemble": "consensus_refine", "method": "dec",
      "seeds_mode": "sequential"}, "needs all members in one stack"),
])
def test_bad_ensembles_are_refused_before_anything_runs(tmp_path, overrides,
                                                        message):
  workdir = tmp_path / "run"
  with pytest.raises(DecJaxError, match=message):
    run(_digits_config(dataset="digits", **overrides), str(workdir))
  assert not workdir.exists()


def test_consensus_refine_restarts_every_member_from_the_consensus(
    tmp_path, blobs_npz):
  """Each member's second DEC stage starts at the consensus: at its first
  target update (centres: the member's means over the consensus clusters,
  in the consensus's numbering) the labels are the consensus's, though
  each seed numbers its own clusters differently; the first stage's scores
  are kept beside."""
  config = tiny_config(blobs_npz, method="dec", seeds="0,1,2",
                       ensemble="consensus_refine")
  results = run(config, str(tmp_path))
  assert {"acc", "reference"} <= set(results["consensus"])
  for row in results["members"]:
    folder = tmp_path / row["workdir"]
    with open(folder / "results.json") as f:
      refine = json.load(f)["refine"]
    assert refine["start"]["ari"] > 0.9
    assert refine["first_stage"]["iterations"] > 0
    with open(folder / "metrics.jsonl") as f:
      records = [json.loads(line) for line in f]
    second = [r for r in records if r["stage"] == "dec_refine"]
    assert second and second[0]["iteration"] == 0
    assert second[0]["label_change"] < 0.02, second[0]["label_change"]
