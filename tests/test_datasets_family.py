"""The named sets `usps` (usps.h5) and `kmnist` (IDX files), on small
generated files in their real layouts; errors when files are missing."""

import os

import h5py
import numpy as np
import pytest

from dec_jax.runner import data
from dec_jax.errors import DecJaxError
from dec_jax.runner.run import run
from tests.conftest import write_idx
from tests.test_end_to_end import tiny_config


def write_usps(path, n_train=30, n_test=12, seed=0, scale=1.0):
  """An usps.h5 in the common layout: train/test groups of data [N, 256]
  (float pixels in [0, 1]) and target [N]."""
  rng = np.random.default_rng(seed)
  with h5py.File(path, "w") as f:
    for group, n in (("train", n_train), ("test", n_test)):
      g = f.create_group(group)
      g.create_dataset("data", data=rng.random((n, 256)) * scale)
      g.create_dataset("target", data=rng.integers(0, 10, n))
  return str(path)


def test_usps_from_folder_or_file_and_splits(tmp_path):
  path = write_usps(tmp_path / "usps.h5")
  for data_dir in (str(tmp_path), path):
    ds = data.load("usps", data_dir=data_dir)
    assert ds.name == "usps" and ds.x.shape == (42, 256)
    assert ds.image_shape == (16, 16) and ds.scale == 1.0
    assert ds.x.dtype == np.float32 and 0 <= ds.x.min() and ds.x.max() <= 1
  with h5py.File(path) as f:
    np.testing.assert_allclose(data.load("usps", data_dir=path).x[30:],
                               f["test"]["data"][()], rtol=1e-6)
    np.testing.assert_array_equal(data.load("usps", data_dir=path).y,
                                  np.concatenate([f["train"]["target"][()],
                                                  f["test"]["target"][()]]))
  assert data.load("usps", data_dir=path, split="train").num_samples == 30
  assert data.load("usps", data_dir=path, split="test").num_samples == 12


def test_usps_errors_say_where_to_get_it(tmp_path):
  with pytest.raises(DecJaxError, match="needs --config.data_dir.*usps.h5"):
    data.load("usps")
  with pytest.raises(DecJaxError, match="does not exist.*train/ and test/"):
    data.load("usps", data_dir=str(tmp_path))  # folder without usps.h5
  other = tmp_path / "other.h5"
  with h5py.File(other, "w") as f:
    f.create_dataset("images", data=np.zeros((4, 256)))
  with pytest.raises(DecJaxError, match="groups"):
    data.load("usps", data_dir=str(other))
  wide = write_usps(tmp_path / "wide.h5", scale=2.0)
  with pytest.raises(DecJaxError, match=r"\[0, 1\].*config.scale"):
    data.load("usps", data_dir=wide)
  assert data.load("usps", data_dir=wide, scale=2.0).x.max() <= 1.0


def write_kmnist(folder, n_train=40, n_test=20):
  rng = np.random.default_rng(1)
  os.makedirs(folder, exist_ok=True)
  for split, n in (("train", n_train), ("t10k", n_test)):
    write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"),
              rng.integers(0, 256, size=(n, 28, 28)), 0x803)
    write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"),
              rng.integers(0, 10, size=n), 0x801)
  return str(folder)


def test_kmnist_from_idx_folder(tmp_path):
  folder = write_kmnist(tmp_path / "kmnist")
  ds = data.load("kmnist", data_dir=folder)
  assert ds.name == "kmnist" and ds.x.shape == (60, 784)
  assert ds.image_shape == (28, 28) and ds.scale == 255.0
  assert ds.x.max() <= 1.0 and ds.y.shape == (60,)
  assert data.load("kmnist", data_dir=folder, split="test").num_samples == 20
  os.remove(os.path.join(folder, "t10k-labels-idx1-ubyte.gz"))
  with pytest.raises(DecJaxError,
                     match="missing t10k-labels.*rois-codh/kmnist"):
    data.load("kmnist", data_dir=folder)


def test_runs_on_usps_and_kmnist_by_name(tmp_path):
  usps = write_usps(tmp_path / "usps.h5", n_train=60, n_test=20)
  quick = {"method": "ae_kmeans", "pretrain": {"epochs": 2},
           "report": False, "tensorboard": False}
  results = run(tiny_config("usps", data_dir=str(tmp_path), **quick),
                str(tmp_path / "u"))
  assert results["dataset"] == "usps" and results["n_samples"] == 80
  assert results["dim"] == 256
  kmnist = write_kmnist(tmp_path / "k")
  results = run(tiny_config("kmnist", data_dir=kmnist, **quick),
                str(tmp_path / "km"))
  assert results["dataset"] == "kmnist" and results["dim"] == 784
  with pytest.raises(DecJaxError, match="usps"):
    run(tiny_config("usps", method="ae_kmeans"), str(tmp_path / "none"))
  assert not os.path.exists(tmp_path / "none")
  del usps
