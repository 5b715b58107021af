"""Figures of a clustering: pure functions of arrays and metrics records.

Each function returns a `matplotlib.figure.Figure` built without pyplot (no
global state, no display needed: PNGs are rendered by Agg); `save` writes
one atomically. `dec_jax.report` decides what to draw for a workdir.
"""

from __future__ import annotations

import collections
import os
import statistics
from typing import Optional, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from scipy.optimize import linear_sum_assignment

from dec_jax.core import metrics
from dec_jax.runner.workdir import write_bytes_atomic

SCORES = metrics.SCORES


def save(fig: Figure, path: str, dpi: int = 100) -> str:
  """Renders fig into `path` (format from its suffix) through a temp file:
  a drawing that fails leaves the old file, or none, never half of one."""
  fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
  write_bytes_atomic(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi,
                                                 bbox_inches="tight"))
  return path


def cluster_colours(k: int) -> np.ndarray:
  """k distinct RGBA colours: tab10 / tab20, else evenly spaced hues."""
  if k <= 10:
    return colormaps["tab10"](np.arange(k))
  if k <= 20:
    return colormaps["tab20"](np.arange(k))
  return colormaps["hsv"](np.linspace(0, 1, k, endpoint=False))


def _series(records: Sequence[dict], stage: str, x_field: str, y_field: str):
  points = [(r[x_field], r[y_field]) for r in records
            if r.get("stage") == stage and r.get(x_field) is not None
            and r.get(y_field) is not None]
  return tuple(np.array(v, float) for v in zip(*points)) if points else None


def training_curves(records: Sequence[dict]) -> Figure:
  """Pretraining loss per epoch; DEC's ACC / NMI / ARI, loss and label-change
  fraction per iteration (from the metrics.jsonl records)."""
  panels = []
  pre = _series(records, "pretrain", "epoch", "loss")
  if pre:
    panels.append(("autoencoder pretraining", "epoch", "reconstruction MSE",
                   {"loss": pre}, False))
  scores = {m: s for m in SCORES
            if (s := _series(records, "dec", "iteration", m))}
  if scores:
    panels.append(("clustering scores", "iteration", "score", scores, False))
  for field, title, log in (("loss", "clustering loss (KL)", False),
                            ("label_change", "label-change fraction", True)):
    series = _series(records, "dec", "iteration", field)
    if series:
      panels.append((title, "iteration", field, {field: series}, log))
  fig = Figure(figsize=(4.2 * max(len(panels), 1), 3.4))
  if not panels:
    fig.text(0.5, 0.5, "no training records", ha="center")
    return fig
  axes = fig.subplots(1, len(panels), squeeze=False)[0]
  init = next((r for r in records if r.get("stage") == "kmeans_init"), {})
  for ax, (title, xlabel, ylabel, series, log) in zip(axes, panels):
    for name, (x, y) in series.items():
      if log:  # zeros (e.g. the first update's change) have no place on it
        x, y = x[y > 0], y[y > 0]
      line, = ax.plot(x, y, marker="." if x.size < 50 else None, label=name)
      if name in SCORES and init.get(name) is not None:
        ax.axhline(init[name], color=line.get_color(), ls=":", lw=1)
    if log and all((y > 0).any() for _, y in series.values()):
      ax.set_yscale("log")
      ylabel += " (log)"
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
      ax.legend(title="dotted: k-means init" if init else None, fontsize=8,
                title_fontsize=8)
  fig.tight_layout()
  return fig


def embedding_map(xy: np.ndarray, clusters: np.ndarray,
                  classes: Optional[np.ndarray] = None,
                  title: str = "embedding") -> Figure:
  """2-D map [N, 2] coloured by cluster and, when given, by true class."""
  views = [("cluster", clusters)] + ([("class", classes)]
                                     if classes is not None else [])
  fig = Figure(figsize=(5.2 * len(views), 5))
  axes = fig.subplots(1, len(views), squeeze=False)[0]
  size = max(1.0, min(12.0, 4000 / len(xy)))
  for ax, (name, values) in zip(axes, views):
    ids, index = np.unique(values, return_inverse=True)
    colours = cluster_colours(len(ids))
    ax.scatter(xy[:, 0], xy[:, 1], c=colours[index], s=size, linewidths=0)
    if len(ids) <= 20:
      handles = [ax.scatter([], [], color=colours[i], s=20, label=str(v))
                 for i, v in enumerate(ids)]
      ax.legend(handles=handles, title=name, fontsize=7, title_fontsize=8,
                loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set(title=f"{title}, coloured by {name}", xticks=[], yticks=[])
  fig.tight_layout()
  return fig


def _as_rgb_tiles(images: np.ndarray) -> np.ndarray:
  """[N, H, W] or [N, H, W, C] in any range -> [N, H, W, 3] floats in [0, 1]."""
  images = np.asarray(images, np.float32)
  lo, hi = float(images.min()), float(images.max())
  images = (images - lo) / (hi - lo) if hi > lo else np.zeros_like(images)
  if images.ndim == 3:
    images = np.repeat(images[..., None], 3, axis=-1)
  return images[..., :3]


def montage_array(images: np.ndarray, labels: np.ndarray,
                  confidence: np.ndarray, per_side: int = 8,
                  gap: int = 2) -> tuple[np.ndarray, list[int]]:
  """One row per non-empty cluster: its `per_side` most confident images,
  a gap, its `per_side` least confident. Returns ([H, W, 3] in [0, 1],
  the clusters of the rows). Light grey where a cluster has fewer images."""
  tiles = _as_rgb_tiles(images)
  h, w = tiles.shape[1:3]
  clusters = [int(c) for c in np.unique(labels)]
  cols = 2 * per_side
  canvas = np.full((len(clusters) * (h + gap) - gap,
                    cols * (w + gap) + 3 * gap, 3), 0.85, np.float32)
  for row, c in enumerate(clusters):
    members = np.flatnonzero(labels == c)
    order = members[np.argsort(-confidence[members], kind="stable")]
    sides = (order[:per_side], order[::-1][:per_side][::-1])
    for side, chosen in enumerate(sides):
      for j, i in enumerate(chosen):
        y = row * (h + gap)
        x = (side * per_side + j) * (w + gap) + side * 4 * gap
        canvas[y:y + h, x:x + w] = tiles[i]
  return canvas, clusters


def montage(images: np.ndarray, labels: np.ndarray, confidence: np.ndarray,
            per_side: int = 8, classes: Optional[np.ndarray] = None,
            title: str = "") -> Figure:
  """Per cluster (rows): most confident images left, least confident right."""
  canvas, clusters = montage_array(images, labels, confidence, per_side)
  height = min(0.42 * len(clusters) + 0.8, 30)
  fig = Figure(figsize=(0.42 * 2 * per_side + 1.5, height))
  ax = fig.add_subplot()
  ax.imshow(canvas, interpolation="nearest")
  row_h = canvas.shape[0] / len(clusters)
  names = []
  for c in clusters:
    members = labels == c
    name = f"{c} (n={int(members.sum())})"
    if classes is not None:
      values, counts = np.unique(classes[members], return_counts=True)
      name += f"\nmostly {values[counts.argmax()]}"
    names.append(name)
  ax.set_yticks((np.arange(len(clusters)) + 0.5) * row_h - 1, names,
                fontsize=7)
  ax.set_xticks([canvas.shape[1] * 0.25, canvas.shape[1] * 0.75],
                ["most confident", "least confident"])
  ax.tick_params(length=0)
  for spine in ax.spines.values():
    spine.set_visible(False)
  ax.set(ylabel="cluster", title=title)
  fig.tight_layout()
  return fig


def matched_order(y_true: np.ndarray, y_pred: np.ndarray):
  """(contingency [clusters, classes], cluster order): the cluster matched
  to each class by the Hungarian match of `metrics` first, in class order,
  then the unmatched clusters."""
  table = metrics.contingency(y_true, y_pred)
  rows, cols = linear_sum_assignment(table, maximize=True)
  matched = [int(r) for r in rows[np.argsort(cols)]]
  order = matched + [r for r in range(table.shape[0]) if r not in matched]
  return table, order


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> Figure:
  """Clusters x classes counts, clusters ordered by their Hungarian match,
  coloured by the share of each class; the diagonal holds the matches."""
  table, order = matched_order(y_true, y_pred)
  classes, clusters = np.unique(y_true), np.unique(y_pred)
  table = table[order]
  share = table / np.maximum(table.sum(axis=0, keepdims=True), 1)
  n_rows, n_cols = table.shape
  fig = Figure(figsize=(min(1.0 + 0.55 * n_cols, 16),
                        min(0.8 + 0.5 * n_rows, 16)))
  ax = fig.add_subplot()
  image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
  if n_rows * n_cols <= 400:
    for (i, j), count in np.ndenumerate(table):
      ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
              color="white" if share[i, j] > 0.6 else "black")
  ax.set_xticks(range(n_cols), [str(c) for c in classes], fontsize=8)
  ax.set_yticks(range(n_rows), [str(clusters[r]) for r in order], fontsize=8)
  ax.set(xlabel="true class", ylabel="cluster (Hungarian-matched order)",
         title="confusion matrix")
  fig.colorbar(image, ax=ax, label="share of the class")
  fig.tight_layout()
  return fig


def cluster_sizes(labels: np.ndarray, n_clusters: Optional[int] = None
                  ) -> Figure:
  """Bar chart of points per cluster, with the uniform size as a line."""
  sizes = np.bincount(np.asarray(labels), minlength=n_clusters or 0)
  fig = Figure(figsize=(min(2 + 0.4 * len(sizes), 14), 3.2))
  ax = fig.add_subplot()
  ax.bar(range(len(sizes)), sizes, color=cluster_colours(len(sizes)))
  ax.axhline(sizes.sum() / len(sizes), color="grey", ls="--", lw=1,
             label="N / k")
  ax.set(xlabel="cluster", ylabel="points", title="cluster sizes")
  if len(sizes) <= 40:
    ax.set_xticks(range(len(sizes)))
  ax.legend(fontsize=8)
  fig.tight_layout()
  return fig


def k_curve(curve: dict, chosen: int, criterion: str = "silhouette") -> Figure:
  """The criterion for each candidate k, the chosen k marked."""
  ks = sorted(int(k) for k in curve)
  values = [curve[k] if k in curve else curve[str(k)] for k in ks]
  fig = Figure(figsize=(5, 3.2))
  ax = fig.add_subplot()
  ax.plot(ks, values, marker="o")
  ax.axvline(chosen, color="C3", ls="--", label=f"chosen k = {chosen}")
  ax.set(xlabel="k", ylabel=criterion, title=f"choice of k: best {criterion}")
  ax.set_xticks(ks)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  return fig


def method_summary(results: Sequence[dict]) -> Figure:
  """Mean ± sd of ACC / NMI / ARI per (dataset, method) over the runs given
  (seeds, sweeps); the number of runs in each label."""
  groups = collections.defaultdict(list)
  for r in results:
    groups[f"{r.get('dataset', '?')}\n{r['method']}"].append(r)
  names = sorted(groups)
  fig = Figure(figsize=(max(5, 1.6 * len(names) + 2), 3.8))
  ax = fig.add_subplot()
  width = 0.8 / len(SCORES)
  for i, m in enumerate(SCORES):
    means, sds = [], []
    for name in names:
      values = [r[m] for r in groups[name] if r.get(m) is not None]
      means.append(statistics.mean(values) if values else np.nan)
      sds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
    ax.bar(np.arange(len(names)) + (i - 1) * width, means, width, yerr=sds,
           capsize=3, label=m.upper())
  ax.set_xticks(range(len(names)),
                [f"{n}\n({len(groups[n])} run{'s' * (len(groups[n]) > 1)})"
                 for n in names], fontsize=8)
  ax.set(ylim=(0, 1.05), ylabel="score (mean ± sd)",
         title="scores per dataset and method, mean ± sd over the runs")
  ax.legend(fontsize=8, ncols=3)
  ax.grid(axis="y", alpha=0.3)
  fig.tight_layout()
  return fig


def accuracy_vs_pretraining(rows: Sequence[dict]) -> Figure:
  """AE + k-means and final ACC (mean ± sd over seeds) against pretraining
  epochs and the median wall time of a run; rows from
  experiments/time_to_accuracy.py (one per dataset, method, recipe,
  clustering stage and epochs); one pair of curves per all but the epochs."""
  fig = Figure(figsize=(10, 3.8))
  axes = fig.subplots(1, 2, sharey=True)
  series = collections.defaultdict(list)
  for row in rows:
    series[(row["dataset"], row["method"], row.get("recipe", ""),
            row.get("clustering", "–"))].append(row)
  for (dataset, method, recipe, stage), points in sorted(series.items()):
    name = ", ".join(part for part in (dataset, recipe, stage)
                     if part and part != "–")
    for field, label, style in (("init_acc", "AE + k-means", "--o"),
                                ("acc", method.upper(), "-o")):
      shown = [p for p in points if p[field]]  # n2d: no AE + k-means
      means = [statistics.mean(p[field]) for p in shown]
      sds = [statistics.stdev(p[field]) if len(p[field]) > 1 else 0.0
             for p in shown]
      for ax, xs in ((axes[0], [p["epochs"] for p in shown]),
                     (axes[1], [p["total_s"] / 60 for p in shown])):
        ax.errorbar(xs, means, yerr=sds, fmt=style, capsize=3,
                    label=f"{name}: {label}")
  axes[0].set(xlabel="pretraining epochs", ylabel="ACC (mean ± sd over seeds)")
  axes[1].set(xlabel="wall time of a run (median, min)")
  for ax in axes:
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=8)
  fig.suptitle("accuracy against pretraining cost")
  fig.tight_layout()
  return fig
