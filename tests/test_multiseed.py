"""Several seeds in one workdir: vmapped pretraining gives each seed what
its own run gives; memory fallback; resuming; mean ± sd."""

import os
import statistics

import numpy as np
import pytest

from dec_jax import multiseed
from dec_jax.errors import DecJaxError
from dec_jax.run import run
from dec_jax.workdir import load_params, read_json, read_metrics
from tests.test_end_to_end import cli, tiny_config

# Per-seed scores of the vmapped and the separate runs agree to this (the
# labels exactly): the stacked matmuls may sum in another order than one
# model's, so the autoencoders agree to float32 rounding, not bit for bit.
PARAM_ATOL = 1e-5
SCORE_ATOL = 1e-6


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
  assert multiseed.parse_seeds(value) == expected


@pytest.mark.parametrize("value", ["0,0", "a,b", "-1", (1.5,), {"a": 1}])
def test_parse_seeds_rejects(value):
  with pytest.raises(DecJaxError, match="seeds"):
    multiseed.parse_seeds(value)


@pytest.mark.parametrize("method", ["dec", "idec"])
def test_vmapped_seeds_match_separate_runs(tmp_path, hard_blobs, method):
  """Pretraining and the DEC phase vmapped over seeds 0-2 give each seed
  the scores, labels, iterations and (to rounding) q of its own run."""
  def recipe(**overrides):
    config = small(hard_blobs, method=method, **overrides)
    # tol such that the seeds stop at different iterations: the stack
    # shrinks as they finish.
    config.dec.tol, config.dec.maxiter = 0.005, 60
    return config

  config = recipe(seeds="0,1,2", seeds_mode="vmap")
  results = multiseed.run_seeds(config, str(tmp_path / "multi"))
  assert results["pretraining"]["mode"] == "vmap"
  assert results["pretraining"]["seeds"] == [0, 1, 2]
  assert results["dec_phase"]["mode"] == "vmap"
  assert results["dec_phase"]["seeds"] == [0, 1, 2]
  iterations = set()
  for seed in (0, 1, 2):
    alone = run(recipe(seed=seed), str(tmp_path / f"alone{seed}"))
    multi_dir = tmp_path / "multi" / f"seed{seed}"
    together = read_json(multi_dir / "results.json")
    # The seed's run used the vmapped autoencoder and DEC phase; the
    # separate run trained both.
    assert together["pretrain_reused"] and "pretrain" not in together["times_s"]
    assert together["dec_phase"]["mode"] == "vmap"
    # Its wall time counts its share of the stacked stages.
    shared = together["times_s"]["shared"]
    assert shared >= (results["pretraining"]["time_s"] / 3
                      + results["dec_phase"]["loop_s"] / 3) - 1e-6
    assert together["times_s"]["total"] > shared
    assert "pretrain" in alone["times_s"] and "dec_phase" not in alone
    assert alone["acc"] < 1.0  # not a trivial agreement
    for key in ("acc", "nmi", "ari", "iterations", "stop_reason"):
      assert together[key] == pytest.approx(alone[key], abs=SCORE_ATOL)
    for key in ("acc", "nmi", "ari"):
      assert together["init_metrics"][key] == pytest.approx(
          alone["init_metrics"][key], abs=SCORE_ATOL)
      assert results["per_seed"][str(seed)][key] == together[key]
    iterations.add(alone["iterations"])
    saved = [np.load(d / "assignments.npz")
             for d in (multi_dir, tmp_path / f"alone{seed}")]
    np.testing.assert_array_equal(saved[0]["labels"], saved[1]["labels"])
    np.testing.assert_allclose(saved[0]["q"], saved[1]["q"], atol=1e-4)
    logged = [[(r["iteration"], round(r["acc"], 6))
               for r in read_metrics(str(d)) if r["stage"] == "dec"]
              for d in (multi_dir, tmp_path / f"alone{seed}")]
    assert logged[0] == logged[1]
    params = [load_params(str(d), "autoencoder")
              for d in (multi_dir, tmp_path / f"alone{seed}")]
    for a, b in zip(*(jax_leaves(p) for p in params)):
      np.testing.assert_allclose(a, b, atol=PARAM_ATOL)
  if method == "dec":  # (IDEC's seeds all run to maxiter here)
    assert len(iterations) > 1  # the seeds left the stack at different times
  accs = [results["per_seed"][s]["acc"] for s in ("0", "1", "2")]
  assert results["acc"]["mean"] == pytest.approx(statistics.mean(accs))
  assert results["acc"]["sd"] == pytest.approx(statistics.stdev(accs))


def jax_leaves(tree):
  import jax
  return [np.asarray(a) for a in jax.tree.leaves(tree)]


def test_memory_fallback_and_resume(tmp_path, hard_blobs, monkeypatch):
  monkeypatch.setattr(multiseed, "available_bytes", lambda: (1000, "test"))
  workdir = str(tmp_path / "multi")
  config = small(hard_blobs, seeds=(0, 1), method="ae_kmeans")
  results = multiseed.run_seeds(config, workdir)
  assert results["pretraining"]["mode"] == "sequential"
  assert "MiB" in results["pretraining"]["reason"]
  assert "pretrain" in read_json(os.path.join(
      workdir, "seed1", "results.json"))["times_s"]  # trained in its own run
  # A finished multi-seed workdir is refused like a finished run.
  with pytest.raises(DecJaxError, match="finished run"):
    multiseed.run_seeds(config, workdir)
  # Interrupted: seed 1 and the summary missing. The rerun redoes only it.
  seed0 = os.path.join(workdir, "seed0", "results.json")
  before = os.stat(seed0).st_mtime_ns
  os.remove(os.path.join(workdir, "seed1", "results.json"))
  os.remove(os.path.join(workdir, "results.json"))
  again = multiseed.run_seeds(config, workdir)
  assert again["reran"] == [1]
  assert os.stat(seed0).st_mtime_ns == before
  assert again["per_seed"] == results["per_seed"] | {
      "1": again["per_seed"]["1"]}
  assert again["per_seed"]["1"]["acc"] == results["per_seed"]["1"]["acc"]


def test_dec_phase_falls_back_when_it_does_not_fit(tmp_path, hard_blobs,
                                                   monkeypatch):
  monkeypatch.setattr(multiseed, "_dec_memory_estimate", lambda *a: 2**60)
  results = multiseed.run_seeds(small(hard_blobs, seeds="0,1"),
                                str(tmp_path / "multi"))
  assert results["pretraining"]["mode"] == "vmap"
  assert results["dec_phase"]["mode"] == "sequential"
  assert "MiB" in results["dec_phase"]["reason"]
  seed1 = read_json(tmp_path / "multi" / "seed1" / "results.json")
  assert "dec_phase" not in seed1 and "dec" in seed1["times_s"]


def test_bad_seeds_settings_rejected_before_writing(tmp_path, hard_blobs):
  for overrides, match in (({"seeds": "0,x"}, "integers"),
                           ({"seeds": "0,1", "seeds_mode": "fast"},
                            "seeds_mode")):
    with pytest.raises(DecJaxError, match=match):
      multiseed.run_seeds(small(hard_blobs, **overrides),
                          str(tmp_path / "bad"))
  assert not os.path.exists(tmp_path / "bad")


def test_cli_seeds_flag(tmp_path, blobs_npz):
  import json  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "cli")
  proc = cli("--config=experiments/configs/default.py", f"--workdir={workdir}",
             f"--config.dataset={blobs_npz}", "--config.method=kmeans",
             "--config.n_clusters=4", "--config.kmeans.n_init=2",
             "--config.report=False", "--config.tensorboard=False",
             "--config.seeds=0,1")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "seeds [0, 1]" in proc.stdout and "ACC=" in proc.stdout
  results = json.load(open(os.path.join(workdir, "results.json")))
  assert results["seeds"] == [0, 1] and set(results["per_seed"]) == {"0", "1"}
  assert results["pretraining"]["mode"] == "sequential"  # kmeans: no AE
  for seed in (0, 1):
    seed_results = read_json(os.path.join(workdir, f"seed{seed}",
                                          "results.json"))
    assert seed_results["seed"] == seed
    assert seed_results["config"]["seeds"] == ""


def _stacked_dec_bytes(config, dataset, monkeypatch, params, seeds=(0, 1)):
  """What _dec_vmapped estimates for the stacked DEC phase of `seeds`, all
  with autoencoder `params` (the phase itself is then skipped)."""
  estimates = []

  def record(needed, *args):
    estimates.append(needed)
    return {}, "skipped by the test"
  monkeypatch.setattr(multiseed, "_ready_autoencoders",
                      lambda *a: {s: params for s in seeds})
  monkeypatch.setattr(multiseed, "_memory_check", record)
  dims = (dataset.dim,) + tuple(config.model.dims)
  phase, _ = multiseed._dec_vmapped(config, dataset, dims, 4, list(seeds),
                                    "unused", lambda r: None, {})
  assert phase["reason"] == "skipped by the test"
  return estimates[0]


def test_stacked_idec_estimate_counts_the_decoder_and_centres(hard_blobs,
                                                              monkeypatch):
  import jax  # pylint: disable=g-import-not-at-top
  from dec_jax import checks, models  # pylint: disable=g-import-not-at-top
  from dec_jax import run as run_lib  # pylint: disable=g-import-not-at-top
  config = small(hard_blobs, seeds="0,1")
  dataset = checks.load_data(config)
  dims = (dataset.dim,) + tuple(config.model.dims)
  params = models.init_autoencoder(
      run_lib.build_model(config, dims, None), jax.random.key(0))
  per_seed = {m: _stacked_dec_bytes(small(hard_blobs, seeds="0,1", method=m),
                                    dataset, monkeypatch, params) / 2
              for m in ("dec", "idec")}
  tree_bytes = multiseed._tree_bytes  # pylint: disable=protected-access
  copies = multiseed.STATE_COPIES
  assert per_seed["idec"] - per_seed["dec"] == copies * tree_bytes(
      params["decoder"])
  centres = 4 * dims[-1] * 4  # k x d float32
  activations = (3 * 4 * dataset.num_samples * 4
                 + 2 * 4 * config.chunk_size * max(dims))
  assert per_seed["dec"] == copies * (
      tree_bytes(params["encoder"]) + centres) + activations


def test_streamed_data_is_never_copied_whole_to_the_device(tmp_path,
                                                           hard_blobs,
                                                           monkeypatch):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from dec_jax import checks  # pylint: disable=g-import-not-at-top
  config = small(hard_blobs, seeds="0,1", method="ae_kmeans",
                 data_on_device=False)
  dataset = checks.load_data(config)
  copied = []
  for module, name in ((jnp, "asarray"), (jax, "device_put")):
    def record(x, *args, real=getattr(module, name), **kwargs):
      copied.append(getattr(x, "shape", None))
      return real(x, *args, **kwargs)
    monkeypatch.setattr(module, name, record)
  logged = []
  dims = (dataset.dim,) + tuple(config.model.dims)
  pretraining = multiseed._pretrain_vmapped(config, dataset, dims, [0, 1],
                                            str(tmp_path), logged.append)
  assert dataset.x.shape not in copied
  assert pretraining["mode"] == "sequential"
  assert "data_on_device=False" in pretraining["reason"]
