"""Everything a run leaves behind, in one folder.

  config.json     the resolved config
  metrics.jsonl   one JSON record per log event (pretraining epochs, target updates)
  assignments.npz final `labels` [N] and, for DEC, soft assignments `q` [N, K]
  results.json    final scores, stage wall times, environment; written last
  tensorboard/    TensorBoard event files, one folder per stage
  checkpoints/    Orbax checkpoints `autoencoder`, `dec` (and, while a stage
                  runs, `autoencoder_partial` / `dec_partial` to resume
                  from), each with a .json saying how it was made

Files are written atomically (temp file + rename), so a killed run never
leaves a truncated results.json or checkpoint behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import IO, Any, Callable, Optional, Sequence

import jax
import numpy as np
from absl import logging

from dec_jax import parallel
from dec_jax.errors import DecJaxError
from dec_jax.runner import tensorboard

RESULTS = "results.json"
METRICS = "metrics.jsonl"
CONFIG = "config.json"
ASSIGNMENTS = "assignments.npz"
CHECKPOINTS = "checkpoints"
PARTIAL_SUFFIX = "_partial"  # checkpoints of a stage still running
# The key of the data's fingerprint (data.Dataset.fingerprint) in every
# checkpoint description: a model is reused only for the data it was made
# from.
DATA_FINGERPRINT = "data_fingerprint"
# The log's stages that tell how the saved autoencoder was trained.
PRETRAINING_STAGES = ("pretrain_greedy", "pretrain")


def _jsonable(value: Any) -> Any:
  """Plain JSON types; NaN and inf become null (strict JSON has neither)."""
  if isinstance(value, float) and not np.isfinite(value):
    return None
  if isinstance(value, dict):
    return {str(k): _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, (np.generic, np.ndarray)) or hasattr(value, "tolist"):
    return _jsonable(np.asarray(value).tolist())  # NumPy and JAX arrays
  return value


def write_bytes_atomic(path: str,
                       write: Callable[[IO[bytes]], None]) -> None:
  """Writes through a temp file in the same folder, then renames it into place.

  A reader sees the old file or the complete new one, never a partial write;
  a failed write leaves no temp file behind.
  """
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                             prefix=".tmp-")
  try:
    with os.fdopen(fd, "wb") as f:
      write(f)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide results from other users
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def write_text_atomic(path: str, text: str) -> None:
  """`write_bytes_atomic` of a text, UTF-8."""
  write_bytes_atomic(path, lambda f: f.write(text.encode()))


def write_json_atomic(path: str, payload: dict) -> None:
  write_text_atomic(path, json.dumps(_jsonable(payload), indent=2,
                                     sort_keys=True, allow_nan=False) + "\n")


def read_json(path: str) -> dict:
  with open(path) as f:
    return json.load(f)


def read_metrics(workdir: str) -> list[dict]:
  """The records of `metrics.jsonl`, in order."""
  with open(os.path.join(workdir, METRICS)) as f:
    return [json.loads(line) for line in f if line.strip()]


def _format(record: dict) -> str:
  parts = []
  for key, value in record.items():
    if isinstance(value, float):
      parts.append(f"{key}={value:.4g}")
    else:
      parts.append(f"{key}={value}")
  return " ".join(parts)


class Workdir:
  """A run's folder. Nothing is written before `start`.

  In a multi-host run only process 0 writes files; every process takes part
  in saving checkpoints (Orbax coordinates them).
  """

  def __init__(self, path: str, *, overwrite: bool = False):
    if not str(path).strip():
      raise DecJaxError("the workdir is empty: name a folder for the run's "
                        "files (--workdir=runs/my_run).")
    self.path = os.path.abspath(path)
    self.primary = jax.process_index() == 0
    if os.path.exists(self.path) and not os.path.isdir(self.path):
      raise DecJaxError(f"workdir {path!r} exists and is not a folder.")
    if os.path.exists(self.file(RESULTS)) and not overwrite:
      raise DecJaxError(
          f"workdir {path!r} already holds a finished run ({RESULTS}); choose "
          "another workdir or pass --config.overwrite=True.")
    existing = self.path
    while not os.path.exists(existing):
      existing = os.path.dirname(existing)
    if not os.access(existing, os.W_OK | os.X_OK):
      raise DecJaxError(f"workdir {path!r} cannot be written ({existing} is "
                        "not writable).")

  def file(self, name: str) -> str:
    return os.path.join(self.path, name)

  def start(self, config: dict, *, resume: bool = True,
            partial: Optional[list[str]] = None) -> bool:
    """Creates the folder, writes the config, starts the metrics log.

    The outputs of an earlier run (results, assignments, DEC checkpoint) are
    removed first, so a run that fails leaves none of them behind. A
    pretrained autoencoder stays: it is reused when its settings match.
    Partial checkpoints (`*_partial`) of an interrupted run stay when
    `resume`, and its metrics log is continued; otherwise both are cleared,
    and the TensorBoard files with the log. Returns whether the log is
    continued.
    `partial`: the partial checkpoints the run resumes from when they are
    not this folder's own (a member of a stack whose checkpoints are the
    stack's).
    """
    own = self.partial_checkpoints()
    partial = own if partial is None else partial
    continued = resume and bool(partial) and os.path.exists(self.file(METRICS))
    if not self.primary:
      return continued
    os.makedirs(self.path, exist_ok=True)
    for stale in (RESULTS, ASSIGNMENTS):
      if os.path.exists(self.file(stale)):
        os.remove(self.file(stale))
    self.remove_checkpoint("dec")
    if not resume:
      for name in own:
        self.remove_checkpoint(name)
    write_json_atomic(self.file(CONFIG), config)
    if continued:
      _drop_partial_last_line(self.file(METRICS))
    else:
      shutil.rmtree(self.file(tensorboard.SUBDIR), ignore_errors=True)
      write_bytes_atomic(self.file(METRICS), lambda f: None)  # empty
    return continued

  def partial_checkpoints(self) -> list[str]:
    """Names of the described partial checkpoints an interrupted run left."""
    folder = os.path.join(self.path, CHECKPOINTS)
    if not os.path.isdir(folder):
      return []
    return sorted(f[:-len(".json")] for f in os.listdir(folder)
                  if f.endswith(PARTIAL_SUFFIX + ".json"))

  def log(self, record: dict, echo: bool = True) -> None:
    """Appends one record to metrics.jsonl (one write + flush) and, if
    `echo`, the console."""
    if not self.primary:
      return
    record = _jsonable(record)
    with open(self.file(METRICS), "a") as f:
      f.write(json.dumps(record, allow_nan=False) + "\n")
    if echo:
      logging.info("%s", _format(record))

  def records(self, stages: Sequence[str]) -> list[dict]:
    """The log's records of `stages`, in order ([] where this process does
    not write the log, or there is none yet)."""
    if not self.primary or not os.path.exists(self.file(METRICS)):
      return []
    return [r for r in read_metrics(self.path) if r.get("stage") in stages]

  def keep_records(self, keep: Callable[[dict], bool]) -> list[dict]:
    """Rewrites metrics.jsonl (atomically) with the records `keep` accepts;
    returns them ([] where this process does not write the log)."""
    if not self.primary:
      return []
    kept = [r for r in read_metrics(self.path) if keep(r)]
    write_text_atomic(self.file(METRICS), "".join(
        json.dumps(r, allow_nan=False) + "\n" for r in kept))
    return kept

  def save_assignments(self, labels: np.ndarray,
                       q: Optional[np.ndarray] = None) -> None:
    if not self.primary:
      return
    arrays = {"labels": labels} if q is None else {"labels": labels, "q": q}
    write_bytes_atomic(self.file(ASSIGNMENTS),
                  lambda f: np.savez_compressed(f, **arrays))

  def write_results(self, results: dict) -> None:
    if self.primary:
      write_json_atomic(self.file(RESULTS), results)

  # ---------------------------------------------------------- checkpoints

  def checkpoint_path(self, name: str) -> str:
    return os.path.join(self.path, CHECKPOINTS, name)

  def save_params(self, name: str, params: Any, meta: dict) -> None:
    """Orbax checkpoint `name`, then `name.json` describing how it was made.

    The description is written after the (atomic) checkpoint, so a run killed
    in between leaves a checkpoint without one, which is never reused.
    """
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    meta_path = self.checkpoint_path(name) + ".json"
    if self.primary and os.path.exists(meta_path):
      os.remove(meta_path)
    with ocp.StandardCheckpointer() as checkpointer:
      checkpointer.save(self.checkpoint_path(name), params, force=True)
    if self.primary:
      write_json_atomic(meta_path, meta)


  def remove_checkpoint(self, name: str) -> None:
    if not self.primary:
      return
    meta_path = self.checkpoint_path(name) + ".json"
    if os.path.exists(meta_path):
      os.remove(meta_path)  # first: a checkpoint without one is never used
    shutil.rmtree(self.checkpoint_path(name), ignore_errors=True)


def _drop_partial_last_line(path: str) -> None:
  """Cuts a record a killed run was writing (no final newline) off the log."""
  with open(path, "rb+") as f:
    text = f.read()
    if text and not text.endswith(b"\n"):
      f.truncate(text.rfind(b"\n") + 1)


def load_meta(workdir: str, name: str) -> Optional[dict]:
  """The description saved with checkpoint `name`, or None."""
  try:
    return read_json(os.path.join(os.path.abspath(workdir), CHECKPOINTS,
                                  name + ".json"))
  except (OSError, ValueError):
    return None


def load_params(workdir: str, name: str,
                target: Optional[Any] = None) -> Optional[Any]:
  """Restores checkpoint `name` of a workdir, or None if there is none.

  `target` (a pytree of arrays or jax.ShapeDtypeStructs) gives the structure
  to restore into, e.g. optimizer states; without it, nested dicts. However
  many devices saved it, the arrays land on this process's: replicated over
  the data mesh inside `jax.set_mesh`, else on the default device.
  """
  path = os.path.join(os.path.abspath(workdir), CHECKPOINTS, name)
  if not os.path.isdir(path):
    return None
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  try:
    with ocp.StandardCheckpointer() as checkpointer:
      if target is None:
        target = checkpointer.metadata(path).item_metadata.tree
      return checkpointer.restore(path, _on_these_devices(target))
  except Exception as e:  # pylint: disable=broad-except
    raise DecJaxError(f"checkpoint {path} cannot be restored ({type(e).__name__}:"
                      f" {str(e)[:200]}); delete it to retrain.") from None


def _on_these_devices(target: Any) -> Any:
  """target's shapes and dtypes with the sharding this process restores
  into (a checkpoint records the devices it was saved from: a target
  without sharding would ask for those)."""
  sharding = parallel.replicated(parallel.current_mesh())
  return jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding),
      target)
