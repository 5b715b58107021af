"""Cluster-collapse checks, run at every target update and on the final result.

DEC can empty or starve clusters (DESIGN.md: "cluster collapse unnoticed"), or
drift towards uniform soft assignments. Both are flagged, never silently
passed on as a result.
"""

from __future__ import annotations

from typing import Optional, Sequence

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
