"""TensorBoard event files next to metrics.jsonl: scalars and images.

Written with tensorboardX (numpy + protobuf only; CLU's metric writers need
TensorFlow). `tensorboard --logdir=WORKDIR/tensorboard` shows them.
Every numeric field of a metrics record becomes the scalar `stage/field`,
at the record's step (epoch for pretraining, iteration for DEC, k for the
choice of k).
"""

from __future__ import annotations

import numbers
import os
from typing import Optional

import numpy as np
from absl import logging

SUBDIR = "tensorboard"
_STEP_FIELDS = ("epoch", "iteration", "k")


def record_scalars(record: dict) -> tuple[int, dict[str, float]]:
  """(step, {tag: value}) of a metrics record's numeric fields."""
  stage = record.get("stage", "run")
  step = next((int(record[f]) for f in _STEP_FIELDS
               if isinstance(record.get(f), numbers.Number)), 0)
  scalars = {f"{stage}/{key}": float(value) for key, value in record.items()
             if key not in _STEP_FIELDS and key != "stage"
             and isinstance(value, numbers.Number) and np.isfinite(value)}
  return step, scalars


class Writer:
  """Event files of a workdir; does nothing if tensorboardX is missing."""

  def __init__(self, workdir: str):
    self.logdir = os.path.join(workdir, SUBDIR)
    try:
      # pylint: disable-next=g-import-not-at-top
      from tensorboardX import SummaryWriter
    except ImportError:
      logging.warning("tensorboardX is not installed: no TensorBoard files.")
      self._writer = None
      return
    self._writer = SummaryWriter(self.logdir, flush_secs=10)

  def write_record(self, record: dict) -> None:
    if self._writer is None:
      return
    step, scalars = record_scalars(record)
    for tag, value in scalars.items():
      self._writer.add_scalar(tag, value, step)

  def write_image(self, tag: str, image: np.ndarray, step: int = 0) -> None:
    """`image` [H, W, 3|4] uint8 (e.g. a montage read back from its PNG)."""
    if self._writer is not None:
      self._writer.add_image(tag, np.asarray(image)[..., :3], step,
                             dataformats="HWC")

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None


def open_writer(workdir: str, enabled: bool) -> Optional[Writer]:
  return Writer(workdir) if enabled else None
