"""experiments.synthetic: the scale tests' generated image set."""

import os
import subprocess
import sys

import numpy as np

from experiments import synthetic
from tests.test_end_to_end import REPO


def test_images_follow_their_class_prototype():
  x, y = synthetic.make(300, 3, 10.0, 0)
  assert x.shape == (300, 28, 28) and x.dtype == np.uint8
  assert y.shape == (300,) and set(np.unique(y)) == {0, 1, 2}
  means = np.stack([x[y == c].reshape(-1, 784).mean(0) for c in range(3)])
  distances = ((x.reshape(-1, 1, 784) - means[None]) ** 2).sum(-1)
  assert (distances.argmin(1) == y).mean() > 0.99  # noise 10: separable


def test_bad_sizes_are_flag_errors(tmp_path):
  for flag in ("--k=0", "--n=0", "--noise=-1"):
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.synthetic",
         f"--out={tmp_path / 's.npz'}", flag], cwd=REPO, capture_output=True,
        text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode != 0 and "Flags parsing error" in proc.stderr, flag
    assert not (tmp_path / "s.npz").exists()
