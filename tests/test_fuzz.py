"""Fuzzing the loaders and the config checks with hypothesis: random bytes,
shapes, dtypes and values give a correct load or a DecJaxError, never a crash
from inside NumPy or JAX."""

import math
import os
import tempfile

import hypothesis
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
import numpy as np

from dec_jax import data
from dec_jax.errors import DecJaxError
from dec_jax.checks import validate_config
from experiments.configs import default
from tests.conftest import write_idx

SETTINGS = hypothesis.settings(max_examples=60, deadline=None,
                               suppress_health_check=list(
                                   hypothesis.HealthCheck))


def _load_or_error(*args, **kwargs):
  """Returns the Dataset or None for a DecJaxError; anything else fails."""
  try:
    ds = data.load(*args, **kwargs)
  except DecJaxError as e:
    assert str(e)
    return None
  assert ds.x.dtype == np.float32 and ds.x.ndim == 2
  assert np.isfinite(ds.x).all()
  assert ds.y is None or ds.y.shape == (ds.x.shape[0],)
  return ds


@SETTINGS
@hypothesis.given(payload=st.binary(max_size=400),
                  suffix=st.sampled_from([".npy", ".npz", ".csv", ".h5"]))
def test_random_bytes_as_user_file(payload, suffix):
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "data" + suffix)
    with open(path, "wb") as f:
      f.write(payload)
    _load_or_error(path)


@SETTINGS
@hypothesis.given(payload=st.binary(max_size=200), gzipped=st.booleans(),
                  which=st.sampled_from(["train-images-idx3-ubyte",
                                         "t10k-labels-idx1-ubyte"]))
def test_random_bytes_as_idx_file(payload, gzipped, which):
  import gzip
  with tempfile.TemporaryDirectory() as tmp:
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("t10k", 2)):
      write_idx(os.path.join(tmp, f"{split}-images-idx3-ubyte.gz"),
                rng.integers(0, 256, (n, 3, 3)), 0x803)
      write_idx(os.path.join(tmp, f"{split}-labels-idx1-ubyte.gz"),
                rng.integers(0, 10, n), 0x801)
    path = os.path.join(tmp, which + ".gz")
    with open(path, "wb") as f:
      f.write(gzip.compress(payload) if gzipped else payload)
    _load_or_error("mnist", data_dir=tmp)


_DTYPES = st.sampled_from([np.float64, np.float32, np.float16, np.int64,
                           np.uint8, np.bool_, np.complex64])


@SETTINGS
@hypothesis.given(array=hnp.arrays(
    _DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, max_side=5)))
def test_random_arrays_as_npy(array):
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "x.npy")
    np.save(path, array)
    ds = _load_or_error(path)
  if ds is not None:  # a correct load: same values, flattened and scaled
    scale = 255.0 if array.dtype == np.uint8 else 1.0
    np.testing.assert_allclose(
        ds.x, array.reshape(array.shape[0], -1).astype(np.float32) / scale,
        rtol=1e-6)


_NUMBERS = st.one_of(st.integers(-10, 10**6),
                     st.floats(allow_nan=True, allow_infinity=True))
_FIELDS = [("pretrain", "learning_rate"), ("pretrain", "batch_size"),
           ("pretrain", "epochs"), ("pretrain", "momentum"),
           ("dec", "learning_rate"), ("dec", "update_interval"),
           ("dec", "maxiter"), ("dec", "tol"), ("dec", "alpha"),
           ("dec", "batch_size"), ("kmeans", "n_init"), ("chunk_size",),
           ("collapse_fraction",), ("n_clusters",), ("auto_k", "max")]


@SETTINGS
@hypothesis.given(changes=st.lists(st.tuples(st.sampled_from(_FIELDS),
                                             _NUMBERS), max_size=4))
def test_random_numeric_config_values(changes):
  config = default.get_config()
  for path, value in changes:
    node = config
    for name in path[:-1]:
      node = node[name]
    current = node[path[-1]]
    if isinstance(current, int) and not isinstance(value, int):
      if not math.isfinite(value):
        continue  # an int field cannot hold it; ml_collections refuses
      value = int(value)
    node[path[-1]] = type(current)(value) if path != ("n_clusters",) else value
  try:
    validate_config(config)
  except DecJaxError as e:
    assert str(e)
