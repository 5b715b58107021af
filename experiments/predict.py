r"""Applies a trained DEC model to data and writes the assignments.

  python -m experiments.predict --workdir=workdirs/mnist_dec \
      --data=mnist --data_dir=../shared/data/mnist --split=test \
      --out=mnist_test.npz

--data takes what --config.dataset takes (a built-in name or a file path);
inputs are divided by the number the training inputs were divided by (as
`TrainedModel` does with raw inputs), and a CSV's label column is the
training run's unless --label_column says otherwise (`none`: new data
without labels). --split applies to the sets that have splits (IDX folders,
split HDF5 files); other files are refused unless --split=all. The .npz
holds `labels` [N], `q` [N, K] and `z` [N, d]; with --out=FILE.csv, one
cluster id per line instead.
ACC / NMI / ARI are printed when the data has labels.
"""

import os
import sys
from typing import Optional

from absl import app
from absl import flags
import numpy as np

from dec_jax.runner import data
from dec_jax.runner.checks import parse_label_column
from dec_jax.runner.run import hide_orbax_info
from dec_jax.core import metrics
from dec_jax.errors import DecJaxError
from dec_jax.apps.predict import load_trained
from dec_jax.runner.workdir import write_bytes_atomic, write_text_atomic

_WORKDIR = flags.DEFINE_string("workdir", None, "A finished DEC run.")
_DATA = flags.DEFINE_string("data", None, "Data set name or file path.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "IDX folder, if needed.")
_SPLIT = flags.DEFINE_enum("split", "all", data.SPLITS, "Split of IDX sets.")
_OUT = flags.DEFINE_string("out", None, "Output .npz or .csv.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --out.")
_LABEL_COLUMN = flags.DEFINE_string(
    "label_column", None, "CSV only: the column holding labels (default: "
    "the training run's label_column; 'none': no labels in --data).")
flags.mark_flags_as_required(["workdir", "data", "out"])


def predict_to_file(workdir: str, source: str, out: str, *, data_dir=None,
                    split: str = "all", overwrite: bool = False,
                    label_column: Optional[str] = None) -> dict:
  """Predicts `source` with the model in `workdir`; returns the scores.
  `label_column` (CSV): an index, 'none', or None for the run's."""
  if not out.endswith((".npz", ".csv")):
    raise DecJaxError(f"--out must end in .npz or .csv, got {out!r}.")
  if os.path.exists(out) and not overwrite:
    raise DecJaxError(f"{out} exists; pass --overwrite to replace it.")
  if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
    raise DecJaxError(f"the folder of --out {out!r} does not exist.")
  is_csv = source.lower().endswith(".csv")
  if label_column is not None and not is_csv:
    raise DecJaxError(f"--label_column is for CSV files; {source} gives its "
                      "labels apart.")
  model = load_trained(workdir)
  if label_column is None:
    label_column = model.config.get("label_column", "")
  column = parse_label_column("" if label_column == "none" else label_column)
  # 8-bit inputs stay uint8 (a quarter of the memory), decoded by the model.
  dataset = data.load(source, split=split, data_dir=data_dir,
                      scale=model.scale,
                      label_column=column if is_csv else None,
                      keep_uint8=True)
  z = model.embed(dataset)
  q = model.soft_assign_embedding(z)
  labels = q.argmax(axis=1)
  if out.endswith(".csv"):
    write_text_atomic(out, "".join(f"{label}\n" for label in labels))
  else:
    write_bytes_atomic(out, lambda f: np.savez_compressed(
        f, labels=labels, q=q, z=z))
  return metrics.evaluate(dataset.y, labels)


def main(argv):
  del argv
  hide_orbax_info()
  try:
    scores = predict_to_file(_WORKDIR.value, _DATA.value, _OUT.value,
                             data_dir=_DATA_DIR.value, split=_SPLIT.value,
                             overwrite=_OVERWRITE.value,
                             label_column=_LABEL_COLUMN.value)
  except DecJaxError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  summary = " ".join(f"{k.upper()}={v:.4f}" for k, v in scores.items())
  print(f"wrote {_OUT.value} {summary}".rstrip())


if __name__ == "__main__":
  app.run(main)
