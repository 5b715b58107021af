"""Checks that flag a run gone wrong, never silently passed on as a result.

DEC can empty or starve clusters (DESIGN.md: "cluster collapse unnoticed"), or
drift towards uniform soft assignments: checked at every target update and on
the final result. An autoencoder can also fail to learn at all (SGD at lr 1
stuck at the mean image, seen on Fashion-MNIST): checked once its pretraining
is done.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

# q counts as near uniform when its mean confidence is below this many times
# the uniform value 1/k.
NEAR_UNIFORM_FACTOR = 1.5


def small_clusters(sizes: Sequence[int], collapse_fraction: float) -> list[int]:
  """Ids of clusters holding fewer than `collapse_fraction` * N / k points."""
  threshold = collapse_fraction * sum(sizes) / len(sizes)
  return [j for j, size in enumerate(sizes) if size < threshold]


def collapse_flags(sizes: Sequence[int], collapse_fraction: float,
                   mean_max_q: Optional[float] = None) -> dict:
  """{'small_clusters': [...], 'near_uniform_q': bool?} for one assignment."""
  flags = {"small_clusters": small_clusters(sizes, collapse_fraction)}
  if mean_max_q is not None:
    flags["near_uniform_q"] = bool(
        mean_max_q < NEAR_UNIFORM_FACTOR / len(sizes))
  return flags


def is_collapsed(flags: dict) -> bool:
  return bool(flags["small_clusters"]) or flags.get("near_uniform_q", False)


# An autoencoder counts as untrained when its reconstruction loss is above
# this fraction of the mean image's (trained ones measured here: 0.05-0.25).
UNTRAINED_FRACTION = 0.9


def mean_image_loss(x, input_divisor: float = 1.0,
                    chunk_size: int = 8192) -> float:
  """The reconstruction loss (mean squared error over all elements) of
  outputting the data's mean image for every input: the mean per-feature
  variance of x / input_divisor, x [N, ...] (host or device, any dtype),
  accumulated in float64 over row chunks."""
  total = total_sq = 0.0
  n = x.shape[0]
  for start in range(0, n, chunk_size):
    chunk = np.asarray(x[start:start + chunk_size], np.float64) / input_divisor
    total = total + chunk.sum(axis=0)
    total_sq = total_sq + np.square(chunk).sum(axis=0)
  mean = total / n
  return float(np.mean(np.maximum(total_sq / n - np.square(mean), 0.0)))


def autoencoder_untrained(reconstruction_loss: float,
                          mean_image_loss_: float) -> bool:
  """True when an autoencoder reconstructs no better than the mean image
  would (above UNTRAINED_FRACTION of its loss): its embedding was not
  learnt, so whatever is clustered on it is not the method's result."""
  return reconstruction_loss > UNTRAINED_FRACTION * mean_image_loss_
