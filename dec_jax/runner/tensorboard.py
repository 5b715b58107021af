"""TensorBoard event files next to metrics.jsonl: scalars and images.

Written with tensorboardX (numpy + protobuf only; CLU's metric writers need
TensorFlow). `tensorboard --logdir=WORKDIR/tensorboard` shows them.
Every numeric field of a metrics record becomes the scalar `stage/field`,
at the record's step (epoch for pretraining, iteration for DEC, k for the
choice of k), in the TensorBoard run of its stage.
"""

from __future__ import annotations

import itertools
import numbers
import os
from typing import Optional

import numpy as np
from absl import logging

SUBDIR = "tensorboard"
_STEP_FIELDS = ("epoch", "iteration", "k")
_FILE_NUMBERS = itertools.count()


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
  """Event files of a workdir, one TensorBoard run per stage (`tensorboard/
  pretrain/`, `tensorboard/dec/`, ...); does nothing if tensorboardX is
  missing. A run per stage lets a resumed stage hide its own events past
  the checkpoint (`rewind`) without touching the other stages'."""

  def __init__(self, workdir: str):
    self.logdir = os.path.join(workdir, SUBDIR)
    self._writers: dict = {}
    self._purge_from: dict[str, int] = {}
    try:
      # pylint: disable-next=g-import-not-at-top
      from tensorboardX import SummaryWriter
      self._summary_writer = SummaryWriter
    except ImportError:
      logging.warning("tensorboardX is not installed: no TensorBoard files.")
      self._summary_writer = None

  def _writer(self, stage: str):
    if self._summary_writer is None:
      return None
    if stage not in self._writers:
      self._writers[stage] = self._summary_writer(
          os.path.join(self.logdir, stage), flush_secs=10,
          purge_step=self._purge_from.pop(stage, None),
          # tensorboardX names files by the second; two in one second
          # would be one file, truncated by the second writer
          filename_suffix=f".{os.getpid()}.{next(_FILE_NUMBERS)}")
    return self._writers[stage]

  def rewind(self, stage: str, first_step: int) -> None:
    """Marks `stage`'s events from `first_step` on as stale: TensorBoard
    drops them on reading (a SessionLog START at that step), so the steps a
    resumed stage writes again appear once."""
    if stage in self._writers:
      self._writers.pop(stage).close()
    self._purge_from[stage] = int(first_step)
    self._writer(stage)  # the marker is written now, even if no step follows

  def write_record(self, record: dict) -> None:
    writer = self._writer(record.get("stage", "run"))
    if writer is None:
      return
    step, scalars = record_scalars(record)
    for tag, value in scalars.items():
      writer.add_scalar(tag, value, step)

  def write_image(self, tag: str, image: np.ndarray, step: int = 0) -> None:
    """`image` [H, W, 3|4] uint8 (e.g. a montage read back from its PNG),
    in the run `report`."""
    writer = self._writer("report")
    if writer is not None:
      writer.add_image(tag, np.asarray(image)[..., :3], step,
                       dataformats="HWC")

  def close(self) -> None:
    for writer in self._writers.values():
      writer.close()
    self._writers = {}


def open_writer(workdir: str, enabled: bool) -> Optional[Writer]:
  return Writer(workdir) if enabled else None
