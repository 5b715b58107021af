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


def test_distinct_rows_are_counted_exactly():
  # Equal rows are one row wherever they sit (a float32 projection summed
  # in BLAS blocks counted one tiled row as 2, and 3 tiled uint8 rows as 6),
  # uint8 sums do not wrap, -0.0 is 0.0, and distinct rows stay distinct.
  from dec_jax.runner import checks  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  row = rng.standard_normal((1, 784)).astype(np.float32)
  assert checks._count_distinct_rows(np.tile(row, (70_001, 1)), 5) == 1
  rows = rng.integers(0, 256, (3, 784), dtype=np.uint8)
  assert checks._count_distinct_rows(np.tile(rows, (30_001, 1)), 5) == 3
  x = np.zeros((6, 4), np.uint8)
  x[:3] = [255, 255, 255, 4]
  assert checks._count_distinct_rows(x, 10) == 2
  zeros = np.array([[0.0, 1.0], [-0.0, 1.0], [0.0, 2.0]], np.float32)
  assert checks._count_distinct_rows(zeros, 10) == 2
  many = rng.integers(0, 256, (20_000, 784), dtype=np.uint8)
  assert checks._count_distinct_rows(many, 10**6) == 20_000
  assert checks._count_distinct_rows(many, 10) >= 10  # stops early
