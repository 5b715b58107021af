"""Data loading: one `load` call for built-in sets, IDX folders and user files.

Every source ends as a `Dataset`: float32 inputs of shape [N, D] (images are
flattened, their shape kept in `image_shape`) and int32 labels when known.
Labels are only used to score a clustering, never to train.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import math
import os
import struct
import warnings
import zlib
from typing import Optional, Sequence

import numpy as np

from dec_jax.errors import DecJaxError

# Image sets in the standard four-file IDX layout (MNIST and its drop-ins).
IDX_DATASETS = ("mnist", "fashion_mnist", "kmnist")
BUILTIN_DATASETS = ("digits", "usps") + IDX_DATASETS
SPLITS = ("all", "train", "test")
USER_FILE_SUFFIXES = (".npz", ".npy", ".csv", ".h5", ".hdf5")

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension

# Where to get each named set's files, said when they are missing.
_WHERE = {
    "mnist": "MNIST's four files are those of the MNIST database "
             "(yann.lecun.com/exdb/mnist or any mirror).",
    "fashion_mnist": "Fashion-MNIST's four files are in "
                     "github.com/zalandoresearch/fashion-mnist (data/fashion).",
    "kmnist": "KMNIST (Kuzushiji-MNIST) ships the four files in MNIST format "
              "under the same names (train-images-idx3-ubyte.gz, ...): see "
              "github.com/rois-codh/kmnist (download_data.py, 'MNIST format').",
    "usps": "USPS (9,298 16x16 digits, 7,291 train + 2,007 test) as usps.h5 "
            "with groups train/ and test/ holding data [N, 256] in [0, 1] and "
            "target [N], e.g. Kaggle's 'USPS dataset' (bistaumanga/usps-"
            "dataset); pass --config.data_dir=FILE_OR_ITS_FOLDER.",
}
USPS_FILE = "usps.h5"

# Folders searched when no data_dir is given (Debian's dataset packages).
_KNOWN_DIRS = {
    "fashion_mnist": ("/usr/share/datasets/fashion-mnist",),
    "mnist": ("/usr/share/datasets/mnist",),
}


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Inputs `x` [N, D] float32 (or raw uint8, see `divisor`), labels `y` [N]
  int32 or None, and provenance."""

  x: np.ndarray
  y: Optional[np.ndarray]
  name: str
  image_shape: Optional[tuple[int, ...]] = None
  scale: float = 1.0  # what the raw inputs are divided by
  # `fingerprint(raw inputs, labels)`, set by `load` / `from_arrays`; when
  # empty, computed here from x and y. Checkpoints keep it, so a model
  # trained on other data is never reused (`dataclasses.replace` keeps it).
  fingerprint: str = ""

  def __post_init__(self):
    if not self.fingerprint:
      object.__setattr__(self, "fingerprint", fingerprint(self.x, self.y))

  @property
  def divisor(self) -> float:
    """What `x` still has to be divided by to give the features: `scale`
    when it holds the raw uint8 inputs (`load(keep_uint8=True)`), else 1."""
    return self.scale if self.x.dtype == np.uint8 else 1.0

  @property
  def num_samples(self) -> int:
    return self.x.shape[0]

  @property
  def dim(self) -> int:
    return self.x.shape[1]


def load(
    source: str,
    *,
    split: str = "all",
    data_dir: Optional[str] = None,
    scale: str | float = "auto",
    label_column: Optional[int] = None,
    keep_uint8: bool = False,
) -> Dataset:
  """Loads a data set by name or path.

  Args:
    source: `digits` (scikit-learn 8x8 digits, no files needed), `mnist`,
      `fashion_mnist`, `kmnist` (IDX files in `data_dir`, else tfds), `usps`
      (`data_dir` is usps.h5 or the folder holding it), or a path
      to a `.npz` (array `x`, optional `y`), `.npy`, `.csv` or `.h5` file
      (`x`/`y`, or USPS's `train`/`test` groups of `data` and `target`).
    split: `all` (train + test, the transductive protocol), `train` or `test`;
      for the IDX sets and split HDF5 files.
    data_dir: folder with the four standard IDX gz files; for `usps`, the
      usps.h5 file or its folder.
    scale: divide the inputs by this number; `auto` uses 255 for 8-bit
      images (and uint8 user arrays), 16 for digits, 1 for other features.
    label_column: for CSV files, the column holding integer labels.
    keep_uint8: 8-bit inputs stay uint8 (flattened, not yet divided by
      `scale`): a quarter of the memory; see `Dataset.divisor`.

  Returns:
    The `Dataset`.

  Raises:
    DecJaxError: unknown source, missing or corrupt file, bad values.
  """
  if split not in SPLITS:
    raise DecJaxError(f"Unknown split {split!r}; expected one of {SPLITS}.")
  if label_column is not None and not source.lower().endswith(".csv"):
    raise DecJaxError(f"label_column is for CSV files; {source} gives its "
                      "labels apart ('y'), else they would be a feature.")
  x, y, image_shape, default_scale = _read_source(source, split, data_dir,
                                                  label_column)
  divisor = _resolve_scale(scale, default_scale)
  keep = keep_uint8 and x.dtype == np.uint8
  features = _as_features(x, source, keep_dtype=keep)  # checks x first
  y = None if y is None else _as_labels(y, x.shape[0], source)
  image_shape = tuple(image_shape) if image_shape else None
  digest = fingerprint(x, y)
  if not keep:
    features = (features / divisor).astype(np.float32)
    if source == "usps" and scale == "auto":
      _check_usps_range(features)
  return Dataset(x=features, y=y, name=os.path.basename(source),
                 image_shape=image_shape, scale=divisor, fingerprint=digest)


def _read_source(source: str, split: str, data_dir: Optional[str],
                 label_column: Optional[int]):
  """(raw inputs, raw labels or None, image shape, default scale) of a
  built-in set or a user file."""
  if source == "digits":
    if split != "all":
      raise _no_splits(source, split, "scikit-learn's 8x8 digits")
    return _load_digits()
  if source in IDX_DATASETS:
    x, y = _load_image_set(source, split, data_dir)
    return x, y, x.shape[1:], 255.0
  if source == "usps":
    x, y, image_shape = _load_usps(split, data_dir)
    return x, y, image_shape, 255.0 if x.dtype == np.uint8 else 1.0
  if source.lower().endswith(USER_FILE_SUFFIXES):
    x, y = _load_user_file(source, label_column, split)
    image_shape = x.shape[1:] if x.ndim > 2 else None
    return x, y, image_shape, 255.0 if x.dtype == np.uint8 else 1.0
  raise DecJaxError(
      f"Unknown dataset {source!r}; expected one of {BUILTIN_DATASETS} or a "
      f"path ending in one of {USER_FILE_SUFFIXES}.")


def from_arrays(x, y=None, *, scale: str | float = "auto") -> Dataset:
  """A `Dataset` of in-memory arrays x [N, ...] (and labels y [N]), checked
  and scaled as files are (`auto`: 255 for uint8, else 1). Its name carries
  its fingerprint, so checkpoints made from other arrays are never reused."""
  x = np.asarray(x)
  divisor = _resolve_scale(scale, 255.0 if x.dtype == np.uint8 else 1.0)
  image_shape = tuple(x.shape[1:]) if x.ndim > 2 else None
  features = np.ascontiguousarray(_as_features(x, "x") / divisor, np.float32)
  y = None if y is None else _as_labels(y, features.shape[0], "y")
  digest = fingerprint(x, y)
  return Dataset(x=features, y=y, name=f"array-{digest.split(':')[1][:12]}",
                 image_shape=image_shape, scale=divisor, fingerprint=digest)


def fingerprint(x: np.ndarray, y: Optional[np.ndarray] = None) -> str:
  """A hash of the inputs as read (bytes, shape, dtype) and of the labels.

  Checkpoint descriptions keep it: a file that changed since a model was
  trained on it gives another fingerprint, and the model is retrained.
  blake2b runs at about 0.6 GB/s: MNIST's 70,000 x 784 bytes in ~0.1 s.
  """
  digest = hashlib.blake2b(digest_size=16)
  for array in (x, y):
    if array is None:
      digest.update(b"none;")
      continue
    array = np.ascontiguousarray(array)
    digest.update(f"{array.dtype.str}{array.shape};".encode())
    digest.update(memoryview(array.reshape(-1)).cast("B"))
  return "blake2b:" + digest.hexdigest()


def _resolve_scale(scale: str | float, default: float) -> float:
  if isinstance(scale, str):
    if scale == "auto":
      return default
    try:
      scale = float(scale)
    except ValueError:
      raise DecJaxError(
          f"scale must be 'auto' or a positive number, got {scale!r}.") from None
  if not np.isfinite(scale) or scale <= 0:
    raise DecJaxError(f"scale must be a positive number, got {scale!r}.")
  return float(scale)


def _as_features(x: np.ndarray, source: str,
                 keep_dtype: bool = False) -> np.ndarray:
  """Checks values and flattens [N, ...] to [N, D] float32 (or, with
  `keep_dtype`, to [N, D] of x's integer dtype)."""
  if (x.dtype == object or not np.issubdtype(x.dtype, np.number)
      or np.issubdtype(x.dtype, np.complexfloating)):
    raise DecJaxError(
        f"{source}: inputs must be a numeric array, got dtype {x.dtype}.")
  if x.ndim < 2:
    raise DecJaxError(
        f"{source}: inputs must have shape [N, D] (or [N, H, W, ...] images), "
        f"got shape {x.shape}.")
  if x.shape[0] < 2 or x.size == 0:
    raise DecJaxError(
        f"{source}: need at least 2 samples with at least 1 feature, got "
        f"shape {x.shape}.")
  if x.ndim == 4 and x.shape[1] in (1, 3, 4) and x.shape[-1] > 4:
    raise DecJaxError(
        f"{source}: images must be [N, H, W, C] (channels last); shape "
        f"{x.shape} reads as channels first [N, C, H, W] (conv layers and "
        "augmentation would act on the wrong axes): pass "
        "np.moveaxis(x, 1, -1).")
  if keep_dtype and np.issubdtype(x.dtype, np.integer):
    return x.reshape(x.shape[0], -1)
  given = x.reshape(x.shape[0], -1)
  with np.errstate(over="ignore"):  # too large for float32: inf, caught below
    x = given.astype(np.float32)
  bad = ~np.isfinite(x)
  if bad.any():
    rows = np.flatnonzero(bad.any(axis=1))
    raise DecJaxError(
        f"{source}: inputs contain NaN or inf in {rows.size} rows (first rows: "
        f"{rows[:5].tolist()}); clean or impute them first.")
  if np.issubdtype(given.dtype, np.floating) and given.dtype.itemsize > 4:
    _check_spread_kept(given, x, source)
  return x


def _check_spread_kept(given: np.ndarray, x: np.ndarray, source: str,
                       rows: int = 65536) -> None:
  """Refuses float64 inputs whose float32 copy lost their spread: float32
  keeps 24 bits, so a feature such as 1e8 + N(0, 1) (a large offset, a
  small spread) becomes a few distinct values, and would be clustered as
  such. A spread at float64's rounding noise (a constant feature) is not
  one. Read on evenly spaced rows (at most `rows`): bounded memory."""
  step = max(1, given.shape[0] // rows)
  given, x = given[::step], x[::step]
  wanted = given.std(axis=0)
  kept = x.std(axis=0, dtype=np.float64)
  real = wanted > 1e-9 * np.abs(given).max(axis=0)
  lost = np.flatnonzero(real & (np.abs(kept - wanted) > 0.01 * wanted))
  if lost.size:
    c = int(lost[0])
    raise DecJaxError(
        f"{source}: float32, which training uses, cannot hold the spread of "
        f"{lost.size} feature(s) around their offset (feature {c}: mean "
        f"{given[:, c].mean(dtype=np.float64):.6g}, sd {wanted[c]:.3g}, "
        f"{kept[c]:.3g} in float32); subtract each feature's mean (or "
        "standardise) first.")


def _as_labels(y: np.ndarray, n: int, source: str) -> np.ndarray:
  y = np.asarray(y)
  if y.ndim != 1 or y.shape[0] != n:
    raise DecJaxError(
        f"{source}: labels must have shape [{n}] to match the inputs, got "
        f"shape {y.shape}.")
  if not np.issubdtype(y.dtype, np.integer):
    if not np.issubdtype(y.dtype, np.floating) or not np.all(
        np.isfinite(y) & (y == np.round(y))):
      raise DecJaxError(f"{source}: labels must be integers, got {y.dtype} "
                        "values that are not whole numbers.")
  info = np.iinfo(np.int32)
  if y.size and (y.min() < info.min or y.max() > info.max):
    raise DecJaxError(f"{source}: labels must fit in int32 (distinct classes "
                      f"would merge), got values in [{y.min()}, {y.max()}].")
  return y.astype(np.int32)


def _load_digits():
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  digits = load_digits()
  return digits.images, digits.target, (8, 8), 16.0


# ----------------------------------------------------------------- IDX sets


def _load_image_set(name: str, split: str, data_dir: Optional[str]):
  """Reads an IDX folder if one is given or known, else asks tfds; a missing
  or broken file is reported with where to get the set."""
  try:
    if data_dir:
      return read_idx_folder(data_dir, _splits(split))
    for folder in _KNOWN_DIRS.get(name, ()):
      if _has_idx_files(folder):
        return read_idx_folder(folder, _splits(split))
    return _load_tfds(name, split)
  except DecJaxError as e:
    raise DecJaxError(f"{e} {_WHERE[name]}") from None


def _load_usps(split: str, data_dir: Optional[str]):
  """USPS from usps.h5 (`data_dir` is the file or its folder): (x, y, shape)."""
  if not data_dir:
    raise DecJaxError(f"dataset=usps needs --config.data_dir. {_WHERE['usps']}")
  path = data_dir
  if os.path.isdir(data_dir):
    path = os.path.join(data_dir, USPS_FILE)
  if not os.path.isfile(path):
    raise DecJaxError(f"usps: {path!r} does not exist. {_WHERE['usps']}")
  x, y = _load_user_file(path, None, split)
  side = math.isqrt(math.prod(x.shape[1:]))
  image_shape = ((side, side) if x.ndim == 2 and side * side == x.shape[1]
                 else x.shape[1:] if x.ndim > 2 else None)
  return x, y, image_shape


def _check_usps_range(x: np.ndarray) -> None:
  if x.min() < 0 or x.max() > 1:
    raise DecJaxError(
        f"usps: pixels should lie in [0, 1] but span [{x.min():g}, "
        f"{x.max():g}]; another USPS variant? Pass --config.scale to divide "
        "them by a number (values below 0 are kept as they are).")


def _splits(split: str) -> Sequence[str]:
  return ("train", "test") if split == "all" else (split,)


def _find_idx_file(folder: str, stem: str) -> Optional[str]:
  for candidate in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
    path = os.path.join(folder, candidate)
    if os.path.isfile(path):
      return path
  return None


def _has_idx_files(folder: str) -> bool:
  return all(_find_idx_file(folder, stem) for pair in _IDX_FILES.values()
             for stem in pair)


def read_idx_folder(folder: str, splits: Sequence[str] = ("train", "test")):
  """Reads `(images [N, H, W] uint8, labels [N] uint8)` from an IDX folder.

  The folder holds the standard files (`train-images-idx3-ubyte.gz`, ...),
  gzipped or not; the requested splits are concatenated in order.
  """
  if not os.path.isdir(folder):
    raise DecJaxError(f"data_dir {folder!r} is not a folder; expected a folder "
                      "with the four standard IDX files "
                      "(train-images-idx3-ubyte.gz, ...).")
  images, labels = [], []
  for split in splits:
    paths = []
    for stem in _IDX_FILES[split]:
      path = _find_idx_file(folder, stem)
      if path is None:
        raise DecJaxError(f"{folder}: missing {stem}.gz (or uncompressed "
                          f"{stem}); expected the four standard IDX files.")
      paths.append(path)
    x = read_idx(paths[0], _IDX_IMAGES_MAGIC)
    y = read_idx(paths[1], _IDX_LABELS_MAGIC)
    if x.shape[0] != y.shape[0]:
      raise DecJaxError(f"{folder}: {split} images and labels differ in length "
                        f"({x.shape[0]} vs {y.shape[0]}).")
    if images and x.shape[1:] != images[0].shape[1:]:
      raise DecJaxError(f"{folder}: {split} images are {x.shape[1:]} pixels, "
                        f"train images {images[0].shape[1:]}; mixed data sets?")
    images.append(x)
    labels.append(y)
  return np.concatenate(images), np.concatenate(labels)


def read_idx(path: str, expected_magic: int) -> np.ndarray:
  """Reads one IDX file (gzipped or raw) of unsigned bytes, checking its header."""
  try:
    with open(path, "rb") as f:
      raw = f.read()
    if raw[:2] == b"\x1f\x8b":
      raw = gzip.decompress(raw)
  except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
    raise DecJaxError(f"{path}: cannot read ({e}); the file is corrupt or "
                      "truncated, download it again.") from None
  ndim = expected_magic & 0xFF
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise DecJaxError(f"{path}: file too short for an IDX header "
                      f"({len(raw)} bytes).")
  (magic,) = struct.unpack(">I", raw[:4])
  if magic != expected_magic:
    raise DecJaxError(f"{path}: wrong IDX magic number 0x{magic:08x}, expected "
                      f"0x{expected_magic:08x}; is this the right file?")
  shape = struct.unpack(">" + "I" * ndim, raw[4:header])
  size = math.prod(shape)
  if len(raw) - header != size:
    raise DecJaxError(f"{path}: header promises {size} bytes of data of shape "
                      f"{shape}, file holds {len(raw) - header}; truncated?")
  return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _load_tfds(name: str, split: str):
  """Loads through tensorflow-datasets (needs TensorFlow and a download)."""
  tfds_split = {"all": "train+test", "train": "train", "test": "test"}[split]
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    data = tfds.as_numpy(tfds.load(name, split=tfds_split, batch_size=-1))
  except Exception as e:  # pylint: disable=broad-except
    raise DecJaxError(
        f"Could not load {name!r} through tensorflow-datasets ({type(e).__name__}: "
        f"{str(e)[:200]}). Offline, point --config.data_dir at a folder with the "
        "four standard IDX gz files (train-images-idx3-ubyte.gz, ...).") from None
  return data["image"][..., 0], data["label"]


# --------------------------------------------------------------- user files


def _load_user_file(path: str, label_column: Optional[int], split: str):
  """(x, y or None) of a .npz / .npy / .csv / .h5 file, checked to be one."""
  if not os.path.isfile(path):
    raise DecJaxError(f"Data file {path!r} does not exist.")
  if os.path.getsize(path) == 0:
    raise DecJaxError(f"Data file {path!r} is empty.")
  suffix = os.path.splitext(path)[1].lower()
  check_signature(path, suffix)
  if split != "all" and suffix not in (".h5", ".hdf5"):
    raise _no_splits(path, split, f"a {suffix} file")
  try:
    if suffix == ".npz":
      with np.load(path, allow_pickle=False) as archive:
        if "x" not in archive:
          raise DecJaxError(f"{path}: a .npz must hold an array named 'x' (and "
                            f"optionally 'y'); found {sorted(archive.files)}.")
        return archive["x"], archive["y"] if "y" in archive else None
    if suffix == ".npy":
      return np.load(path, allow_pickle=False), None
    if suffix in (".h5", ".hdf5"):
      return _load_h5(path, split)
    return _load_csv(path, label_column)
  except DecJaxError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise DecJaxError(f"{path}: cannot read as {suffix} ({type(e).__name__}: "
                      f"{str(e)[:200]}).") from None


# How each binary format starts; a file that does not is not of that format
# (NumPy would try to unpickle it and blame "pickled (object) data").
_MAGIC = {".npz": b"PK", ".npy": b"\x93NUMPY"}
_WHAT = {".npz": "an .npz is a zip archive, and this file does not start "
                 "like one", ".npy": "it does not start with the NumPy header"}
_WRITE = {".npz": "numpy.savez(path, x=..., y=...)",
          ".npy": "numpy.save(path, x)"}


def check_signature(path: str, suffix: str) -> None:
  """Refuses a file whose first bytes are not those of its suffix's format."""
  with open(path, "rb") as f:
    head = f.read(8)
  if suffix in _MAGIC and not head.startswith(_MAGIC[suffix]):
    other = ".npy" if suffix == ".npz" else ".npz"
    hint = (f"It starts like a {other} file: rename it to {other}."
            if head.startswith(_MAGIC[other]) else
            f"Write it with {_WRITE[suffix]}.")
    raise DecJaxError(f"{path}: not a valid {suffix} file ({_WHAT[suffix]}). "
                      f"{hint}")
  if suffix in (".h5", ".hdf5"):
    import h5py  # pylint: disable=g-import-not-at-top
    if not h5py.is_hdf5(path):
      raise DecJaxError(f"{path}: not a valid HDF5 file (no HDF5 signature); "
                        "write it with h5py or pandas.to_hdf.")


def _no_splits(path: str, split: str, what: str) -> DecJaxError:
  return DecJaxError(
      f"split={split!r}: {path} is {what}, which holds no train/test split "
      "(only IDX folders and HDF5 files with train/ and test/ groups do); "
      "use split=all (the default), or split the file yourself.")


# CSV fields that mark a missing value (an error in any row), not a name.
_MISSING = ("", "na", "n/a", "nan", "null", "none")


def is_number(text: str) -> bool:
  """Whether `text` parses as a float (a CSV field, a file's last column)."""
  try:
    float(text)
    return True
  except ValueError:
    return False


def _load_h5(path: str, split: str):
  """HDF5: datasets `x` (+ optional `y`), or the USPS layout with groups
  `train` / `test` holding `data` and `target` (split as for IDX sets)."""
  import h5py  # pylint: disable=g-import-not-at-top
  with h5py.File(path, "r") as f:
    groups = _splits(split)
    has_groups = all(g in f and "data" in f[g] for g in groups)
    if "x" in f and (split == "all" or not has_groups):
      if split != "all":
        raise _no_splits(path, split, "an HDF5 file of one dataset 'x'")
      return f["x"][()], f["y"][()] if "y" in f else None
    if has_groups:
      xs = [f[g]["data"][()] for g in groups]
      ys = [f[g]["target"][()] if "target" in f[g] else None for g in groups]
      y = None if any(v is None for v in ys) else np.concatenate(ys)
      return np.concatenate(xs), y
    raise DecJaxError(
        f"{path}: an HDF5 file must hold a dataset 'x' (optional 'y'), or "
        f"groups {list(groups)} with 'data' and 'target'; found "
        f"{sorted(f.keys())}.")


def _load_csv(path: str, label_column: Optional[int]):
  """Numeric CSV, one sample per row (a UTF-8 byte-order mark is ignored).
  The first row is a header when it names its columns: a field that is
  neither a number nor a missing value (_MISSING), or exactly 0, 1, ...,
  D-1 (pandas' `to_csv` of an unnamed frame); a missing value is an error
  in any row."""
  with open(path, encoding="utf-8-sig") as f:
    fields = [v.strip() for v in f.readline().strip().split(",")]
  skip = int(fields == [str(i) for i in range(len(fields))]
             or any(v.lower() not in _MISSING and not is_number(v)
                    for v in fields))
  with warnings.catch_warnings():  # an empty file is reported by the caller
    warnings.simplefilter("ignore", UserWarning)
    table = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2,
                       dtype=np.float64, encoding="utf-8-sig")
  if label_column is None:
    return table, None
  if not -table.shape[1] <= label_column < table.shape[1]:
    raise DecJaxError(f"{path}: label_column {label_column} is out of range for "
                      f"{table.shape[1]} columns.")
  y = table[:, label_column]
  x = np.delete(table, label_column % table.shape[1], axis=1)
  return x, y
