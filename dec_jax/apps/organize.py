"""The photo organiser: a folder of images -> clusters -> an HTML gallery.

  result = organize("~/Pictures/phone", "/tmp/gallery", n_clusters=None)

Steps, each a function here:
  scan            every file under the folder; jpg / jpeg / png are images,
                  the rest are listed as skipped
  read_image      Pillow, any size and mode (16-bit, palette, alpha, CMYK,
                  EXIF rotation) -> an RGB thumbnail; unreadable -> skipped
  features        `pixels` (32x32 RGB), `hog` (HOG of the 128x128 greyscale
                  + a 4x4x4 RGB colour histogram, scikit-image), or
                  `embedding` (a file of the user's own features)
  cluster         k-means (`dec_jax.kmeans`), or DEC / IDEC on the features
                  (`dec_jax.estimator.DEC`); confidence = max_j q_ij, the
                  Student-t soft assignment of DEC (`dec_jax.clustering`)
  choose k        when not given: the best silhouette of k-means over
                  [k_min, k_max] (`dec_jax.choose_k`), curve in choose_k.png
  write_gallery   index.html (a section per cluster, thumbnails by
                  confidence), assignments.csv (file, cluster, confidence),
                  optionally clusters/cluster_XX/ folders of links or copies

Embedding files are aligned with the images by name or by order:
  .npz   arrays `x` [N, d] and `files` [N] (paths relative to the folder)
  .csv   rows `file,v1,v2,...` (a header row is allowed)
  .npy   [N, d], row i for the i-th image path of `scan` (sorted relative
         paths of the jpg / jpeg / png files, as in assignments.csv's names)
"""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import os
import shutil
import urllib.parse
from typing import Optional, Sequence

import numpy as np

from dec_jax.runner import checks
from dec_jax.core import choose_k
from dec_jax.core import clustering
from dec_jax.runner import data
from dec_jax.core import kmeans
from dec_jax import methods
from dec_jax.errors import DecJaxError
from dec_jax.runner.workdir import write_bytes_atomic, write_text_atomic

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
FEATURES = ("pixels", "hog", "embedding")
# k-means on the features, or a method that trains a model (dec, idec, ...).
DEEP_METHODS = tuple(sorted(name for name, m in methods.METHODS.items()
                            if m.predicts))
METHODS = ("kmeans",) + DEEP_METHODS
FOLDERS = ("none", "link", "copy")
SOURCE_SIDE = 256  # images are decoded down to about this size
THUMB_SIDE = 160   # thumbnails in the gallery
ASSIGNMENTS_CSV = "assignments.csv"


# ------------------------------------------------------------- reading


def scan(folder: str, exclude: Optional[str] = None
         ) -> tuple[list[str], list[tuple[str, str]]]:
  """(image paths, [(path, reason)] of other files), relative to `folder`,
  sorted; `exclude` (e.g. the output folder inside it) is not entered."""
  if not os.path.isdir(folder):
    raise DecJaxError(f"images folder {folder!r} does not exist or is not a "
                      "folder.")
  exclude = os.path.abspath(exclude) if exclude else None
  images, skipped = [], []
  for root, dirs, files in os.walk(folder):
    dirs[:] = sorted(d for d in dirs
                     if os.path.abspath(os.path.join(root, d)) != exclude)
    for name in sorted(files):
      rel = os.path.relpath(os.path.join(root, name), folder)
      if name.lower().endswith(IMAGE_SUFFIXES):
        images.append(rel)
      else:
        skipped.append((rel, "not a jpg or png file"))
  return sorted(images), skipped


def read_image(path: str, side: int = SOURCE_SIDE):
  """An RGB `PIL.Image` of at most side x side (aspect kept) from any jpg /
  png: EXIF rotation applied, transparency on white, 16-bit and float
  greyscale rescaled to 8 bits. Raises on unreadable or truncated files."""
  from PIL import Image, ImageOps  # pylint: disable=g-import-not-at-top
  with Image.open(path) as img:
    img.draft("RGB", (side, side))  # JPEG: decode at a reduced scale
    img = ImageOps.exif_transpose(img)
    img.load()
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
      values = np.asarray(img, np.float32)
      top = float(values.max())
      img = Image.fromarray(
          (values * (255.0 / top) if top > 0 else values).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and
                                            "transparency" in img.info):
      rgba = img.convert("RGBA")
      img = Image.new("RGB", rgba.size, (255, 255, 255))
      img.paste(rgba, mask=rgba.getchannel("A"))
    img = img.convert("RGB")
    img.thumbnail((side, side))
    return img


@dataclasses.dataclass
class Photos:
  """The readable images (`files` relative to `folder`, their thumbnails)
  and every file skipped, with the reason."""

  folder: str
  files: list[str]
  images: list  # PIL images, RGB
  skipped: list[tuple[str, str]]
  candidates: list[str]  # every jpg / png path, readable or not


def load_photos(folder: str, exclude: Optional[str] = None) -> Photos:
  candidates, skipped = scan(folder, exclude)
  files, images = [], []
  for rel in candidates:
    try:
      images.append(read_image(os.path.join(folder, rel)))
      files.append(rel)
    except Exception as e:  # pylint: disable=broad-except
      skipped.append((rel, f"unreadable: {type(e).__name__}: {e}"[:200]))
  return Photos(os.path.abspath(folder), files, images, sorted(skipped),
                candidates)


# ------------------------------------------------------------ features


def pixel_features(images: Sequence, size: int = 32) -> np.ndarray:
  """[N, size * size * 3] RGB values in [0, 1] of the images squashed to
  size x size."""
  return np.stack([np.asarray(img.resize((size, size)), np.float32).ravel()
                   / 255.0 for img in images])


def hog_colour_features(images: Sequence, size: int = 128,
                        bins: int = 4) -> np.ndarray:
  """[N, d]: HOG of the size x size greyscale image (shape and texture) and
  a bins^3 RGB histogram (colour), each scaled to unit length."""
  from skimage.color import rgb2gray  # pylint: disable=g-import-not-at-top
  from skimage.feature import hog  # pylint: disable=g-import-not-at-top
  rows = []
  for img in images:
    pixels = np.asarray(img.resize((size, size)))
    shape = hog(rgb2gray(pixels), orientations=9, pixels_per_cell=(16, 16),
                cells_per_block=(2, 2))
    colour, _ = np.histogramdd(pixels.reshape(-1, 3), bins=(bins,) * 3,
                               range=((0, 256),) * 3)
    colour = colour.ravel()
    rows.append(np.concatenate([shape / max(np.linalg.norm(shape), 1e-12),
                                colour / np.linalg.norm(colour)]))
  return np.asarray(rows, np.float32)


def read_embedding(path: str, candidates: Sequence[str]) -> np.ndarray:
  """[len(candidates), d] rows of the user's features, in candidates' order
  (see the module doc for the formats)."""
  if not os.path.isfile(path):
    raise DecJaxError(f"embedding file {path!r} does not exist.")
  lower = path.lower()
  if lower.endswith((".npy", ".npz")):
    data.check_signature(path, lower[-4:])
  if lower.endswith(".npy"):
    x = _read_numpy(path)
    if x.ndim != 2 or x.shape[0] != len(candidates):
      raise DecJaxError(
          f"{path}: a .npy embedding needs one row per jpg/png file in the "
          f"folder ({len(candidates)}, in sorted path order), got shape "
          f"{x.shape}; or give an .npz with `files` or a .csv with names.")
    return _finite(x.astype(np.float32), path)
  if lower.endswith(".npz"):
    saved = _read_numpy(path)
    if "x" not in saved or "files" not in saved:
      raise DecJaxError(f"{path}: an .npz embedding needs arrays `x` and "
                        f"`files`, found {sorted(saved)}.")
    x, names = saved["x"], [str(f) for f in saved["files"]]
  elif lower.endswith(".csv"):
    with open(path, newline="") as f:
      rows = [r for r in csv.reader(f) if r]
    if rows and not data.is_number(rows[0][-1]):
      rows = rows[1:]  # a header
    try:
      names = [r[0] for r in rows]
      x = np.array([[float(v) for v in r[1:]] for r in rows], np.float32)
    except ValueError as e:
      raise DecJaxError(f"{path}: rows must be `file,v1,v2,...` with "
                        f"numbers ({e}).") from None
  else:
    raise DecJaxError(f"embedding file {path!r}: expected .npy, .npz or "
                      ".csv.")
  if x.ndim != 2 or x.shape[0] != len(names) or x.shape[1] == 0:
    raise DecJaxError(f"{path}: expected one feature row per file name, got "
                      f"{len(names)} names and features of shape {x.shape}.")
  index = {os.path.normpath(n): i for i, n in enumerate(names)}
  missing = [c for c in candidates if os.path.normpath(c) not in index]
  if missing:
    raise DecJaxError(f"{path}: no features for {len(missing)} image(s), e.g. "
                      f"{missing[:3]}; names must be paths relative to the "
                      "images folder.")
  return _finite(x[[index[os.path.normpath(c)] for c in candidates]]
                 .astype(np.float32), path)


def _read_numpy(path: str):
  """The array of a .npy, or the arrays of a .npz as a dict; a file NumPy
  cannot read (corrupt, object arrays) is a DecJaxError."""
  try:
    with open(path, "rb") as f:
      loaded = np.load(f, allow_pickle=False)
      return loaded if isinstance(loaded, np.ndarray) else dict(loaded)
  except Exception as e:  # pylint: disable=broad-except
    raise DecJaxError(f"{path}: cannot read ({type(e).__name__}: "
                      f"{str(e)[:200]}).") from None


def _finite(x: np.ndarray, source: str) -> np.ndarray:
  if not np.isfinite(x).all():
    raise DecJaxError(f"{source}: the embedding contains NaN or inf.")
  return x


def features(photos: Photos, kind: str = "pixels",
             embedding: Optional[str] = None) -> np.ndarray:
  """[len(photos.files), d] features of the readable photos."""
  if kind == "pixels":
    return pixel_features(photos.images)
  if kind == "hog":
    return hog_colour_features(photos.images)
  if kind == "embedding":
    if not embedding:
      raise DecJaxError("features=embedding needs --embedding=FILE.")
    rows = read_embedding(embedding, photos.candidates)
    position = {c: i for i, c in enumerate(photos.candidates)}
    return rows[[position[f] for f in photos.files]]
  raise DecJaxError(f"Unknown features {kind!r}; expected one of {FEATURES}.")


# ---------------------------------------------------------- clustering


@dataclasses.dataclass
class Clustering:
  labels: np.ndarray      # [N]
  confidence: np.ndarray  # [N], max_j q_ij
  k: int
  curve: Optional[dict] = None  # {k: silhouette} when k was chosen


def cluster(x: np.ndarray, n_clusters: Optional[int] = None, *,
            method: str = "kmeans", seed: int = 0, k_min: int = 2,
            k_max: int = 10, workdir: Optional[str] = None,
            dec_epochs: int = 100,
            dec_dims: Sequence[int] = (500, 500, 2000, 10)) -> Clustering:
  """Clusters the rows of x. Without `n_clusters`, k is the best silhouette
  of k-means over [k_min, min(k_max, N - 1)]."""
  n = x.shape[0]
  if method not in METHODS:
    raise DecJaxError(f"Unknown method {method!r}; expected one of {METHODS}.")
  # scikit-learn's backend: a one-off clustering of a few thousand photos,
  # for several k, is faster without compiling a program per k.
  def fit(k: int) -> kmeans.KMeansResult:
    return kmeans.fit_kmeans(x, k, seed=seed, n_init=10, backend="sklearn")

  check_k(n, n_clusters, k_min, k_max)
  curve = None
  if n_clusters is None:
    curve = choose_k.silhouette_curve(x, range(k_min, min(k_max, n - 1) + 1),
                                      lambda k: fit(k).labels, seed=seed)
    n_clusters = choose_k.best_k(curve)
  if method not in DEEP_METHODS:
    result = fit(n_clusters)
    q = np.asarray(clustering.soft_assign(x, result.centres, 1.0))
    labels = np.asarray(result.labels)
  else:
    labels, q = _deep_cluster(x, n_clusters, method, seed, workdir,
                              dec_epochs, dec_dims)
  return Clustering(labels, q.max(axis=1), n_clusters, curve)


def check_k(n: int, n_clusters: Optional[int], k_min: int,
            k_max: int) -> None:
  """Refuses a k, or a range to choose it from, that n images cannot have."""
  if n_clusters is None:
    if n < 3 or not 2 <= k_min <= min(k_max, n - 1):
      raise DecJaxError(f"cannot choose k in [{k_min}, {k_max}] for {n} "
                        "images (needs 2 <= k_min <= k_max < images); give "
                        "--n_clusters.")
  elif not 2 <= n_clusters <= n:
    raise DecJaxError(f"n_clusters must be between 2 and the number of "
                      f"readable images ({n}), got {n_clusters}.")


def _deep_cluster(x, k, method, seed, workdir, epochs, dims):
  """DEC / IDEC through the library's estimator (its run lands in
  `workdir`, with its own plots)."""
  from dec_jax.apps.estimator import DEC  # pylint: disable=g-import-not-at-top
  shutil.rmtree(workdir, ignore_errors=True)  # an earlier gallery's run
  batch = int(min(256, x.shape[0]))
  model = DEC(k, method=method, dims=tuple(dims), pretrain_epochs=epochs,
              seed=seed,
              update_interval=max(1, x.shape[0] // batch),
              maxiter=max(1000, 20 * x.shape[0] // batch), workdir=workdir,
              config_overrides={"pretrain.batch_size": batch,
                                "dec.batch_size": batch,
                                "pretrain.log_every": max(1, epochs // 10),
                              # the gallery is the picture here; the run's
                              # plots: python -m experiments.report
                              "report": False})
  model.fit(x)
  return model.labels_, model.soft_assignment_


# -------------------------------------------------------------- output


def _url(path: str) -> str:
  return urllib.parse.quote(path.replace(os.sep, "/"))


def write_assignments(path: str, files: Sequence[str], result: Clustering,
                      order: Sequence[int]) -> None:
  """file,cluster,confidence rows in `order`, written atomically."""
  text = io.StringIO(newline="")
  writer = csv.writer(text)
  writer.writerow(["file", "cluster", "confidence"])
  for i in order:
    writer.writerow([files[i], int(result.labels[i]),
                     f"{result.confidence[i]:.4f}"])
  write_text_atomic(path, text.getvalue())


def write_folders(out: str, photos: Photos, result: Clustering,
                  how: str) -> None:
  """OUT/clusters/cluster_XX/<path with / as __>: links or copies (a name
  two paths flatten to, `a/b.jpg` and `a__b.jpg`, gets the photo's index)."""
  root = os.path.join(out, "clusters")
  shutil.rmtree(root, ignore_errors=True)
  for i, rel in enumerate(photos.files):
    folder = os.path.join(root, f"cluster_{int(result.labels[i]):02d}")
    os.makedirs(folder, exist_ok=True)
    source = os.path.join(photos.folder, rel)
    target = os.path.join(folder, rel.replace(os.sep, "__"))
    if os.path.lexists(target):
      stem, ext = os.path.splitext(target)
      target = f"{stem}__{i}{ext}"
    if how == "link":
      os.symlink(source, target)
    else:
      shutil.copy2(source, target)


_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
section { margin-bottom: 2em; }
.grid { display: flex; flex-wrap: wrap; gap: 8px; }
figure { margin: 0; width: 164px; font-size: 11px; text-align: center; }
figure img { max-width: 160px; max-height: 160px; border: 2px solid #ddd; }
figcaption { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.skipped { color: #a33; font-size: 13px; }
"""


def gallery_html(photos: Photos, result: Clustering, thumbs: Sequence[str],
                 out: str, description: str) -> str:
  """The page: a summary, the k curve, one section per cluster (largest
  first) with its thumbnails by decreasing confidence, the skipped files."""
  e = html.escape
  parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{e(os.path.basename(photos.folder))}: "
           f"{result.k} clusters</title><style>{_CSS}</style></head><body>",
           f"<h1>{len(photos.files)} photos of {e(photos.folder)} in "
           f"{result.k} clusters</h1>", f"<p>{e(description)}</p>"]
  if result.curve is not None:
    parts.append('<p><img id="choose-k" src="choose_k.png" alt="silhouette '
                 'against k" width="500"></p>')
  sizes = np.bincount(result.labels, minlength=result.k)
  for c in sorted(range(result.k), key=lambda c: (-sizes[c], c)):
    members = np.flatnonzero(result.labels == c)
    members = members[np.argsort(-result.confidence[members], kind="stable")]
    parts.append(f'<section class="cluster" id="cluster-{c}" '
                 f'data-cluster="{c}" data-size="{members.size}">'
                 f"<h2>Cluster {c} &mdash; {members.size} photo"
                 f"{'' if members.size == 1 else 's'}</h2><div class=\"grid\">")
    for i in members:
      rel = photos.files[i]
      original = _url(os.path.relpath(os.path.join(photos.folder, rel), out))
      parts.append(
          f'<figure><a href="{original}"><img src="{_url(thumbs[i])}" '
          f'alt="{e(rel)}" data-file="{e(rel)}" '
          f'title="{e(rel)} (confidence {result.confidence[i]:.2f})"></a>'
          f"<figcaption>{e(os.path.basename(rel))} "
          f"{result.confidence[i]:.2f}</figcaption></figure>")
    parts.append("</div></section>")
  if photos.skipped:
    parts.append(f'<h2>Skipped ({len(photos.skipped)})</h2>'
                 '<ul class="skipped" id="skipped">')
    parts += [f"<li>{e(rel)}: {e(reason)}</li>"
              for rel, reason in photos.skipped]
    parts.append("</ul>")
  parts.append("</body></html>")
  return "\n".join(parts)


def write_gallery(out: str, photos: Photos, result: Clustering,
                  description: str) -> str:
  """Thumbnails, choose_k.png, index.html and assignments.csv in `out`."""
  thumb_dir = os.path.join(out, "thumbs")
  shutil.rmtree(thumb_dir, ignore_errors=True)
  os.makedirs(thumb_dir)
  thumbs = []
  for i, img in enumerate(photos.images):
    name = os.path.join("thumbs", f"{i:06d}.jpg")
    small = img.copy()
    small.thumbnail((THUMB_SIDE, THUMB_SIDE))
    write_bytes_atomic(os.path.join(out, name),
                       lambda f, small=small: small.save(f, format="JPEG",
                                                         quality=85))
    thumbs.append(name)
  curve_png = os.path.join(out, "choose_k.png")
  if result.curve is not None:
    from dec_jax.apps import plots  # pylint: disable=g-import-not-at-top
    plots.save(plots.k_curve(result.curve, result.k, choose_k.CRITERION),
               curve_png)
  elif os.path.exists(curve_png):  # an earlier gallery's k choice
    os.remove(curve_png)
  order = sorted(range(len(photos.files)),
                 key=lambda i: (result.labels[i], -result.confidence[i]))
  write_assignments(os.path.join(out, ASSIGNMENTS_CSV), photos.files, result,
                    order)
  page = os.path.join(out, "index.html")
  write_text_atomic(page, gallery_html(photos, result, thumbs, out,
                                       description))
  return page


def organize(images: str, out: str, n_clusters: Optional[int] = None, *,
             feature_kind: str = "pixels", embedding: Optional[str] = None,
             method: str = "kmeans", folders: str = "none", seed: int = 0,
             k_min: int = 2, k_max: int = 10, dec_epochs: int = 100
             ) -> tuple[Photos, Clustering]:
  """Reads, clusters and writes the gallery of `images` into `out`."""
  if feature_kind not in FEATURES:
    raise DecJaxError(f"Unknown features {feature_kind!r}; expected one of "
                      f"{FEATURES}.")
  if folders not in FOLDERS:
    raise DecJaxError(f"folders must be one of {FOLDERS}, got {folders!r}.")
  if method not in METHODS:  # said before the photos are read
    raise DecJaxError(f"Unknown method {method!r}; expected one of {METHODS}.")
  checks.check_seed(seed)
  if os.path.exists(out) and (not os.path.isdir(out) or (
      os.listdir(out) and not os.path.exists(os.path.join(out,
                                                          ASSIGNMENTS_CSV)))):
    raise DecJaxError(f"out {out!r} exists and is not an earlier gallery; "
                      "choose a new or empty folder.")
  photos = load_photos(images, exclude=out)
  if len(photos.files) < 2:
    raise DecJaxError(f"{images!r} holds {len(photos.files)} readable jpg/png "
                      f"image(s); at least 2 are needed "
                      f"({len(photos.skipped)} file(s) skipped).")
  check_k(len(photos.files), n_clusters, k_min, k_max)
  x = features(photos, feature_kind, embedding)
  # `out` is made by the gallery (or the DEC run), after every check.
  result = cluster(x, n_clusters, method=method, seed=seed, k_min=k_min,
                   k_max=k_max, workdir=os.path.join(out, "run"),
                   dec_epochs=dec_epochs)
  chosen = (f"k = {result.k}, the best {choose_k.CRITERION} of k-means over "
            f"k in [{k_min}, {max(result.curve)}]" if result.curve
            else f"k = {result.k}, as given")
  description = (f"Features: {feature_kind}; clustered by {method}; {chosen}. "
                 "Thumbnails are sorted by confidence (max_j q_ij, the "
                 "Student-t soft assignment); click one for the original.")
  write_gallery(out, photos, result, description)
  if folders != "none":
    write_folders(out, photos, result, folders)
  else:  # an earlier gallery's folders would disagree with this one
    shutil.rmtree(os.path.join(out, "clusters"), ignore_errors=True)
  if method not in DEEP_METHODS:
    shutil.rmtree(os.path.join(out, "run"), ignore_errors=True)
  return photos, result
