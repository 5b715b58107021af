"""Fuzzing the loaders and the config checks with hypothesis: random bytes,
shapes, dtypes and values give a correct load or a DecJaxError, never a crash
from inside NumPy or JAX; a config value is accepted exactly when it is
valid, and refused with a message naming its field."""

import os
import re
import tempfile

import hypothesis
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
import numpy as np
import pytest

from dec_jax.runner import data
from dec_jax.errors import DecJaxError
from dec_jax.runner.checks import validate_config
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


# What each numeric field accepts, stated here (not read from checks.py):
# (path, type, is the value valid?, values at the edges of that rule).
# The default config is valid.
_is_int = lambda v: isinstance(v, int) and not isinstance(v, bool)
_NAN = float("nan")
_POSITIVE_INT = [-1, 0, 1, 2, 10**6]
_NON_NEGATIVE_INT = [-1, 0, 1]
_POSITIVE_FLOAT = [-1.0, 0.0, 1e-12, 1.0, _NAN]
_UNIT = [-1e-9, 0.0, 0.5, 1.0 - 1e-9, 1.0, _NAN]  # [0, 1)
# dec.maxiter below the default update_interval breaks their joint rule.
_INTERVAL = default.get_config().dec.update_interval
_SPEC = [
    (("pretrain", "learning_rate"), float, lambda v: v > 0, _POSITIVE_FLOAT),
    (("pretrain", "batch_size"), int, lambda v: v > 0, _POSITIVE_INT),
    (("pretrain", "epochs"), int, lambda v: v >= 0, _NON_NEGATIVE_INT),
    (("pretrain", "momentum"), float, lambda v: 0 <= v < 1, _UNIT),
    (("dec", "learning_rate"), float, lambda v: v > 0, _POSITIVE_FLOAT),
    (("dec", "update_interval"), int, lambda v: v > 0, [-1, 0, 1, 2]),
    (("dec", "maxiter"), int, lambda v: v >= 0,
     [-1, 0, 1, _INTERVAL - 1, _INTERVAL]),
    (("dec", "tol"), float, lambda v: 0 <= v < 1, _UNIT),
    (("dec", "alpha"), float, lambda v: v > 0, _POSITIVE_FLOAT),
    (("dec", "batch_size"), int, lambda v: v > 0, _POSITIVE_INT),
    (("kmeans", "n_init"), int, lambda v: v > 0, _POSITIVE_INT),
    (("chunk_size",), int, lambda v: v > 0, _POSITIVE_INT),
    (("collapse_fraction",), float, lambda v: 0 <= v < 1, _UNIT),
    # An int >= 2, or 0 (= the number of classes); a float never.
    (("n_clusters",), object, lambda v: _is_int(v) and (v == 0 or v >= 2),
     [-3, 0, 1, 2, 3, 2.0, _NAN]),
    # auto_k: 2 <= min (2) <= max < sample_size (5000).
    (("auto_k", "max"), int, lambda v: 2 <= v < 5000, [1, 2, 3, 4999, 5000]),
]
_NAMES = {path: ".".join(path) for path, *_ in _SPEC}
# How a message names a field: its dotted name, except auto_k's bounds,
# which are reported together ("auto_k needs ... got min=2, max=0, ...").
_NAMED = {**{name: re.escape(name) for name in _NAMES.values()},
          "auto_k.max": r"auto_k needs .* max="}
# inf is refused where it must be (test_infinite_rates_and_alpha_are_refused).
_FINITE = st.floats(allow_nan=True, allow_infinity=False)


def _values(kind, edges):
  """Values a user could type for a field holding `kind`, its rule's edges
  among them."""
  ints = st.integers(-10, 10**6)
  if kind is int:
    return st.one_of(st.sampled_from(edges), ints)
  if kind is float:
    return st.one_of(st.sampled_from(edges), ints.map(float), _FINITE,
                     st.floats(-0.5, 1.5))  # around the [0, 1) bounds
  return st.one_of(st.sampled_from(edges), ints, _FINITE)


def _with(changes):
  """The default config with `changes` [(path, value)] applied."""
  config = default.get_config()
  for path, value in changes:
    node = config
    for name in path[:-1]:
      node = node[name]
    node[path[-1]] = value
  return config


def _faults(fields, changes, config):
  """Names of the fields whose new values are invalid, plus dec.maxiter when
  update_interval and maxiter break their joint rule (update_interval <=
  max(maxiter, 1); the message names both, and may come first); [] for a
  valid config."""
  bad = [_NAMES[path] for (path, _, valid, _), (_, value)
         in zip(fields, changes) if not valid(value)]
  if config.dec.update_interval > max(config.dec.maxiter, 1):
    bad.append("dec.maxiter")
  return bad


@SETTINGS
@hypothesis.given(data=st.data(),
                  fields=st.lists(st.sampled_from(_SPEC), min_size=1,
                                  max_size=4, unique_by=lambda f: f[0]))
def test_numeric_config_values_are_accepted_or_refused_by_name(data, fields):
  """Up to 4 fields changed: the config passes validate_config exactly when
  every value is valid; otherwise the DecJaxError names a field at fault."""
  changes = [(path, data.draw(_values(kind, edges), label=_NAMES[path]))
             for path, kind, _, edges in fields]
  config = _with(changes)
  bad = _faults(fields, changes, config)
  if not bad:
    validate_config(config)
    return
  with pytest.raises(DecJaxError) as error:
    validate_config(config)
  assert any(re.search(_NAMED[name], str(error.value)) for name in bad), (
      bad, error.value)


@pytest.mark.parametrize("field, value", [
    (field, value) for field in _SPEC for value in field[3]],
    ids=lambda v: _NAMES[v[0]] if isinstance(v, tuple) else repr(v))
def test_each_numeric_config_value_at_its_edges(field, value):
  """Each field alone, at the edges of its rule: accepted exactly when
  valid; refused with a DecJaxError naming the field otherwise."""
  path, _, valid, _ = field
  config = _with([(path, value)])
  bad = _faults([field], [(path, value)], config)
  assert bool(bad) == (not valid(value)
                       or path == ("dec", "maxiter") and value < _INTERVAL)
  if not bad:
    validate_config(config)
    return
  with pytest.raises(DecJaxError, match=_NAMED[bad[0]]):
    validate_config(config)


@pytest.mark.parametrize("path", [("pretrain", "learning_rate"),
                                  ("dec", "learning_rate"), ("dec", "alpha")])
def test_infinite_rates_and_alpha_are_refused(path):
  with pytest.raises(DecJaxError, match=re.escape(".".join(path))):
    validate_config(_with([(path, float("inf"))]))
