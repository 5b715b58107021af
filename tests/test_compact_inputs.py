"""8-bit images kept as uint8 on the device (config.keep_uint8) give the
same run as float32 inputs, with a quarter of the memory."""

import numpy as np
import pytest

from dec_jax.runner import data
from dec_jax.runner.run import run
from tests.test_end_to_end import tiny_config


def test_load_keeps_uint8_and_says_how_to_decode(idx_folder):
  compact = data.load("mnist", data_dir=idx_folder, keep_uint8=True)
  full = data.load("mnist", data_dir=idx_folder)
  assert compact.x.dtype == np.uint8 and full.x.dtype == np.float32
  assert compact.x.shape == full.x.shape == (60, 36)
  assert compact.divisor == 255.0 and full.divisor == 1.0
  np.testing.assert_allclose(compact.x / compact.divisor, full.x, rtol=1e-6)
  # Non-8-bit data is unaffected.
  assert data.load("digits", keep_uint8=True).x.dtype == np.float32


@pytest.mark.parametrize("method", ["kmeans", "dec"])
def test_uint8_inputs_give_the_float32_run(tmp_path, idx_folder, method):
  results = {}
  for keep in (True, False):
    config = tiny_config("mnist", data_dir=idx_folder, method=method,
                         keep_uint8=keep)
    config.pretrain.epochs, config.dec.maxiter = 5, 20
    results[keep] = run(config, str(tmp_path / f"{method}{keep}"))
  for key in ("acc", "nmi", "ari", "cluster_sizes"):
    assert results[True][key] == results[False][key], key
  labels = [np.load(tmp_path / f"{method}{keep}" / "assignments.npz")["labels"]
            for keep in (True, False)]
  np.testing.assert_array_equal(*labels)


def test_distinct_rows_of_uint8_data_are_counted_as_floats():
  from dec_jax.runner import checks  # pylint: disable=g-import-not-at-top
  x = np.zeros((6, 4), np.uint8)
  x[:3] = [1, 2, 3, 4]  # 2 distinct rows; uint8 arithmetic would wrap
  assert checks._count_distinct_rows(x) == 2
  assert checks._count_distinct_rows(
      np.arange(200, dtype=np.uint8).reshape(50, 4), block=7) == 50
