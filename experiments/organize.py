r"""Organises a folder of photos into clusters: an HTML gallery and a CSV.

  python -m experiments.organize --images=~/Pictures/phone --out=/tmp/gallery
  python -m experiments.organize --images=DIR --out=OUT --n_clusters=6 \
      --features=hog --folders=link

Writes OUT/index.html (a section per cluster, thumbnails by confidence),
OUT/assignments.csv (file, cluster, confidence), OUT/choose_k.png when k was
chosen (best silhouette of k-means over [k_min, k_max]) and, with --folders,
OUT/clusters/cluster_XX/ of links or copies. Files that are not jpg / png or
cannot be read are listed on the page and skipped.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging

from dec_jax.apps import organize
from dec_jax.errors import DecJaxError

_IMAGES = flags.DEFINE_string("images", None, "Folder of jpg / png photos "
                              "(searched recursively).")
_OUT = flags.DEFINE_string("out", None, "Folder for the gallery (new, empty, "
                           "or an earlier gallery).")
_K = flags.DEFINE_integer("n_clusters", None, "Number of clusters; default: "
                          "chosen by the silhouette over [k_min, k_max].")
_K_MIN = flags.DEFINE_integer("k_min", 2, "Smallest k tried.")
_K_MAX = flags.DEFINE_integer("k_max", 10, "Largest k tried.")
_FEATURES = flags.DEFINE_enum("features", "pixels", organize.FEATURES,
                              "pixels: 32x32 RGB; hog: HOG + colour "
                              "histogram; embedding: --embedding's rows.")
_EMBEDDING = flags.DEFINE_string("embedding", None, "Your own features: .npz "
                                 "(x, files), .csv (file,v1,...) or .npy "
                                 "(rows in sorted path order); implies "
                                 "--features=embedding.")
_METHOD = flags.DEFINE_enum("method", "kmeans", organize.METHODS,
                            "k-means, or DEC / IDEC on the features.")
_DEC_EPOCHS = flags.DEFINE_integer("dec_epochs", 100, "Autoencoder "
                                   "pretraining epochs for DEC / IDEC.")
_FOLDERS = flags.DEFINE_enum("folders", "none", organize.FOLDERS,
                             "Also make OUT/clusters/cluster_XX/ folders of "
                             "links or copies of the photos.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of k-means (and DEC).")
flags.mark_flags_as_required(["images", "out"])


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  kind = "embedding" if _EMBEDDING.value else _FEATURES.value
  try:
    photos, result = organize.organize(
        os.path.expanduser(_IMAGES.value), os.path.expanduser(_OUT.value),
        _K.value, feature_kind=kind, embedding=_EMBEDDING.value,
        method=_METHOD.value, folders=_FOLDERS.value, seed=_SEED.value,
        k_min=_K_MIN.value, k_max=_K_MAX.value, dec_epochs=_DEC_EPOCHS.value)
  except DecJaxError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  for rel, reason in photos.skipped:
    print(f"skipped {rel}: {reason}")
  sizes = [int((result.labels == c).sum()) for c in range(result.k)]
  print(f"{len(photos.files)} photos in {result.k} clusters (sizes {sizes}), "
        f"{len(photos.skipped)} skipped -> "
        f"{os.path.join(_OUT.value, 'index.html')}")


if __name__ == "__main__":
  app.run(main)
