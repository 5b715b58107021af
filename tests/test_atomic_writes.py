"""Every file dec_jax writes appears whole or not at all: a failure while it
is written (a drawing that raises, a value JSON cannot hold) leaves the old
file, or none, and no temp file beside it."""

import os
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from dec_jax.apps import organize
from dec_jax.apps import plots

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _half_then_fail(self, target, **kwargs):
  """A savefig that writes part of the image, then fails."""
  del self, kwargs
  f = open(target, "wb") if isinstance(target, str) else target
  f.write(b"\x89PNG half an image")
  f.flush()
  raise RuntimeError("the drawing failed")


@pytest.mark.parametrize("existing", [False, True])
def test_a_drawing_that_fails_leaves_no_half_written_png(tmp_path,
                                                         monkeypatch,
                                                         existing):
  path = tmp_path / "plot.png"
  if existing:
    path.write_bytes(b"the old plot")
  monkeypatch.setattr(Figure, "savefig", _half_then_fail)
  with pytest.raises(RuntimeError, match="the drawing failed"):
    plots.save(Figure(), str(path))
  assert os.listdir(tmp_path) == (["plot.png"] if existing else [])
  if existing:
    assert path.read_bytes() == b"the old plot"


def test_a_saved_plot_is_a_whole_png(tmp_path):
  path = plots.save(plots.cluster_sizes(np.array([0, 1, 1, 2])),
                    str(tmp_path / "sizes.png"))
  with Image.open(path) as img:
    assert img.format == "PNG" and img.size[0] > 50
  assert os.listdir(tmp_path) == ["sizes.png"]


def _gallery_inputs(tmp_path):
  images = [Image.new("RGB", (8, 8), c) for c in ("red", "blue", "green")]
  photos = organize.Photos(str(tmp_path), ["a.jpg", "b.jpg", "c.jpg"], images,
                           [], ["a.jpg", "b.jpg", "c.jpg"])
  result = organize.Clustering(np.array([0, 1, 1]), np.array([0.9, 0.8, 0.7]),
                               2)
  return photos, result


def test_gallery_that_fails_keeps_the_earlier_page_and_csv(tmp_path,
                                                           monkeypatch):
  out = tmp_path / "out"
  photos, result = _gallery_inputs(tmp_path)
  organize.write_gallery(str(out), photos, result, "first")
  page = (out / "index.html").read_text()
  table = (out / organize.ASSIGNMENTS_CSV).read_text()

  def fail(*args):
    raise RuntimeError("the page failed")
  monkeypatch.setattr(organize, "gallery_html", fail)
  with pytest.raises(RuntimeError, match="the page failed"):
    organize.write_gallery(str(out), photos, result, "second")
  assert (out / "index.html").read_text() == page  # not truncated
  broken = organize.Clustering(result.labels, np.array([0.9]), 2)  # too short
  with pytest.raises(IndexError):
    organize.write_assignments(str(out / organize.ASSIGNMENTS_CSV),
                               photos.files, broken, [0, 1, 2])
  assert (out / organize.ASSIGNMENTS_CSV).read_text() == table
  assert not [f for f in os.listdir(out) if f.startswith(".tmp")]


# experiments.bench with its benchmarks replaced by a result that JSON cannot
# hold (its flags are defined at import: it runs in a child process).
_BENCH_CHILD = r"""
from absl import app
from experiments import bench
bench.run_benchmarks = lambda: {
    "environment": {"backend": "cpu", "device_kind": "cpu"},
    "setup": {"dataset": "d", "n_samples": 1, "dims": [1], "dtype": "f32",
              "batch_size": 1},
    "rows": [1.0, object()]}
bench.table_rows = lambda results: []
bench.format_table = lambda rows: ""
app.run(bench.main)
"""


def _bench(*args):
  return subprocess.run([sys.executable, "-c", _BENCH_CHILD, *args], cwd=REPO,
                        capture_output=True, text=True, timeout=300,
                        check=False, env={**os.environ, "PYTHONPATH": REPO,
                                          "JAX_PLATFORMS": "cpu"})


def test_benchmark_json_that_fails_leaves_the_old_file(tmp_path):
  out = tmp_path / "bench.json"
  out.write_text('{"old": true}\n')
  proc = _bench(f"--out={out}")
  assert proc.returncode != 0 and "TypeError" in proc.stderr
  assert out.read_text() == '{"old": true}\n'
  assert os.listdir(tmp_path) == ["bench.json"]


def test_benchmark_out_in_a_missing_folder_is_refused_first(tmp_path):
  tiny = ["--n_samples=600", "--dim=64", "--dims=16,4", "--conv_samples=128",
          "--batch_size=64", "--update_interval=5", "--repeats=1",
          "--matmul_size=128", "--n_init=2", "--n_clusters=3", "--stack_sizes=1"]
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.bench", *tiny,
       f"--out={tmp_path / 'no' / 'b.json'}"], cwd=REPO, capture_output=True,
      text=True, timeout=300, check=False,
      env={**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu"})
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith(
      "error: the folder of --out")
