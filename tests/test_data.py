"""Loaders: built-in digits, IDX folders, user files, and their bad inputs."""

import gzip
import os

import numpy as np
import pytest

from dec_jax.runner import data
from dec_jax.errors import DecJaxError
from tests.conftest import write_idx

SHARED_MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                            "data", "mnist")
DEBIAN_FASHION = "/usr/share/datasets/fashion-mnist"


def test_digits_is_scaled_to_unit_range():
  ds = data.load("digits")
  assert ds.x.shape == (1797, 64) and ds.x.dtype == np.float32
  assert ds.x.min() == 0.0 and ds.x.max() == 1.0
  assert ds.y.shape == (1797,) and set(np.unique(ds.y)) == set(range(10))
  assert ds.image_shape == (8, 8)


def test_idx_folder_splits_and_scaling(idx_folder):
  all_ = data.load("mnist", data_dir=idx_folder)
  train = data.load("mnist", data_dir=idx_folder, split="train")
  test = data.load("mnist", data_dir=idx_folder, split="test", scale=1)
  assert all_.x.shape == (60, 36) and all_.image_shape == (6, 6)
  assert train.x.shape == (40, 36) and test.x.shape == (20, 36)
  np.testing.assert_allclose(all_.x[:40], train.x)
  np.testing.assert_allclose(all_.x[40:] * 255, test.x, rtol=1e-6)
  assert all_.x.max() <= 1.0


@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST), reason="no shared MNIST")
def test_real_mnist_test_split_from_shared_folder():
  ds = data.load("mnist", data_dir=SHARED_MNIST, split="test")
  assert ds.x.shape == (10000, 784)
  assert np.bincount(ds.y).tolist()[:2] == [980, 1135]


def test_user_files_npz_npy_csv(tmp_path):
  x = np.arange(12, dtype=np.float64).reshape(6, 2)
  y = np.array([0, 1, 0, 1, 0, 1])
  np.savez(tmp_path / "a.npz", x=x, y=y)
  np.save(tmp_path / "b.npy", x)
  np.savetxt(tmp_path / "c.csv", np.column_stack([x, y]), delimiter=",",
             header="f0,f1,label", comments="")
  npz = data.load(str(tmp_path / "a.npz"))
  npy = data.load(str(tmp_path / "b.npy"))
  csv = data.load(str(tmp_path / "c.csv"), label_column=-1)
  for ds in (npz, npy, csv):
    np.testing.assert_allclose(ds.x, x)
  np.testing.assert_array_equal(npz.y, y)
  np.testing.assert_array_equal(csv.y, y)
  assert npy.y is None


def _corrupt(path):
  with open(path, "wb") as f:
    f.write(b"\x1f\x8b this is not gzip")


@pytest.mark.parametrize("breakage, message", [
    (lambda d: os.remove(os.path.join(d, "t10k-labels-idx1-ubyte.gz")),
     "missing t10k-labels"),
    (lambda d: _corrupt(os.path.join(d, "train-images-idx3-ubyte.gz")),
     "corrupt or truncated"),
    (lambda d: write_idx(os.path.join(d, "train-images-idx3-ubyte.gz"),
                         np.zeros((4, 6, 6)), 0x801), "magic number"),
    (lambda d: write_idx(os.path.join(d, "train-labels-idx1-ubyte.gz"),
                         np.zeros(39), 0x801), "differ in length"),
])
def test_broken_idx_folder_gives_clear_error(idx_folder, breakage, message):
  breakage(idx_folder)
  with pytest.raises(DecJaxError, match=message):
    data.load("mnist", data_dir=idx_folder)


def test_corrupt_deflate_stream_gives_clear_error(idx_folder):
  path = os.path.join(idx_folder, "train-images-idx3-ubyte.gz")
  raw = bytearray(open(path, "rb").read())
  raw[20:40] = b"\xff" * 20  # valid gzip header, broken compressed data
  open(path, "wb").write(bytes(raw))
  with pytest.raises(DecJaxError, match="corrupt or truncated"):
    data.load("mnist", data_dir=idx_folder)


def test_train_and_test_images_of_different_sizes(idx_folder):
  write_idx(os.path.join(idx_folder, "t10k-images-idx3-ubyte.gz"),
            np.zeros((20, 5, 5)), 0x803)
  with pytest.raises(DecJaxError, match="pixels"):
    data.load("mnist", data_dir=idx_folder)


@pytest.mark.skipif(not os.path.isdir(DEBIAN_FASHION),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian_package_without_data_dir():
  ds = data.load("fashion_mnist", split="test")
  assert ds.x.shape == (10000, 784) and ds.x.max() <= 1.0
  assert np.bincount(ds.y).tolist() == [1000] * 10


def test_uint8_user_images_are_scaled_like_pixels(tmp_path):
  np.save(tmp_path / "img.npy", np.full((4, 3, 3), 255, np.uint8))
  ds = data.load(str(tmp_path / "img.npy"))
  assert ds.x.shape == (4, 9) and ds.x.max() == 1.0
  assert ds.image_shape == (3, 3)


def test_truncated_idx_file(idx_folder):
  path = os.path.join(idx_folder, "train-images-idx3-ubyte.gz")
  raw = gzip.decompress(open(path, "rb").read())
  with gzip.open(path, "wb") as f:
    f.write(raw[:-10])
  with pytest.raises(DecJaxError, match="truncated"):
    data.load("mnist", data_dir=idx_folder)


@pytest.mark.parametrize("make, message", [
    (lambda p: np.save(p / "x.npy", np.array([1.0, np.nan]).reshape(1, 2)
                       .repeat(3, 0)), "NaN or inf"),
    (lambda p: np.save(p / "x.npy", np.array([[1.0, np.inf]] * 3)),
     "NaN or inf"),
    (lambda p: np.save(p / "x.npy", np.ones(5)), r"shape \[N, D\]"),
    (lambda p: np.savez(p / "x.npz", features=np.ones((3, 2))),
     "array named 'x'"),
    (lambda p: np.save(p / "x.npy", np.array([{"a": 1}] * 3, dtype=object),
                       allow_pickle=True), "cannot read"),
    (lambda p: (p / "x.csv").write_text("1,2\n3,oops\n"), "cannot read"),
    (lambda p: (p / "x.npy").write_bytes(b""), "empty"),
    (lambda p: np.savez(p / "x.npz", x=np.ones((3, 2)), y=np.ones(2)),
     "labels must have shape"),
    (lambda p: np.savez(p / "x.npz", x=np.ones((3, 2)), y=[0.5, 1, 2]),
     "labels must be integers"),
    # beyond int32: 0 and 2**32 would both become class 0
    (lambda p: np.savez(p / "x.npz", x=np.ones((3, 2)), y=[0, 2**32, 1]),
     "labels must fit in int32"),
    # x checked before y: a 0-d x named, not an IndexError
    (lambda p: np.savez(p / "x.npz", x=np.float32(3), y=[1]),
     r"shape \[N, D\]"),
    # a missing value in the first row is not a header: an error as anywhere
    (lambda p: (p / "x.csv").write_text("5.0,,1\n7,8,0\n9,1,1\n"),
     "cannot read"),
    (lambda p: (p / "x.csv").write_text("5.0,NA,1\n7,8,0\n9,1,1\n"),
     "cannot read"),
    (lambda p: np.save(p / "x.npy", np.zeros((3, 3, 8, 8), np.uint8)),
     r"reads as channels first .*np.moveaxis"),
])
def test_bad_user_files_give_clear_errors(tmp_path, make, message):
  make(tmp_path)
  path = next(str(p) for p in tmp_path.iterdir())
  with pytest.raises(DecJaxError, match=message):
    data.load(path)


@pytest.mark.parametrize("text, rows", [
    ("0,1,2\n5,6,1\n7,8,0\n9,1,1\n", 3),   # pandas' header of an unnamed frame
    ("\ufeff5,6,1\n7,8,0\n9,1,1\n", 3),    # Excel's UTF-8 byte-order mark
    ("\ufeffa,b,label\n5,6,1\n7,8,0\n", 2),  # both
])
def test_csv_headers_are_told_from_rows(tmp_path, text, rows):
  path = tmp_path / "t.csv"
  path.write_text(text, encoding="utf-8")
  ds = data.load(str(path), label_column=-1)
  assert ds.x.shape == (rows, 2) and ds.x[0].tolist() == [5.0, 6.0]
  assert ds.y.tolist()[:2] == [1, 0]


def test_label_column_of_a_file_that_is_not_csv_is_refused(tmp_path):
  np.save(tmp_path / "xy.npy", np.ones((5, 3)))
  with pytest.raises(DecJaxError, match="label_column is for CSV files"):
    data.load(str(tmp_path / "xy.npy"), label_column=-1)


def test_unknown_sources_and_options():
  with pytest.raises(DecJaxError, match="Unknown dataset 'cifar'"):
    data.load("cifar")
  with pytest.raises(DecJaxError, match="does not exist"):
    data.load("/no/such/file.npz")
  with pytest.raises(DecJaxError, match="Unknown split"):
    data.load("digits", split="valid")
  with pytest.raises(DecJaxError, match="scale"):
    data.load("digits", scale="-3")
  with pytest.raises(DecJaxError, match="not a folder"):
    data.load("mnist", data_dir="/no/such/folder")


def test_h5_files_plain_and_usps_layout(tmp_path):
  import h5py
  rng = np.random.default_rng(0)
  with h5py.File(tmp_path / "plain.h5", "w") as f:
    f["x"] = rng.random((6, 4))
    f["y"] = np.arange(6) % 2
  with h5py.File(tmp_path / "usps.h5", "w") as f:
    for split, n in (("train", 7), ("test", 3)):
      f.create_group(split)
      f[split]["data"] = rng.random((n, 256))
      f[split]["target"] = np.arange(n) % 10
  plain = data.load(str(tmp_path / "plain.h5"))
  assert plain.x.shape == (6, 4) and plain.y.tolist() == [0, 1, 0, 1, 0, 1]
  usps = data.load(str(tmp_path / "usps.h5"))
  assert usps.x.shape == (10, 256) and usps.y.shape == (10,)
  assert data.load(str(tmp_path / "usps.h5"), split="test").x.shape == (3, 256)


@pytest.mark.parametrize("make, message", [
    (lambda p: (p / "x.h5").write_bytes(b"\x89HDF\r\n\x1a\n garbage"),
     "cannot read"),
    (lambda p: (p / "x.h5").write_bytes(b""), "empty"),
])
def test_bad_h5_files(tmp_path, make, message):
  make(tmp_path)
  with pytest.raises(DecJaxError, match=message):
    data.load(str(tmp_path / "x.h5"))


def test_h5_without_known_layout(tmp_path):
  import h5py
  with h5py.File(tmp_path / "odd.h5", "w") as f:
    f["features"] = np.ones((3, 2))
  with pytest.raises(DecJaxError, match="must hold a dataset 'x'"):
    data.load(str(tmp_path / "odd.h5"))


def test_truncated_h5_file(tmp_path):
  import h5py
  with h5py.File(tmp_path / "t.h5", "w") as f:
    f["x"] = np.random.rand(2000, 8)
  raw = (tmp_path / "t.h5").read_bytes()
  (tmp_path / "t.h5").write_bytes(raw[:len(raw) // 2])
  with pytest.raises(DecJaxError, match="cannot read"):
    data.load(str(tmp_path / "t.h5"))


# ---------------------------------------------------- splits of user files


def _user_file(tmp_path, suffix):
  """A 6 x 2 data file of each format without splits."""
  import h5py
  x = np.arange(12, dtype=np.float64).reshape(6, 2)
  path = tmp_path / f"d{suffix}"
  if suffix == ".npz":
    np.savez(path, x=x)
  elif suffix == ".npy":
    np.save(path, x)
  elif suffix == ".csv":
    np.savetxt(path, x, delimiter=",")
  else:
    with h5py.File(path, "w") as f:
      f["x"] = x
  return str(path)


@pytest.mark.parametrize("suffix", [".npz", ".npy", ".csv", ".h5"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_split_of_a_file_without_splits_is_refused(tmp_path, suffix, split):
  path = _user_file(tmp_path, suffix)
  with pytest.raises(DecJaxError, match=rf"split='{split}': .*d\{suffix} "
                     r"is .*no train/test split"):
    data.load(path, split=split)
  assert data.load(path).x.shape == (6, 2)  # split=all reads it


def test_split_of_the_digits_is_refused():
  # They hold 1,797 images and no test set: a split must not read them all.
  with pytest.raises(DecJaxError, match="split='test': digits is "
                     "scikit-learn's 8x8 digits, which holds no train/test"):
    data.load("digits", split="test")


def test_split_of_an_h5_file_with_split_groups_is_applied(tmp_path):
  import h5py
  with h5py.File(tmp_path / "s.h5", "w") as f:
    f["x"] = np.zeros((5, 3))  # the whole set, beside its splits
    for split, n in (("train", 4), ("test", 2)):
      f[f"{split}/data"] = np.full((n, 3), n, np.float64)
  assert data.load(str(tmp_path / "s.h5")).x.shape == (5, 3)
  test = data.load(str(tmp_path / "s.h5"), split="test")
  assert test.x.shape == (2, 3) and (test.x == 2).all()


# ------------------------------------------------ files of the wrong format


@pytest.mark.parametrize("suffix, message", [
    (".npz", r"not a valid \.npz file \(an \.npz is a zip archive"),
    (".npy", r"not a valid \.npy file"),
    (".h5", "not a valid HDF5 file"),
])
def test_random_bytes_are_not_taken_for_pickled_data(tmp_path, suffix,
                                                     message):
  path = tmp_path / f"garbage{suffix}"
  path.write_bytes(np.random.default_rng(0).bytes(1000))
  with pytest.raises(DecJaxError, match=message) as error:
    data.load(str(path))
  assert "pickle" not in str(error.value)


def test_npy_and_npz_swapped_are_named(tmp_path):
  np.save(tmp_path / "a.npy", np.ones((3, 2)))
  os.rename(tmp_path / "a.npy", tmp_path / "a.npz")
  with pytest.raises(DecJaxError, match="rename it to .npy"):
    data.load(str(tmp_path / "a.npz"))
  np.savez(tmp_path / "b.npz", x=np.ones((3, 2)))
  os.rename(tmp_path / "b.npz", tmp_path / "b.npy")
  with pytest.raises(DecJaxError, match="rename it to .npz"):
    data.load(str(tmp_path / "b.npy"))


# ------------------------------------------------------------ fingerprints


def test_fingerprint_follows_the_contents_not_the_loading(tmp_path):
  x = np.random.default_rng(0).integers(0, 256, (20, 3, 3)).astype(np.uint8)
  y = np.arange(20) % 3
  np.savez(tmp_path / "a.npz", x=x, y=y)
  first = data.load(str(tmp_path / "a.npz")).fingerprint
  assert data.load(str(tmp_path / "a.npz"), keep_uint8=True,
                   scale=2).fingerprint == first  # same data, read otherwise
  os.rename(tmp_path / "a.npz", tmp_path / "moved.npz")
  assert data.load(str(tmp_path / "moved.npz")).fingerprint == first
  x[4, 1, 2] ^= 1  # one bit of one value
  np.savez(tmp_path / "b.npz", x=x, y=y)
  assert data.load(str(tmp_path / "b.npz")).fingerprint != first
  np.savez(tmp_path / "c.npz", x=x.reshape(20, 9), y=y)  # other shape
  assert data.load(str(tmp_path / "c.npz")).fingerprint not in (
      first, data.load(str(tmp_path / "b.npz")).fingerprint)


def test_fingerprint_covers_labels_and_dtype():
  x = np.ones((4, 2), np.float32)
  base = data.fingerprint(x, np.array([0, 1, 0, 1]))
  assert data.fingerprint(x, np.array([0, 1, 1, 1])) != base
  assert data.fingerprint(x, None) != base
  assert data.fingerprint(x.astype(np.float64), np.array([0, 1, 0, 1])) != base
  assert data.from_arrays(x).fingerprint == data.fingerprint(x)
  assert data.Dataset(x=x, y=None, name="d").fingerprint == data.fingerprint(x)
