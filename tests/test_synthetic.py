"""experiments.synthetic: the scale tests' generated image set (through its
command line: its flags cannot share a process with the other entry
points')."""

import os
import subprocess
import sys

import numpy as np

from tests.test_end_to_end import REPO


def _synthetic(*flags):
  return subprocess.run(
      [sys.executable, "-m", "experiments.synthetic", *flags], cwd=REPO,
      capture_output=True, text=True, timeout=120, check=False,
      env={**os.environ, "PYTHONPATH": REPO})


def test_images_follow_their_class_prototype(tmp_path):
  out = tmp_path / "s.npz"
  proc = _synthetic(f"--out={out}", "--n=300", "--k=3", "--noise=10")
  assert proc.returncode == 0, proc.stderr[-2000:]
  with np.load(out) as saved:
    x, y = saved["x"], saved["y"]
  assert x.shape == (300, 28, 28) and x.dtype == np.uint8
  assert y.shape == (300,) and set(np.unique(y)) == {0, 1, 2}
  flat = x.reshape(-1, 784).astype(np.float64)
  means = np.stack([flat[y == c].mean(0) for c in range(3)])
  distances = ((flat[:, None] - means[None]) ** 2).sum(-1)
  assert (distances.argmin(1) == y).mean() > 0.99  # noise 10: separable


def test_bad_sizes_are_flag_errors(tmp_path):
  for flag in ("--k=0", "--n=0", "--noise=-1"):
    proc = _synthetic(f"--out={tmp_path / 's.npz'}", flag)
    assert proc.returncode != 0 and "Flags parsing error" in proc.stderr, flag
    assert not (tmp_path / "s.npz").exists()


def test_an_output_folder_that_does_not_exist_is_refused_first(tmp_path):
  proc = _synthetic(f"--out={tmp_path / 'nodir' / 's.npz'}", "--n=10")
  assert proc.returncode != 0 and "not a writable folder" in proc.stderr
  assert "Traceback" not in proc.stderr
