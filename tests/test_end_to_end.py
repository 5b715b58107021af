"""Whole runs: the library runner, the CLI, reuse of a pretrained autoencoder,
and bad input rejected before anything is written."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dec_jax.errors import DecJaxError, TrainingDiverged
from dec_jax.runner.run import run
from dec_jax.runner.workdir import read_metrics
from experiments.configs import default
from tests.conftest import independent_scores

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def device_env(devices: int) -> dict:
  """The environment of a child process run from the repo on `devices`
  emulated CPU devices (set before jax loads; conftest's flags kept)."""
  return {**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu",
          "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} "
                       f"--xla_force_host_platform_device_count={devices}"}


def tiny_config(source, **overrides):
  """A small, fast DEC config on `source`: tiny network, few epochs, no
  plots or TensorBoard files (tests/test_report.py turns them on)."""
  config = default.get_config()
  config.dataset = source
  config.report = config.tensorboard = False
  config.n_clusters = 4
  config.pretrain.optimizer = "adam"
  config.pretrain.learning_rate = 1e-3
  config.model.dims = (32, 4)
  config.pretrain.epochs = 20
  config.pretrain.batch_size = 32
  config.pretrain.log_every = 5
  config.kmeans.n_init = 4
  config.dec.batch_size = 32
  config.dec.update_interval = 10
  config.dec.maxiter = 60
  config.update(overrides)
  return config


def cli(*args, module="experiments.main"):
  """Runs an entry point (python -m module args...) from the repo, on CPU."""
  return subprocess.run(
      [sys.executable, "-m", module, *args], cwd=REPO,
      capture_output=True, text=True, timeout=300, check=False,
      env={**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu"})


def test_cli_end_to_end_writes_metrics_results_and_checkpoints(tmp_path,
                                                              blobs_npz):
  workdir = str(tmp_path / "run")
  proc = cli("--config=experiments/configs/default.py", f"--workdir={workdir}",
             f"--config.dataset={blobs_npz}", "--config.n_clusters=4",
             "--config.model.dims=(32,4)", "--config.pretrain.epochs=10",
             "--config.pretrain.optimizer=adam",
             "--config.pretrain.learning_rate=0.001",
             "--config.pretrain.batch_size=32", "--config.kmeans.n_init=4",
             "--config.dec.batch_size=32", "--config.dec.update_interval=10",
             "--config.dec.maxiter=40", "--config.seed=3")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "ACC=" in proc.stdout and "NMI=" in proc.stdout

  results = json.load(open(os.path.join(workdir, "results.json")))
  assert results["acc"] > 0.9  # four well-separated blobs
  assert results["seed"] == 3 and results["config"]["seed"] == 3
  assert results["nmi_average"] == "arithmetic"
  assert set(results["times_s"]) >= {"pretrain", "kmeans", "dec", "total"}
  assert sum(results["cluster_sizes"]) == 240
  assert results["environment"]["backend"] == "cpu"

  records = read_metrics(workdir)
  dec_records = [r for r in records if r["stage"] == "dec"]
  assert dec_records and dec_records[0]["iteration"] == 0
  # The stop reason fits the log: tol 0.001 met at the last update, or 40.
  assert dec_records[-1]["iteration"] == results["iterations"]
  if results["stop_reason"] == "tol":
    assert dec_records[-1]["label_change"] < 0.001
    assert all(r["label_change"] >= 0.001 for r in dec_records[1:-1])
  else:
    assert results["stop_reason"] == "maxiter"
    assert results["iterations"] == 40
  for r in dec_records:
    assert set(r) >= {"iteration", "acc", "nmi", "ari", "loss",
                      "label_change", "cluster_sizes"}
  assert any(r["stage"] == "pretrain" for r in records)
  assert json.load(open(os.path.join(workdir, "config.json")))["seed"] == 3
  for name in ("autoencoder", "dec"):
    assert os.path.isdir(os.path.join(workdir, "checkpoints", name))
  with np.load(os.path.join(workdir, "assignments.npz")) as saved:
    assert saved["q"].shape == (240, 4)
    np.testing.assert_array_equal(saved["labels"], saved["q"].argmax(1))
    assert np.bincount(saved["labels"], minlength=4).tolist() == (
        results["cluster_sizes"])
    labels = saved["labels"]
  # The reported scores are those of the saved assignment, and the last
  # target update logged scores that same assignment.
  recomputed = independent_scores(np.load(blobs_npz)["y"], labels)
  for key in ("acc", "nmi", "ari"):
    assert results[key] == pytest.approx(recomputed[key], abs=1e-12)
    assert dec_records[-1][key] == pytest.approx(recomputed[key], abs=1e-12)


def test_same_seed_twice_gives_identical_results(tmp_path, blobs_npz):
  first = run(tiny_config(blobs_npz), str(tmp_path / "a"))
  second = run(tiny_config(blobs_npz), str(tmp_path / "b"))
  for key in ("acc", "nmi", "ari", "cluster_sizes", "iterations"):
    assert first[key] == second[key]
  strip = lambda records: [{k: v for k, v in r.items() if k != "time_s"}
                           for r in records]
  assert strip(read_metrics(str(tmp_path / "a"))) == strip(
      read_metrics(str(tmp_path / "b")))
  labels = [np.load(tmp_path / d / "assignments.npz")["labels"] for d in "ab"]
  np.testing.assert_array_equal(*labels)


def test_ae_kmeans_reuses_a_pretrained_autoencoder(tmp_path, blobs_npz):
  first = run(tiny_config(blobs_npz, method="ae_kmeans"), str(tmp_path / "a"))
  second = run(tiny_config(blobs_npz, method="ae_kmeans",
                           pretrained_workdir=str(tmp_path / "a")),
               str(tmp_path / "b"))
  assert "pretrain" in first["times_s"]
  assert "pretrain" not in second["times_s"] and second["pretrain_reused"]
  assert second["acc"] == pytest.approx(first["acc"])
  assert second["pretrained_from"]["workdir"] == str(tmp_path / "a")
  assert second["pretrained_from"]["settings"]["pretrain"]["epochs"] == 20
  with pytest.raises(DecJaxError, match="pretrained with other dims"):
    run(tiny_config(blobs_npz, method="ae_kmeans", pretrained_workdir=str(
        tmp_path / "a"), model={"dims": (16, 4)}), str(tmp_path / "c"))
  other_data = str(tmp_path / "other.npz")
  np.savez(other_data, x=np.random.rand(240, 8).astype(np.float32))
  with pytest.raises(DecJaxError, match="cannot be reused: the data changed"):
    run(tiny_config(other_data, method="ae_kmeans",
                    pretrained_workdir=str(tmp_path / "a")), str(tmp_path / "d"))


def test_kmeans_method_on_blobs_is_perfect(tmp_path, blobs_npz):
  results = run(tiny_config(blobs_npz, method="kmeans"), str(tmp_path / "km"))
  assert results["acc"] == 1.0 and results["ari"] == 1.0


def test_dec_on_digits_does_not_lose_accuracy_against_ae_kmeans(tmp_path):
  """A smaller network than the default, to keep the suite fast (~10 s of
  pretraining); when this setting was chosen DEC gained 0.01-0.02 ACC over
  AE + k-means with it on seeds 0, 1 and 2. The default network and recipe
  gain too (README: 0.796 -> 0.829), but take minutes."""
  config = default.get_config()
  config.model.dims = (256, 256, 10)
  config.pretrain.optimizer = "adam"
  config.pretrain.learning_rate = 1e-3
  config.pretrain.epochs = 100
  config.dec.update_interval = 100
  config.dec.maxiter = 2000
  results = run(config, str(tmp_path / "digits"))
  init = results["init_metrics"]
  assert init["acc"] > 0.6  # the autoencoder learned something
  assert results["acc"] >= init["acc"]
  assert results["nmi"] >= init["nmi"]


@pytest.mark.parametrize("overrides, message", [
    ({"dataset": "imagenet"}, "Unknown dataset 'imagenet'"),
    ({"dataset": "/no/such/data.npz"}, "does not exist"),
    ({"method": "spectral"}, "Unknown method 'spectral'"),
    ({"n_clusters": 1000}, "n_clusters must be between 2"),
    ({"n_clusters": 1}, "n_clusters must be >= 2"),
    ({"pretrain": {"batch_size": 500}}, "pretrain.batch_size .* larger"),
    ({"dec": {"batch_size": 500}}, "dec.batch_size .* larger"),
    ({"dec": {"momentum": 1.5}}, "dec.momentum must be in"),
    ({"n_clusters": -3}, "n_clusters must be >= 2"),
    ({"pretrain": {"optimizer": "lbfgs"}}, "Unknown pretrain.optimizer"),
    ({"dec": {"update_interval": 100, "maxiter": 50}}, "must not exceed"),
    ({"pretrain": {"learning_rate": -1.0}}, "learning_rate must be positive"),
    ({"pretrained_workdir": "/no/such/run"}, "holds no checkpoints"),
    ({"pretrained_workdir": "/x", "method": "kmeans"}, "no effect"),
    ({"auto_k": {"min": 5, "max": 3}}, "auto_k needs"),
    ({"auto_k": {"sample_size": 4}}, "auto_k needs"),
    ({"model": {"dims": (8, "x")}}, "model.dims must be"),
    ({"dec": {"tol": 1.5}}, "dec.tol must be in"),
    ({"dec": {"patience": -1}}, "dec.patience must be an integer >= 0"),
    ({"model": {"dtype": "float8"}}, "Unknown model.dtype"),
    ({"model": {"mlp_init": "he"}}, "Unknown model.mlp_init 'he'"),
    ({"kmeans": {"backend": "faiss"}}, "Unknown kmeans.backend"),
    ({"split": "valid"}, "Unknown split"),
])
def test_bad_input_fails_before_writing_anything(tmp_path, blobs_npz,
                                                 overrides, message):
  workdir = tmp_path / "never"
  with pytest.raises(DecJaxError, match=message):
    run(tiny_config(blobs_npz, **overrides), str(workdir))
  assert not workdir.exists()


def test_dec_settings_are_not_related_for_a_method_without_dec(blobs_npz):
  # n2d never reads dec.update_interval against dec.maxiter
  from dec_jax.runner import run as run_lib  # pylint: disable=g-import-not-at-top
  config = tiny_config(blobs_npz, method="n2d",
                       dec={"update_interval": 100, "maxiter": 50})
  assert len(run_lib.validate(config)[0]) == 1


def test_nan_data_via_cli_exits_nonzero_with_message(tmp_path):
  path = tmp_path / "nan.npy"
  x = np.random.rand(20, 3)
  x[4, 1] = np.nan
  np.save(path, x)
  workdir = tmp_path / "never"
  proc = cli(f"--workdir={workdir}", f"--config.dataset={path}")
  assert proc.returncode == 2
  assert "NaN or inf" in proc.stderr and "Traceback" not in proc.stderr
  assert not workdir.exists()


@pytest.mark.parametrize("args, message", [
    # a misspelt field: one line naming it (ml_collections' own error is a
    # traceback of 50 lines)
    (["--config.dec.max_iter=10"],
     "--config.dec.max_iter: the config has no field 'max_iter'. Did you "
     'mean "maxiter"'),
    (["--config.no_such_field=1"], "has no field 'no_such_field'"),
    (["--config.decc.maxiter=1"], "--config.decc.maxiter: the config has "
     "no field 'decc'"),
    # the recipe's seeds would win over --config.seed, silently
    (["--config=experiments/configs/n2d_consensus.py", "--config.seed=3"],
     "pass --config.seeds=3")])
def test_cli_refuses_overrides_it_would_not_apply(tmp_path, args, message):
  workdir = tmp_path / "never"
  proc = cli(*(["--config=experiments/configs/default.py"] + args
               if not args[0].startswith("--config=") else args),
             f"--workdir={workdir}")
  assert proc.returncode == 2, proc.stderr
  assert message in proc.stderr and "Traceback" not in proc.stderr
  assert not workdir.exists()


def test_an_error_inside_a_config_file_is_not_called_a_misspelt_field(
    tmp_path):
  config = tmp_path / "broken.py"
  config.write_text("def get_config():\n  return {}['learning_rat']\n")
  proc = cli(f"--config={config}", f"--workdir={tmp_path / 'never'}")
  assert proc.returncode != 0 and "learning_rat" in proc.stderr
  assert "has no field" not in proc.stderr


def test_an_empty_workdir_is_refused(tmp_path, blobs_npz, monkeypatch):
  (tmp_path / "cwd").mkdir()
  monkeypatch.chdir(tmp_path / "cwd")  # where an empty path would write
  with pytest.raises(DecJaxError, match="the workdir is empty"):
    run(tiny_config(blobs_npz, method="kmeans"), " ")
  assert os.listdir(tmp_path / "cwd") == []


def test_finished_workdir_is_not_overwritten(tmp_path, blobs_npz):
  workdir = str(tmp_path / "km")
  run(tiny_config(blobs_npz, method="kmeans"), workdir)
  before = open(os.path.join(workdir, "results.json")).read()
  with pytest.raises(DecJaxError, match="already holds a finished run"):
    run(tiny_config(blobs_npz, method="kmeans", seed=1), workdir)
  assert open(os.path.join(workdir, "results.json")).read() == before
  run(tiny_config(blobs_npz, method="kmeans", seed=1, overwrite=True), workdir)


def test_diverging_pretraining_stops_with_a_clear_message(tmp_path, blobs_npz):
  config = tiny_config(blobs_npz, pretrain={"optimizer": "sgd",
                                            "learning_rate": 1e12})
  with pytest.raises(TrainingDiverged, match="pretraining diverged by epoch"):
    run(config, str(tmp_path / "nan"))
  assert not (tmp_path / "nan" / "results.json").exists()
  for record in read_metrics(str(tmp_path / "nan")):
    json.dumps(record, allow_nan=False)  # strict JSON, no NaN


def test_rerun_reuses_own_autoencoder_only_with_same_pretraining(tmp_path,
                                                                 blobs_npz):
  workdir = str(tmp_path / "run")
  run(tiny_config(blobs_npz, method="ae_kmeans"), workdir)
  os.remove(os.path.join(workdir, "results.json"))  # as if interrupted
  again = run(tiny_config(blobs_npz, method="dec"), workdir)
  # Not pretrained again: its pretraining is the first run's, as recorded.
  recorded = again["pretrained_from"]["pretrain_s"]
  assert again["pretrain_reused"] and recorded > 0
  assert again["times_s"]["pretrain"] == again["times_s"]["carried_over"]
  assert again["times_s"]["pretrain"] == recorded
  changed = run(tiny_config(blobs_npz, method="dec", overwrite=True,
                            pretrain={"epochs": 3}), workdir)
  assert "pretrain_reused" not in changed
  assert "carried_over" not in changed["times_s"]


@pytest.mark.parametrize("x", [
    np.ones((50, 3)),                               # constant
    np.repeat(np.eye(3), 20, axis=0),               # 3 distinct points, k=4
])
def test_too_few_distinct_points_is_rejected(tmp_path, x):
  path = tmp_path / "x.npy"
  np.save(path, x)
  with pytest.raises(DecJaxError, match="distinct point"):
    run(tiny_config(str(path)), str(tmp_path / "never"))
  assert not (tmp_path / "never").exists()


def test_corrupt_data_file_leaves_no_workdir(tmp_path):
  path = tmp_path / "broken.npz"
  path.write_bytes(b"PK\x03\x04 not really a zip archive")
  with pytest.raises(DecJaxError, match="cannot read"):
    run(tiny_config(str(path)), str(tmp_path / "never"))
  assert not (tmp_path / "never").exists()


def test_kmeans_method_ignores_training_batch_sizes_on_small_data(tmp_path):
  path = tmp_path / "small.npy"
  np.save(path, np.concatenate([np.zeros((10, 2)), np.ones((10, 2))]) +
          np.random.default_rng(0).normal(0, 0.01, (20, 2)))
  results = run(tiny_config(str(path), method="kmeans", n_clusters=2,
                            pretrain={"batch_size": 256}),
                str(tmp_path / "km"))
  assert sorted(results["cluster_sizes"]) == [10, 10]


def test_diverging_dec_keeps_the_autoencoder_for_a_rerun(tmp_path, blobs_npz):
  workdir = str(tmp_path / "run")
  with pytest.raises(TrainingDiverged, match="DEC diverged by iteration 10"):
    run(tiny_config(blobs_npz, dec={"learning_rate": 1e30}), workdir)
  assert not os.path.exists(os.path.join(workdir, "results.json"))
  dec_records = [r for r in read_metrics(workdir) if r["stage"] == "dec"]
  assert [r["iteration"] for r in dec_records] == [0]
  rerun = run(tiny_config(blobs_npz, dec={"learning_rate": 0.01}), workdir)
  assert rerun["pretrain_reused"]
  assert "dec_resumed_from_iteration" not in rerun  # DEC started afresh
  assert rerun["acc"] > 0.9  # four well-separated blobs


def test_idec_runs_end_to_end_and_trains_the_decoder(tmp_path, blobs_npz):
  from dec_jax.runner.workdir import load_params
  results = run(tiny_config(blobs_npz, method="idec"), str(tmp_path / "idec"))
  assert "idec" in results["times_s"]
  assert results["acc"] > 0.9  # four well-separated blobs
  labels = np.load(tmp_path / "idec" / "assignments.npz")["labels"]
  assert results["ari"] == pytest.approx(
      independent_scores(np.load(blobs_npz)["y"], labels)["ari"], abs=1e-12)
  saved = load_params(str(tmp_path / "idec"), "dec")
  pretrained = load_params(str(tmp_path / "idec"), "autoencoder")
  assert set(saved) == {"encoder", "decoder", "centres"}
  assert not np.allclose(saved["decoder"]["dense_0"]["kernel"],
                         pretrained["decoder"]["dense_0"]["kernel"])
