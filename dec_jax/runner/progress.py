"""Progress of the long stages on a terminal: step / total, rate, ETA.

One status line on stderr, rewritten in place, fed by the metrics records the
run logs (pretraining epochs, DEC target updates). Silent when the stream is
not a terminal, so logs of batch jobs and CI hold only the metrics lines.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Optional


def format_duration(seconds: float) -> str:
  """'1:02:03' or '2:03' (h:mm:ss / m:ss)."""
  seconds = int(round(max(seconds, 0.0)))
  hours, rest = divmod(seconds, 3600)
  minutes, secs = divmod(rest, 60)
  if hours:
    return f"{hours}:{minutes:02d}:{secs:02d}"
  return f"{minutes}:{secs:02d}"


class StageProgress:
  """Shows `stage counter/total, rate, ETA` for records of the known stages.

  `stages` maps a record's stage to (its counter field, the counter's total),
  e.g. {"pretrain": ("epoch", 200), "dec": ("iteration", 20000)}. The rate
  is measured from the stage's first record, so it leaves out compilation
  and whatever ran before.
  """

  def __init__(self, stages: dict[str, tuple[str, int]],
               stream: Optional[IO[str]] = None):
    self.stages = stages
    self.stream = sys.stderr if stream is None else stream
    self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
    self._start: dict[str, tuple[float, int]] = {}
    self._shown = False

  def line(self, record: dict, now: float) -> Optional[str]:
    """The status line for `record`, or None if it is not a tracked step."""
    stage = record.get("stage")
    if stage not in self.stages:
      return None
    field, total = self.stages[stage]
    step = record.get(field)
    if not isinstance(step, (int, float)):
      return None
    start_time, start_step = self._start.setdefault(stage, (now, step))
    text = f"{stage} {field} {step}/{total}"
    elapsed = now - start_time
    if elapsed > 0 and step > start_step:
      rate = (step - start_step) / elapsed
      shown = f"{rate:.0f}" if rate >= 100 else f"{rate:.3g}"
      eta = format_duration((total - step) / rate)
      text += f"  {shown} {field}s/s  ETA {eta}"
      if stage == "dec":
        text += " (at most)"  # DEC stops early once labels settle (tol)
    return text

  def update(self, record: dict) -> None:
    """Rewrites the status line after a logged record (terminals only)."""
    if not self.enabled:
      return
    text = self.line(record, time.perf_counter())
    if text is not None:
      self.stream.write("\r\x1b[K" + text)
      self.stream.flush()
      self._shown = True

  def clear(self) -> None:
    """Erases the status line, so a log line can be printed in its place."""
    if self.enabled and self._shown:
      self.stream.write("\r\x1b[K")
      self.stream.flush()
      self._shown = False
