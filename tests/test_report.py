"""Pictures of a run (plots, report), TensorBoard files, terminal progress."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dec_jax.apps import plots
from dec_jax.runner import progress
from dec_jax.apps import report
from dec_jax.runner import tensorboard
from dec_jax.errors import DecJaxError
from dec_jax.runner.run import run
from tests.conftest import make_idx_folder, read_events, tensorboard_scalars
from tests.test_end_to_end import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_PLOTS = ("training_curves.png", "cluster_sizes.png",
             "confusion_matrix.png", "embedding.png", "montage.png")


def assert_png(path: str, min_side: int = 100) -> None:
  with Image.open(path) as img:
    img.verify()
  with Image.open(path) as img:
    assert img.format == "PNG" and min(img.size) >= min_side, path
    assert np.asarray(img.convert("L")).std() > 5, f"{path} is blank"


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
  """A tiny DEC run on 60 6x6 images in MNIST's layout, report on."""
  folder = make_idx_folder(tmp_path_factory.mktemp("idx"))
  workdir = str(tmp_path_factory.mktemp("run") / "dec")
  config = tiny_config("mnist", data_dir=folder, report=True,
                       tensorboard=True)
  config.pretrain.epochs = 10
  results = run(config, workdir, after_member=report.hook(config))
  return workdir, results


def test_end_of_run_plots(image_run):
  workdir, results = image_run
  assert os.path.exists(os.path.join(workdir, "results.json"))
  assert sorted(os.listdir(os.path.join(workdir, "plots"))) == sorted(
      RUN_PLOTS)
  for name in RUN_PLOTS:
    assert_png(os.path.join(workdir, "plots", name))
  assert results["n_clusters"] == 4


def test_tensorboard_scalars_and_montage(image_run):
  workdir, _ = image_run
  logdir = os.path.join(workdir, "tensorboard")
  assert {"pretrain", "dec", "final", "report"} <= set(os.listdir(logdir))
  scalars = {}
  for stage in os.listdir(logdir):  # one TensorBoard run per stage
    for tag, points in tensorboard_scalars(
        os.path.join(logdir, stage)).items():
      assert tag.startswith(stage + "/"), (stage, tag)
      scalars[tag] = dict(points)
  images = [value.tag for event in read_events(os.path.join(logdir, "report"))
            for value in event.summary.value if value.HasField("image")]
  records = [json.loads(line) for line in
             open(os.path.join(workdir, "metrics.jsonl"))]
  dec = [r for r in records if r["stage"] == "dec"]
  assert scalars["dec/acc"] == pytest.approx(
      {r["iteration"]: r["acc"] for r in dec})
  assert set(scalars["pretrain/loss"]) == {5, 10}
  assert "final/nmi" in scalars and "montage" in images


def test_no_plots_without_report(blobs_npz, tmp_path):
  config = tiny_config(blobs_npz, method="kmeans", report=False,
                       tensorboard=False)
  assert report.hook(config) is None
  run(config, str(tmp_path / "run"), after_member=report.hook(config))
  assert not os.path.exists(tmp_path / "run" / "plots")


def test_a_failing_report_never_fails_the_run(blobs_npz, tmp_path,
                                              monkeypatch):
  def broken(*args, **kwargs):
    raise RuntimeError("no plots today")
  monkeypatch.setattr(report, "build_report", broken)
  workdir = str(tmp_path / "run")
  config = tiny_config(blobs_npz, method="kmeans", report=True,
                       tensorboard=False)
  results = run(config, workdir, after_member=report.hook(config))
  assert results["acc"] > 0
  saved = json.load(open(os.path.join(workdir, "results.json")))
  assert saved["acc"] == results["acc"]
  assert not os.path.exists(os.path.join(workdir, "plots"))
  assert not os.path.exists(os.path.join(workdir, "tensorboard"))


def test_a_failing_figure_skips_only_itself(image_run, monkeypatch, tmp_path):
  workdir, _ = image_run
  def broken(*args, **kwargs):
    raise ValueError("bad figure")
  monkeypatch.setattr(plots, "confusion_matrix", broken)
  for name in RUN_PLOTS:
    os.remove(os.path.join(workdir, "plots", name))
  written = report.build_report(workdir, sample_size=30)
  assert sorted(os.path.basename(p) for p in written) == sorted(
      set(RUN_PLOTS) - {"confusion_matrix.png"})


def test_cli_report_and_summary_of_several_runs(image_run, tmp_path):
  workdir, results = image_run
  env = {**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu"}
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.report", f"--workdir={workdir}",
       "--map=tsne", "--sample=40"], cwd=REPO, capture_output=True,
      text=True, timeout=300, check=False, env=env)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert os.path.join(workdir, "plots", "montage.png") in proc.stdout
  sweep = tmp_path / "sweep"
  for i, (method, acc) in enumerate([("dec", 0.8), ("dec", 0.9),
                                     ("kmeans", 0.5)]):
    (sweep / str(i)).mkdir(parents=True)
    (sweep / str(i) / "results.json").write_text(json.dumps(
        {"dataset": "d", "method": method, "acc": acc, "nmi": acc - 0.1,
         "ari": acc - 0.2}))
  # A stack's own folder: its config.json and summary (mean ± sd), no run.
  (sweep / "config.json").write_text(json.dumps({"method": "dec"}))
  (sweep / "results.json").write_text(json.dumps(
      {"kind": "stack", "method": "dec", "dataset": "d",
       "acc": {"mean": 0.85, "sd": 0.07}}))
  assert report.build_report(str(sweep)) == [str(sweep / "plots" /
                                                 "summary.png")]
  assert_png(str(sweep / "plots" / "summary.png"))
  with pytest.raises(DecJaxError, match="holds no run"):
    report.build_report(str(tmp_path / "nothing"))


def test_no_data_figures_from_data_changed_since_the_run(blobs_npz, tmp_path,
                                                         caplog):
  """Same size, other rows: the assignments would be drawn against points
  they were not made from; the data figures are skipped, saying why."""
  workdir = str(tmp_path / "run")
  run(tiny_config(blobs_npz, method="kmeans", report=False,
                  tensorboard=False), workdir)
  assert "confusion_matrix.png" in str(report.build_report(workdir,
                                                           sample_size=30))
  with np.load(blobs_npz) as saved:
    x, y = saved["x"][::-1], saved["y"][::-1]
  np.savez(blobs_npz, x=x, y=y)
  os.remove(os.path.join(workdir, "plots", "confusion_matrix.png"))
  written = report.build_report(workdir, sample_size=30)
  assert "confusion_matrix.png" not in str(written)
  assert "cluster_sizes.png" in str(written)
  assert "the data changed since the run" in caplog.text


def test_confusion_order_follows_the_hungarian_match():
  y = np.repeat([0, 1, 2], 10)
  clusters = np.array([2, 0, 1, 3])[y]  # class c -> cluster perm[c]
  clusters[:2] = 3                      # a fourth, unmatched cluster
  table, order = plots.matched_order(y, clusters)
  assert order == [2, 0, 1, 3]
  assert np.trace(table[order][:3]) == 28


def test_montage_rows_put_the_most_confident_first():
  images = np.arange(6, dtype=np.float32)[:, None, None] * np.ones((6, 2, 2))
  labels = np.array([0, 0, 0, 1, 1, 1])
  conf = np.array([0.1, 0.9, 0.5, 0.3, 0.2, 0.8])
  canvas, rows = plots.montage_array(images, labels, conf, per_side=1, gap=1)
  assert rows == [0, 1]
  scale = 5.0  # tiles are scaled to [0, 1] by the largest image value
  assert canvas[0, 0, 0] * scale == pytest.approx(1)   # cluster 0's best
  assert canvas[0, -1, 0] * scale == pytest.approx(0)  # and its worst
  assert canvas[3, 0, 0] * scale == pytest.approx(5)   # cluster 1's best


def test_tensorboard_scalars_of_a_record():
  step, scalars = tensorboard.record_scalars(
      {"stage": "dec", "iteration": 30, "acc": 0.5, "loss": float("nan"),
       "cluster_sizes": [1, 2], "near_uniform_q": False})
  assert step == 30
  assert scalars == {"dec/acc": 0.5, "dec/near_uniform_q": 0.0}


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def test_progress_shows_rate_and_eta_on_a_terminal_only():
  quiet = io.StringIO()
  bar = progress.StageProgress({"pretrain": ("epoch", 100)}, quiet)
  bar.update({"stage": "pretrain", "epoch": 10, "loss": 1.0})
  bar.clear()
  assert quiet.getvalue() == ""

  terminal = _Terminal()
  bar = progress.StageProgress({"pretrain": ("epoch", 100)}, terminal)
  assert bar.line({"stage": "pretrain", "epoch": 10}, now=0.0) == (
      "pretrain epoch 10/100")
  assert bar.line({"stage": "pretrain", "epoch": 30}, now=10.0) == (
      "pretrain epoch 30/100  2 epochs/s  ETA 0:35")
  assert bar.line({"stage": "kmeans_init", "acc": 1.0}, now=11.0) is None
  bar.update({"stage": "pretrain", "epoch": 40})
  bar.clear()
  assert terminal.getvalue().startswith("\r\x1b[Kpretrain epoch 40/100")
  assert terminal.getvalue().endswith("\r\x1b[K")
  assert progress.format_duration(3725) == "1:02:05"
