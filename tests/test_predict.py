"""A trained DEC run applied to data: library API and CLI."""

import os
import subprocess
import sys

import numpy as np
import pytest

from dec_jax.runner import data
from dec_jax.errors import DecJaxError
from dec_jax.apps.predict import load_trained
from dec_jax.runner.run import run
from experiments.predict import predict_to_file
from tests.test_end_to_end import REPO, tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  root = tmp_path_factory.mktemp("predict")
  from sklearn.datasets import make_blobs
  x, y = make_blobs(n_samples=240, centers=4, n_features=8, cluster_std=0.6,
                    random_state=0)
  path = str(root / "blobs.npz")
  np.savez(path, x=x.astype(np.float32), y=y)
  workdir = str(root / "run")
  results = run(tiny_config(path), workdir)
  return workdir, path, x.astype(np.float32), results


def test_predict_reproduces_the_runs_final_assignment(trained):
  workdir, _, x, results = trained
  model = load_trained(workdir)
  saved = np.load(os.path.join(workdir, "assignments.npz"))
  np.testing.assert_array_equal(model.predict(x), saved["labels"])
  np.testing.assert_allclose(model.soft_assign(x), saved["q"], rtol=1e-4,
                             atol=1e-6)
  assert model.embed(x[:5]).shape == (5, 4)
  assert model.n_clusters == results["n_clusters"]


def test_predict_rejects_data_of_the_wrong_width_or_with_nan(trained):
  model = load_trained(trained[0])
  with pytest.raises(DecJaxError, match=r"expects \[N, 8\]"):
    model.predict(np.zeros((3, 5)))
  with pytest.raises(DecJaxError, match=r"shape \(3, 5\) does not fit"):
    model.predict(data.from_arrays(np.ones((3, 5))))  # a Dataset's shape
  with pytest.raises(DecJaxError, match="NaN"):
    model.predict(np.full((3, 8), np.nan))


def test_predict_to_file_npz_csv_and_refusals(trained, tmp_path):
  workdir, path, _, results = trained
  scores = predict_to_file(workdir, path, str(tmp_path / "p.npz"))
  assert scores["acc"] == pytest.approx(results["acc"])
  with np.load(tmp_path / "p.npz") as out:
    assert out["q"].shape == (240, 4) and out["z"].shape == (240, 4)
  predict_to_file(workdir, path, str(tmp_path / "p.csv"))
  ids = np.loadtxt(tmp_path / "p.csv", dtype=int)
  np.testing.assert_array_equal(ids, np.load(tmp_path / "p.npz")["labels"])
  with pytest.raises(DecJaxError, match="exists"):
    predict_to_file(workdir, path, str(tmp_path / "p.csv"))
  with pytest.raises(DecJaxError, match="no trained DEC model"):
    predict_to_file(str(tmp_path), path, str(tmp_path / "q.npz"))
  assert not (tmp_path / "q.npz").exists()


def test_predict_reads_a_csv_label_column_as_told(trained, tmp_path):
  # The run was trained on an npz (no label column): a CSV with its labels
  # in the last column fits once --label_column says where they are.
  workdir, path, x, results = trained
  saved = np.load(os.path.join(workdir, "assignments.npz"))["labels"]
  labels = np.load(path)["y"]
  csv = tmp_path / "new.csv"
  np.savetxt(csv, np.column_stack([x, labels]), delimiter=",", fmt="%.8g")
  with pytest.raises(DecJaxError, match=r"expects \[N, 8\]"):
    predict_to_file(workdir, str(csv), str(tmp_path / "a.npz"))
  scores = predict_to_file(workdir, str(csv), str(tmp_path / "b.npz"),
                           label_column="-1")
  assert scores["acc"] == pytest.approx(results["acc"])
  np.savetxt(csv, x, delimiter=",", fmt="%.8g")  # no labels
  assert predict_to_file(workdir, str(csv), str(tmp_path / "c.npz"),
                         label_column="none") == {}
  with pytest.raises(DecJaxError, match="--label_column is for CSV"):
    predict_to_file(workdir, path, str(tmp_path / "d.npz"), label_column="0")
  np.testing.assert_array_equal(np.load(tmp_path / "c.npz")["labels"], saved)


def test_bfloat16_run_predicts_its_own_assignment(tmp_path, blobs_npz):
  workdir = str(tmp_path / "bf16")
  run(tiny_config(blobs_npz, model={"dtype": "bfloat16"}), workdir)
  model = load_trained(workdir)
  assert model.dtype == "bfloat16"
  x = np.load(blobs_npz)["x"]
  np.testing.assert_array_equal(
      model.predict(x), np.load(os.path.join(workdir, "assignments.npz"))[
          "labels"])


def test_uint8_training_scale_is_reused_for_float_data(tmp_path):
  rng = np.random.default_rng(0)
  images = np.concatenate([rng.integers(0, 60, (60, 4)),
                           rng.integers(190, 255, (60, 4))]).astype(np.uint8)
  np.save(tmp_path / "u8.npy", images)
  np.save(tmp_path / "f.npy", images.astype(np.float64))
  workdir = str(tmp_path / "run")
  run(tiny_config(str(tmp_path / "u8.npy"), n_clusters=2), workdir)
  assert load_trained(workdir).scale == 255.0
  predict_to_file(workdir, str(tmp_path / "f.npy"), str(tmp_path / "p.npz"))
  np.testing.assert_array_equal(
      np.load(tmp_path / "p.npz")["labels"],
      np.load(os.path.join(workdir, "assignments.npz"))["labels"])


def test_a_stacks_folder_names_its_members_models(trained, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  workdir, path, x, _ = trained
  for seed in (0, 1):
    shutil.copytree(workdir, tmp_path / "stack" / f"seed{seed}")
  with pytest.raises(DecJaxError, match=r"holds a stack of runs, each with "
                     r"its own model: .*\(seed0, seed1\)"):
    load_trained(str(tmp_path / "stack"))
  member = str(tmp_path / "stack" / "seed1")
  predict_to_file(member, path, str(tmp_path / "p.npz"))
  with np.load(tmp_path / "p.npz") as out:  # q from the one embedding pass
    np.testing.assert_allclose(out["q"], load_trained(member).soft_assign(x),
                               rtol=1e-5, atol=1e-7)


def test_predict_into_a_missing_folder_is_refused(trained, tmp_path):
  with pytest.raises(DecJaxError, match="does not exist"):
    predict_to_file(trained[0], trained[1], str(tmp_path / "no" / "p.npz"))


def test_predict_cli_exits_2_without_a_model(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.predict", f"--workdir={tmp_path}",
       "--data=digits", f"--out={tmp_path / 'o.npz'}"], cwd=REPO,
      capture_output=True, text=True, timeout=120, check=False,
      env={**os.environ, "PYTHONPATH": REPO})
  assert proc.returncode == 2 and "no trained DEC model" in proc.stderr
  assert not (tmp_path / "o.npz").exists()


def test_raw_uint8_inputs_give_the_runs_own_clusters(tmp_path):
  """A model trained on uint8 pixels (scale auto: / 255) takes the raw
  values as stored in the file, in any layout, and gives the run's q."""
  from sklearn.datasets import make_blobs  # pylint: disable=g-import-not-at-top
  x, _ = make_blobs(n_samples=160, centers=4, n_features=4, cluster_std=1.5,
                    random_state=1)
  images = np.clip((x - x.min()) / np.ptp(x) * 255, 0, 255).astype(np.uint8)
  np.save(tmp_path / "u8.npy", images)
  workdir = str(tmp_path / "run")
  run(tiny_config(str(tmp_path / "u8.npy")), workdir)
  model = load_trained(workdir)
  saved = np.load(os.path.join(workdir, "assignments.npz"))
  for raw in (images, images.astype(np.float64), images.reshape(160, 2, 2)):
    np.testing.assert_array_equal(model.predict(raw), saved["labels"])
    np.testing.assert_allclose(model.soft_assign(raw), saved["q"], rtol=1e-4,
                               atol=1e-6)
  # A Dataset loaded with the run's scale is taken as its features.
  loaded = data.load(str(tmp_path / "u8.npy"), keep_uint8=True)
  np.testing.assert_array_equal(model.predict(loaded), saved["labels"])
  with pytest.raises(DecJaxError, match=r"loaded with scale=1.*scale=255"):
    model.predict(data.load(str(tmp_path / "u8.npy"), scale=1))
  predict_to_file(workdir, str(tmp_path / "u8.npy"), str(tmp_path / "p.npz"))
  np.testing.assert_array_equal(np.load(tmp_path / "p.npz")["labels"],
                                saved["labels"])
