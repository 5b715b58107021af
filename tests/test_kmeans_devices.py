"""k-means on 2, 3 and 4 (emulated CPU) devices ends where one device ends,
for row counts that no device count divides: the weight-0 padding rows are
never drawn as centres, count in no sum and are dropped from the labels.

The blobs are far apart: no point is within rounding of a tie, so labels
can be compared exactly although the devices sum in another order (on
digits, such a near-tie already makes two restarts trade places).
"""

import json

import numpy as np
import pytest

from tests.test_parallel import _python

_RUNS = r"""
import contextlib, json
import jax
import numpy as np
from sklearn.datasets import make_blobs
from dec_jax.core import kmeans
from dec_jax import parallel
assert jax.device_count() == 4
x, _ = make_blobs(n_samples=1797, centers=10, n_features=16,
                  center_box=(-20, 20), random_state=0)
x = x.astype(np.float32)
out = {}
# 1,001 and 1,797 rows: remainders 1, 2, 1 and 1, 0, 1 on 2, 3, 4 devices.
# Both restart paths: sequential (CPU's) and vmapped (accelerators').
for rows, vmapped in ((1001, False), (1797, True)):
  for n in (1, 2, 3, 4):
    mesh = parallel.data_mesh(n)
    with contextlib.nullcontext() if mesh is None else jax.set_mesh(mesh):
      result = kmeans.kmeans_jax(jax.random.key(0), x[:rows], 10, 2,
                                 vmap_restarts=vmapped)
    out[f"{rows}/{n}"] = {"labels": result.labels.tolist(),
                          "inertia": float(result.inertia),
                          "centres": result.centres.tolist()}
print(json.dumps(out))
"""


def test_any_row_count_on_any_device_count_matches_one_device():
  proc = _python(["-c", _RUNS])  # 4 devices, conftest's flags kept
  stdout, stderr = proc.communicate(timeout=600)
  assert proc.returncode == 0, stderr[-3000:]
  out = json.loads(stdout.strip().splitlines()[-1])
  for rows in (1001, 1797):
    one = out[f"{rows}/1"]
    assert len(one["labels"]) == rows
    for n in (2, 3, 4):
      many = out[f"{rows}/{n}"]
      np.testing.assert_array_equal(many["labels"], one["labels"])
      assert many["inertia"] == pytest.approx(one["inertia"], rel=1e-5)
      np.testing.assert_allclose(many["centres"], one["centres"], atol=1e-4)
