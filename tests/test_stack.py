"""A run is a stack of members (seeds x grid points) trained as one program:
each member gives what its own run gives, up to float summation order
(exactly on CPUs);
memory groups; resuming; mean ± sd; the grid."""

import json
import os
import statistics

import jax
import numpy as np
import pytest

from dec_jax.runner import members
from dec_jax.train import member_axis
from dec_jax.runner import run as run_lib
from dec_jax.errors import DecJaxError
from dec_jax.methods.dec import DEC_PARTIAL
from dec_jax.runner.workdir import Workdir, load_params, read_json, read_metrics
from tests.test_end_to_end import cli, tiny_config

# A member of a stack and its own run (a stack of one) run the same
# functions, but a vmapped matmul over S members (the member axis on
# accelerators) may add in another order than over one: parameters agree to
# float32 rounding, scores on these short runs exactly or to this tolerance.
# On CPUs the members run one by one (lax.map) and agree exactly.
PARAM_ATOL = 1e-4
Q_ATOL = 1e-3
MIN_LABEL_AGREEMENT = 0.99


@pytest.fixture
def hard_blobs(tmp_path):
  """Overlapping blobs: scores below 1, so agreeing labels mean something."""
  from sklearn.datasets import make_blobs
  x, y = make_blobs(n_samples=200, centers=4, n_features=8, cluster_std=3.0,
                    random_state=2)
  path = str(tmp_path / "blobs.npz")
  np.savez(path, x=x.astype(np.float32), y=y)
  return path


def small(path, **overrides):
  config = tiny_config(path, report=False, tensorboard=False, **overrides)
  config.pretrain.epochs = 10
  config.dec.maxiter = 40
  return config


@pytest.mark.parametrize("value,expected", [
    ("", ()), ("0,1,2", (0, 1, 2)), (" 3, 5 ", (3, 5)), ((4, 2), (4, 2)),
    ([7], (7,)), (3, (3,)), ("(1,2)", (1, 2))])
def test_parse_seeds(value, expected):
  assert members.parse_seeds(value) == expected


@pytest.mark.parametrize("value", ["0,0", "a,b", "-1", (1.5,), {"a": 1}])
def test_parse_seeds_rejects(value):
  with pytest.raises(DecJaxError, match="seeds"):
    members.parse_seeds(value)


def test_members_are_seeds_crossed_with_grid_points(hard_blobs):
  config = small(hard_blobs, seeds="0,1",
                 grid='{"idec.gamma": [0.1, 1], "dec.tol": [0.01]}')
  got = members.from_config(config)
  assert [(m.seed, dict(m.point)) for m in got] == [
      (0, {"idec.gamma": 0.1, "dec.tol": 0.01}),
      (1, {"idec.gamma": 0.1, "dec.tol": 0.01}),
      (0, {"idec.gamma": 1.0, "dec.tol": 0.01}),
      (1, {"idec.gamma": 1.0, "dec.tol": 0.01})]
  member_config = members.member_config(config, got[2])
  assert member_config.idec.gamma == 1.0 and member_config.seed == 0
  assert member_config.dec.tol == 0.01 and member_config.grid == ""
  assert members.member_dir("W", got[2], True) == os.path.join(
      "W", "idec.gamma=1.0__dec.tol=0.01", "seed0")


def test_grid_points_sharing_an_autoencoder_share_its_kmeans(
    tmp_path, hard_blobs, monkeypatch):
  from dec_jax.core import kmeans
  fitted = []
  fit = kmeans.fit_kmeans
  monkeypatch.setattr(kmeans, "fit_kmeans",
                      lambda x, k, **kw: fitted.append(kw["seed"])
                      or fit(x, k, **kw))
  config = small(hard_blobs, seeds="0,1",
                 grid='{"dec.learning_rate": [0.01, 0.02]}')
  run_lib.run(config, str(tmp_path / "w"))
  assert sorted(fitted) == [0, 1]  # once per seed, not per grid point
  starts = {}
  for cell in ("dec.learning_rate=0.01", "dec.learning_rate=0.02"):
    for seed in (0, 1):
      init = read_json(str(tmp_path / "w" / cell / f"seed{seed}" /
                           "results.json"))["init_metrics"]
      starts.setdefault(seed, []).append(init)
  assert all(a == b for a, b in starts.values())


def test_a_grid_of_patience_gives_integer_settings(hard_blobs):
  config = small(hard_blobs, seeds="0", grid='{"dec.patience": [0, 20.0]}')
  got = members.from_config(config)
  patience = [members.member_config(config, m).dec.patience for m in got]
  assert patience == [0, 20] and all(type(p) is int for p in patience)
  assert got[1].cell == "dec.patience=20"


@pytest.mark.parametrize("grid,match", [
    ('{"model.dims": [[4], [8]]}', "cannot be stacked.*sweep"),
    ('{"dec.batch_size": [32, 64]}', "cannot be stacked"),
    ('{"idec.gamma": []}', "distinct numbers"),
    ('{"idec.gamma": [1, 1]}', "distinct numbers"),
    ('{"idec.gamma": ["a"]}', "distinct numbers"),
    ('{"dec.patience": [5, 2.5]}', "integers >= 0"),
    ("idec.gamma=1", "JSON object")])
def test_bad_grid_rejected_before_writing(tmp_path, hard_blobs, grid, match):
  with pytest.raises(DecJaxError, match=match):
    run_lib.run(small(hard_blobs, seeds="0", grid=grid), str(tmp_path / "b"))
  assert not os.path.exists(tmp_path / "b")


def _agree(a, b) -> float:
  return float(np.mean(np.asarray(a) == np.asarray(b)))


@pytest.mark.parametrize("method", ["dec", "idec"])
def test_stacked_seeds_match_their_own_runs(tmp_path, hard_blobs, method):
  """Seeds 0-2 as one stack give each seed what its own run (a stack of
  one) gives: autoencoder, k-means init, labels, iterations, q."""
  def recipe(**overrides):
    config = small(hard_blobs, method=method, **overrides)
    # tol such that the seeds stop at different iterations: the stack
    # shrinks as they finish.
    config.dec.tol, config.dec.maxiter = 0.005, 60
    return config

  results = run_lib.run(recipe(seeds="0,1,2", seeds_mode="vmap"),
                        str(tmp_path / "multi"))
  assert results["groups"] == [["seed 0", "seed 1", "seed 2"]]
  iterations = set()
  for seed in (0, 1, 2):
    alone = run_lib.run(recipe(seed=seed), str(tmp_path / f"alone{seed}"))
    multi_dir = tmp_path / "multi" / f"seed{seed}"
    together = read_json(multi_dir / "results.json")
    assert together["stack"]["size"] == 3 and alone["stack"]["size"] == 1
    assert alone["stack"]["members"] == [alone["stack"]["member"]] != [""]
    assert alone["acc"] < 1.0  # not a trivial agreement
    assert together["iterations"] == alone["iterations"]
    assert together["stop_reason"] == alone["stop_reason"]
    for key in ("acc", "nmi", "ari"):
      assert together[key] == pytest.approx(alone[key], abs=0.02)
      assert results["per_seed"][str(seed)][key] == together[key]
    iterations.add(alone["iterations"])
    saved = [np.load(d / "assignments.npz")
             for d in (multi_dir, tmp_path / f"alone{seed}")]
    assert _agree(saved[0]["labels"], saved[1]["labels"]) >= \
        MIN_LABEL_AGREEMENT
    np.testing.assert_allclose(saved[0]["q"], saved[1]["q"], atol=Q_ATOL)
    params = [load_params(str(d), "autoencoder")
              for d in (multi_dir, tmp_path / f"alone{seed}")]
    for a, b in zip(*(jax.tree.leaves(p) for p in params)):
      np.testing.assert_allclose(a, b, atol=PARAM_ATOL)
    if not member_axis.batched_by_default():  # lax.map: exactly its own run
      assert together["acc"] == alone["acc"]
      np.testing.assert_array_equal(saved[0]["q"], saved[1]["q"])
      for a, b in zip(*(jax.tree.leaves(p) for p in params)):
        np.testing.assert_array_equal(a, b)
  if method == "dec":  # (IDEC's seeds all run to maxiter here)
    assert len(iterations) > 1  # the seeds left the stack at different times
  accs = [results["per_seed"][s]["acc"] for s in ("0", "1", "2")]
  assert results["acc"]["mean"] == pytest.approx(statistics.mean(accs))
  assert results["acc"]["sd"] == pytest.approx(statistics.stdev(accs))


def test_the_same_command_twice_is_bit_identical(tmp_path, hard_blobs):
  config = small(hard_blobs, seeds="0,1")
  first = run_lib.run(config, str(tmp_path / "a"))
  second = run_lib.run(config, str(tmp_path / "b"))
  for seed in (0, 1):
    a, b = (np.load(tmp_path / d / f"seed{seed}" / "assignments.npz")
            for d in ("a", "b"))
    np.testing.assert_array_equal(a["labels"], b["labels"])
    np.testing.assert_array_equal(a["q"], b["q"])
  assert first["per_seed"] == {
      s: {**row, "time_s": first["per_seed"][s]["time_s"]}
      for s, row in second["per_seed"].items()}


def test_grid_points_match_separate_runs_and_share_pretraining(
    tmp_path, hard_blobs):
  """seeds 0,1 x dec.learning_rate 0.01, 0.1: 4 members in one stack; each
  equals the run with that seed and rate; both rates of a seed use the same
  autoencoder, trained once."""
  grid = {"dec.learning_rate": [0.01, 0.1]}
  results = run_lib.run(small(hard_blobs, seeds="0,1", grid=json.dumps(grid)),
                        str(tmp_path / "grid"))
  assert len(results["members"]) == 4 and len(results["grid"]) == 2
  for row in results["grid"]:
    accs = [m["acc"] for m in results["members"]
            if m["point"] == row["point"]]
    assert row["acc"]["mean"] == pytest.approx(statistics.mean(accs))
  pretraining = {}
  for lr in (0.01, 0.1):
    for seed in (0, 1):
      folder = tmp_path / "grid" / f"dec.learning_rate={lr}" / f"seed{seed}"
      together = read_json(folder / "results.json")
      alone = run_lib.run(small(hard_blobs, seed=seed,
                                dec={"learning_rate": lr}),
                          str(tmp_path / f"alone{seed}_{lr}"))
      assert together["config"]["dec"]["learning_rate"] == lr
      assert together["iterations"] == alone["iterations"]
      assert _agree(np.load(folder / "assignments.npz")["labels"],
                    np.load(tmp_path / f"alone{seed}_{lr}" /
                            "assignments.npz")["labels"]) >= \
          MIN_LABEL_AGREEMENT
      pretraining[lr, seed] = [r for r in read_metrics(str(folder))
                               if r["stage"] == "pretrain" and "epoch" in r]
  # 2 seeds pretrained, not 4: each point's log shows its seed's one
  # pretraining (the same records, seconds included), not one of its own.
  for seed in (0, 1):
    assert len(pretraining[0.01, seed]) == 2
    assert pretraining[0.01, seed] == pretraining[0.1, seed]
  assert pretraining[0.01, 0] != pretraining[0.01, 1]
  # The learning rate matters: the two points differ for some seed.
  a, b = ([m["ari"] for m in results["members"]
           if m["point"]["dec.learning_rate"] == lr] for lr in (0.01, 0.1))
  assert a != b


def test_memory_groups_and_resume_of_finished_members(tmp_path, hard_blobs,
                                                      monkeypatch):
  """Where one member fits, members run one at a time (groups of one) and
  give the stack's result; an interrupted run redoes only what is missing."""
  workdir = str(tmp_path / "multi")
  config = small(hard_blobs, seeds=(0, 1), method="ae_kmeans")
  stacked = run_lib.run(config, str(tmp_path / "stacked"))
  monkeypatch.setattr(run_lib, "available_bytes", lambda: (
      int(run_lib.member_bytes(config, (8, 32, 4), _dataset(hard_blobs), 4)
          * 1.5 / run_lib.MEMORY_FRACTION) + 2000, "test"))
  results = run_lib.run(config, workdir)
  assert results["groups"] == [["seed 0"], ["seed 1"]]
  for seed in ("0", "1"):
    assert results["per_seed"][seed]["acc"] == pytest.approx(
        stacked["per_seed"][seed]["acc"], abs=0.02)
  with pytest.raises(DecJaxError, match="finished run"):
    run_lib.run(config, workdir)
  seed0 = os.path.join(workdir, "seed0", "results.json")
  before = os.stat(seed0).st_mtime_ns
  os.remove(os.path.join(workdir, "seed1", "results.json"))
  os.remove(os.path.join(workdir, "results.json"))
  again = run_lib.run(config, workdir)
  assert os.stat(seed0).st_mtime_ns == before
  assert again["groups"] == [["seed 1"]]
  assert again["per_seed"]["1"]["acc"] == results["per_seed"]["1"]["acc"]


def test_a_finished_member_made_otherwise_is_refused(tmp_path, hard_blobs):
  """An interrupted stack rerun with other settings would mix the finished
  members' old results into the summary: refused, before anything is
  written; a change of cadence or of the stack around them is not."""
  workdir = str(tmp_path / "multi")
  config = small(hard_blobs, seeds=(0, 1), method="ae_kmeans")
  run_lib.run(config, workdir)
  os.remove(os.path.join(workdir, "seed1", "results.json"))
  os.remove(os.path.join(workdir, "results.json"))
  changed = small(hard_blobs, seeds=(0, 1), method="ae_kmeans")
  changed.pretrain.epochs = 11
  log = os.path.join(workdir, "seed1", "metrics.jsonl")
  before = os.stat(log).st_mtime_ns
  with pytest.raises(DecJaxError, match=r"seed0 holds a finished member "
                     r"made otherwise: .*other settings \(pretrain\)"):
    run_lib.run(changed, workdir)
  assert os.stat(log).st_mtime_ns == before
  same = small(hard_blobs, seeds=(0, 1), method="ae_kmeans",
               seeds_mode="sequential")
  same.pretrain.log_every = 3
  assert run_lib.run(same, workdir)["groups"] == [["seed 1"]]


def _dataset(path):
  from dec_jax.runner import data  # pylint: disable=g-import-not-at-top
  return data.load(path)


def test_a_stack_killed_mid_clustering_resumes_exactly(tmp_path, hard_blobs,
                                                       monkeypatch):
  """The stacked DEC state is what the checkpoint holds: killed after its
  first checkpoint, the rerun ends where the uninterrupted stack ends, bit
  for bit."""
  config = small(hard_blobs, seeds="0,1,2")
  config.dec.tol, config.dec.maxiter = 0.005, 60
  config.dec.update_interval, config.dec.checkpoint_every = 10, 20
  whole = run_lib.run(config, str(tmp_path / "whole"))
  save_params, killed_at = Workdir.save_params, []

  def save_then_die(self, name, params, meta):
    save_params(self, name, params, meta)
    if name == DEC_PARTIAL:
      killed_at.append(meta["iteration"])
      raise KeyboardInterrupt

  monkeypatch.setattr(Workdir, "save_params", save_then_die)
  with pytest.raises(KeyboardInterrupt):
    run_lib.run(config, str(tmp_path / "killed"))
  monkeypatch.undo()
  resumed = run_lib.run(config, str(tmp_path / "killed"))
  assert load_params(str(tmp_path / "killed"), DEC_PARTIAL) is None
  for seed in (0, 1, 2):
    a, b = (read_json(tmp_path / d / f"seed{seed}" / "results.json")
            for d in ("whole", "killed"))
    assert b["dec_resumed_from_iteration"] == killed_at[0] == 20
    for key in ("acc", "nmi", "ari", "iterations", "init_metrics",
                "cluster_sizes"):
      assert a[key] == b[key], (seed, key)
    np.testing.assert_array_equal(
        *(np.load(tmp_path / d / f"seed{seed}" / "assignments.npz")["q"]
          for d in ("whole", "killed")))
  assert resumed["acc"] == whole["acc"]


def test_bad_seeds_settings_rejected_before_writing(tmp_path, hard_blobs):
  for overrides, match in (({"seeds": "0,x"}, "integers"),
                           ({"seeds": "0,1", "seeds_mode": "fast"},
                            "seeds_mode")):
    with pytest.raises(DecJaxError, match=match):
      run_lib.run(small(hard_blobs, **overrides), str(tmp_path / "bad"))
  assert not os.path.exists(tmp_path / "bad")


def test_cli_seeds_and_grid_flags(tmp_path, blobs_npz):
  workdir = str(tmp_path / "cli")
  proc = cli("--config=experiments/configs/default.py", f"--workdir={workdir}",
             f"--config.dataset={blobs_npz}", "--config.method=kmeans",
             "--config.n_clusters=4", "--config.kmeans.n_init=2",
             "--config.report=False", "--config.tensorboard=False",
             "--config.seeds=0,1")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "seeds [0, 1]" in proc.stdout and "ACC=" in proc.stdout
  results = read_json(os.path.join(workdir, "results.json"))
  assert results["seeds"] == [0, 1] and set(results["per_seed"]) == {"0", "1"}
  for seed in (0, 1):
    seed_results = read_json(os.path.join(workdir, f"seed{seed}",
                                          "results.json"))
    assert seed_results["seed"] == seed
    assert seed_results["config"]["seeds"] == ""
  proc = cli("--config=experiments/configs/default.py",
             f"--workdir={tmp_path / 'bad'}", f"--config.dataset={blobs_npz}",
             '--config.grid={"model.dims": [[4]]}')
  assert proc.returncode == 2 and "cannot be stacked" in proc.stderr
  assert not os.path.exists(tmp_path / "bad")
  proc = cli("--config=experiments/configs/default.py",
             f"--workdir={tmp_path / 'both'}", f"--config.dataset={blobs_npz}",
             "--config.seed=3", "--config.seeds=1,2")
  assert proc.returncode == 2 and "--config.seed and --config.seeds" in \
      proc.stderr
  assert not os.path.exists(tmp_path / "both")


def test_member_estimate_counts_every_parameter_the_stack_holds(hard_blobs):
  """One member's share: the whole autoencoder (pretraining holds encoder and
  decoder; IDEC trains both) and the centres, 6 copies each (params, grads,
  2 optimizer moments, the donated copy), plus its q / p / labels and one
  chunk's activations."""
  import math  # pylint: disable=g-import-not-at-top
  from dec_jax.nn import models  # pylint: disable=g-import-not-at-top
  from dec_jax.runner import data, pretrained  # pylint: disable=g-import-not-at-top
  config = small(hard_blobs, method="idec")
  dataset = data.load(hard_blobs)
  dims = (dataset.dim,) + tuple(config.model.dims)
  params = models.init_autoencoder(
      pretrained.build_model(config, dims, None), jax.random.key(0))
  param_bytes = sum(4 * math.prod(a.shape) for a in jax.tree.leaves(params))
  assert jax.tree.leaves(params["decoder"])  # the decoder is counted
  k = 4
  expected = (6 * (param_bytes + 4 * k * dims[-1])
              + 3 * 4 * dataset.num_samples * k
              + 2 * 4 * config.chunk_size * max(dims))
  assert run_lib.member_bytes(config, dims, dataset, k) == expected


def test_streamed_data_is_never_copied_whole_to_the_device(tmp_path,
                                                           hard_blobs,
                                                           monkeypatch):
  """data_on_device=False with two members: pretraining, the embedding and
  the DEC loop stream minibatches and chunks; the data set never goes to
  the device whole."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  config = small(hard_blobs, seeds="0,1", data_on_device=False,
                 chunk_size=64)
  copied = []
  for module, name in ((jnp, "asarray"), (jax, "device_put")):
    def record(x, *args, real=getattr(module, name), **kwargs):
      copied.append(getattr(x, "shape", None))
      return real(x, *args, **kwargs)
    monkeypatch.setattr(module, name, record)
  results = run_lib.run(config, str(tmp_path / "streamed"))
  assert results["groups"] == [["seed 0", "seed 1"]]
  assert copied and (200, 8) not in copied
