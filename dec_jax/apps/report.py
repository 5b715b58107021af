"""Pictures of a finished run: `WORKDIR/plots/*.png`.

  build_report("workdirs/mnist_dec")   # or: python -m experiments.report

From config.json, metrics.jsonl, results.json, assignments.npz, the data the
config names and, for DEC / IDEC, the trained model (`predict.load_trained`):

  training_curves.png   pretraining loss; ACC/NMI/ARI, loss, label change
  cluster_sizes.png     points per cluster
  confusion_matrix.png  clusters x classes, Hungarian-matched order (labels)
  embedding.png         t-SNE (`map_method="umap"`: UMAP) of a sample of
                        the embedding (the inputs without an encoder),
                        coloured by cluster and by class
  montage.png           per cluster, its most and least confident images
  k_choice.png          the silhouette curve, for n_clusters=auto
  summary.png           for a folder of runs (a stack, a sweep): mean ± sd
                        per method

Each figure is drawn on its own: one that fails is logged and skipped.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Callable, Optional

import ml_collections
import numpy as np
from absl import logging

from dec_jax.runner import checks
from dec_jax.runner import data as data_lib
from dec_jax.runner import members as members_lib
from dec_jax.apps import plots
from dec_jax.errors import DecJaxError
from dec_jax.runner.workdir import (ASSIGNMENTS, CHECKPOINTS, CONFIG,
                                    DATA_FINGERPRINT, METRICS, RESULTS,
                                    read_json, read_metrics)

PLOTS = "plots"
EMBEDDING_SAMPLE = 3000  # points in the 2-D map (t-SNE is O(N log N) per step)
MONTAGE_PER_SIDE = 8


def _attempt(name: str, draw: Callable[[], Optional[str]],
             written: list[str]) -> None:
  """Runs one figure; a failure is a warning, never the end of the report."""
  try:
    path = draw()
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("report: %s not drawn (%s: %s)", name, type(e).__name__, e)
    return
  if path:
    written.append(path)


def image_shape(dataset: data_lib.Dataset) -> Optional[tuple[int, ...]]:
  """The images' shape, or a square guess for flat pixel rows, else None."""
  if dataset.image_shape:
    return tuple(dataset.image_shape)
  side = math.isqrt(dataset.dim)
  return (side, side) if side * side == dataset.dim and side >= 8 else None


def confidence(x: np.ndarray, labels: np.ndarray,
               q: Optional[np.ndarray]) -> tuple[np.ndarray, str]:
  """Per point: max_j q_ij when soft assignments exist, else minus the
  distance to its cluster's mean input (for k-means)."""
  if q is not None:
    return np.max(q, axis=1), "max q"
  result = np.empty(len(labels), np.float32)
  for c in np.unique(labels):
    members = labels == c
    result[members] = -np.linalg.norm(x[members] - x[members].mean(0), axis=1)
  return result, "closeness to the cluster mean"


MAPS = ("auto", "tsne", "umap")


def two_d_map(features: np.ndarray, seed: int,
              how: str = "tsne") -> tuple[np.ndarray, str]:
  """[n, 2] coordinates and the method's name.

  `tsne`: scikit-learn's t-SNE (after PCA to 50 dims; exact below 1,000
  points, where it is the faster). `umap`: umap-learn's UMAP (its first call
  in a process compiles for ~20 s). `auto`: UMAP if umap-learn is installed.
  """
  features = np.asarray(features, np.float32)
  if how in ("auto", "umap"):
    try:
      import umap  # pylint: disable=g-import-not-at-top
      return umap.UMAP(random_state=seed).fit_transform(features), "UMAP"
    except ImportError:
      if how == "umap":
        raise DecJaxError("map=umap needs umap-learn (pip install "
                          "umap-learn); map=tsne needs nothing more.") from None
  from sklearn.decomposition import PCA  # pylint: disable=g-import-not-at-top
  from sklearn.manifold import TSNE  # pylint: disable=g-import-not-at-top
  if features.shape[1] > 50 and features.shape[0] > 50:
    features = PCA(50, random_state=seed).fit_transform(features)
  n = features.shape[0]
  return TSNE(2, perplexity=min(30.0, (n - 1) / 3), init="pca", max_iter=500,
              method="exact" if n < 1000 else "barnes_hut",
              random_state=seed).fit_transform(features), "t-SNE"


def _embed(workdir: str, dataset: data_lib.Dataset,
           rows: np.ndarray) -> tuple[np.ndarray, str]:
  """The trained encoder's embedding of the dataset's `rows` if the run has
  one, else their features."""
  sample = dataclasses.replace(dataset, x=dataset.x[rows], y=None)
  if os.path.exists(os.path.join(workdir, CHECKPOINTS, "dec.json")):
    from dec_jax.apps import predict  # pylint: disable=g-import-not-at-top
    return predict.load_trained(workdir).embed(sample), "embedding"
  return sample.x / sample.divisor, "inputs"


def after_member(workdir: str, dataset: data_lib.Dataset, tb_writer) -> None:
  """The runner's end-of-member hook (`run(..., after_member=...)`): the
  member's plots, from the data the run already holds."""
  build_report(workdir, dataset=dataset, tb_writer=tb_writer)


def hook(config) -> Optional[Callable]:
  """`after_member` if the config asks for plots (config.report), else None."""
  return after_member if config.get("report", False) else None


def build_report(workdir: str, *, dataset: Optional[data_lib.Dataset] = None,
                 sample_size: int = EMBEDDING_SAMPLE, seed: int = 0,
                 map_method: str = "tsne", tb_writer=None) -> list[str]:
  """Draws the run's figures into WORKDIR/plots; returns the files written.

  `dataset` saves reloading the data (the runner passes its own);
  `map_method` is one of MAPS (see `two_d_map`); `tb_writer` (a
  `dec_jax.tensorboard.Writer`) also receives the montage.
  A folder holding no run but runs below it (a stack, a sweep, a folder of
  runs) gets summary.png.
  """
  workdir = os.path.abspath(workdir)
  out = os.path.join(workdir, PLOTS)
  if not os.path.exists(os.path.join(workdir, METRICS)):  # a run's own log
    return _summary_report(workdir, out)
  os.makedirs(out, exist_ok=True)
  config = read_json(os.path.join(workdir, CONFIG))
  results = (read_json(os.path.join(workdir, RESULTS))
             if os.path.exists(os.path.join(workdir, RESULTS)) else {})
  written: list[str] = []
  def path(name: str) -> str:
    return os.path.join(out, name)

  if os.path.exists(os.path.join(workdir, METRICS)):
    records = read_metrics(workdir)
    _attempt("training curves", lambda: plots.save(
        plots.training_curves(records), path("training_curves.png")), written)
  auto = results.get("n_clusters_auto")
  if auto:
    _attempt("k choice", lambda: plots.save(plots.k_curve(
        auto["curve"], auto["chosen"], auto["criterion"]),
                                            path("k_choice.png")), written)
  if not os.path.exists(os.path.join(workdir, ASSIGNMENTS)):
    return written
  with np.load(os.path.join(workdir, ASSIGNMENTS)) as saved:
    labels = saved["labels"]
    q = saved["q"] if "q" in saved else None
  k = results.get("n_clusters") or int(labels.max()) + 1
  _attempt("cluster sizes", lambda: plots.save(
      plots.cluster_sizes(labels, k), path("cluster_sizes.png")), written)

  dataset = _report_data(dataset, config, labels.size,
                         results.get(DATA_FINGERPRINT))
  if dataset is not None:
    _data_figures(workdir, dataset, labels, q, path, written,
                  sample_size=sample_size, seed=seed, map_method=map_method,
                  tb_writer=tb_writer)
  return written


def _report_data(dataset: Optional[data_lib.Dataset], config: dict,
                 n_labels: int, fingerprint: Optional[str]
                 ) -> Optional[data_lib.Dataset]:
  """The run's data as float32 features (loaded when not given), or None
  (logged) when it cannot be loaded or is not the data the run clustered
  (its fingerprint, where results.json has one, or its size differs)."""
  if dataset is None:
    try:
      dataset = checks.load_data(ml_collections.ConfigDict(config))
    except Exception as e:  # pylint: disable=broad-except
      logging.warning("report: the run's data cannot be loaded (%s); no "
                      "confusion matrix, map or montage.", e)
      return None
  if fingerprint is not None and dataset.fingerprint != fingerprint:
    logging.warning("report: the data changed since the run (fingerprint %s, "
                    "the run's %s); no confusion matrix, map or montage.",
                    dataset.fingerprint, fingerprint)
    return None
  if dataset.divisor != 1.0:  # raw uint8 inputs (keep_uint8): the features
    dataset = dataclasses.replace(
        dataset, x=dataset.x.astype(np.float32) / dataset.divisor)
  if dataset.num_samples != n_labels:
    logging.warning("report: the data has %d points, the assignments %d; no "
                    "confusion matrix, map or montage.", dataset.num_samples,
                    n_labels)
    return None
  return dataset


def _data_figures(workdir: str, dataset: data_lib.Dataset, labels, q, path,
                  written: list[str], *, sample_size: int, seed: int,
                  map_method: str, tb_writer) -> None:
  """The figures that need the data: confusion matrix, map, montage."""
  y = dataset.y
  if y is not None:
    _attempt("confusion matrix", lambda: plots.save(
        plots.confusion_matrix(y, labels), path("confusion_matrix.png")),
             written)

  def draw_map():
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(labels.size, min(sample_size, labels.size),
                                replace=False))
    features, space = _embed(workdir, dataset, sample)
    xy, how = two_d_map(features, seed, map_method)
    fig = plots.embedding_map(
        xy, labels[sample], None if y is None else y[sample],
        title=f"{how} of the {space} ({sample.size} points)")
    return plots.save(fig, path("embedding.png"))

  _attempt("embedding map", draw_map, written)
  shape = image_shape(dataset)
  if shape is not None:
    def draw_montage():
      conf, how = confidence(dataset.x, labels, q)
      images = dataset.x.reshape((-1,) + shape)
      fig = plots.montage(images, labels, conf, MONTAGE_PER_SIDE, classes=y,
                          title=f"confidence: {how}")
      file = plots.save(fig, path("montage.png"))
      if tb_writer is not None:
        canvas, _ = plots.montage_array(images, labels, conf, MONTAGE_PER_SIDE)
        tb_writer.write_image("montage", (canvas * 255).astype(np.uint8))
      return file

    _attempt("montage", draw_montage, written)


def _summary_report(folder: str, out: str) -> list[str]:
  """summary.png over the results.json files below `folder`."""
  results = [r for _, r in members_lib.member_results([folder])]
  if not results:
    raise DecJaxError(f"{folder} holds no run ({METRICS}) and no finished "
                      f"run ({RESULTS}) below it.")
  os.makedirs(out, exist_ok=True)
  written: list[str] = []
  _attempt("summary", lambda: plots.save(plots.method_summary(results),
                                         os.path.join(out, "summary.png")),
           written)
  return written
