"""`ensemble=consensus`: one clustering from a finished stack's members.

`ensemble=consensus_refine` (DEC, IDEC): the method reruns its clustering
stage from the members' consensus first (methods/dec.py), and the consensus
reported is that of the refined members.

Reads each member's assignments.npz (labels, and q where the method has
one), forms their label-free consensus (`core.consensus`), scores it and
writes WORKDIR/consensus.npz. The labels of the data are used for scoring
only, after the consensus is fixed.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import ml_collections
import numpy as np

from dec_jax import methods
from dec_jax.core import consensus as consensus_lib
from dec_jax.core import metrics
from dec_jax.runner import checks
from dec_jax.runner.workdir import (ASSIGNMENTS, DATA_FINGERPRINT, RESULTS,
                                    read_json,
                                    write_bytes_atomic, write_json_atomic)

CHOICES = ("none", "consensus", "consensus_refine")
FILE = "consensus.npz"


def combine_of(config: ml_collections.ConfigDict) -> str:
  """How the config's consensus combines its members (core.consensus)."""
  return config.get("consensus_combine", consensus_lib.DEFAULT_COMBINE)


def check(config: ml_collections.ConfigDict, size: int) -> None:
  """`ensemble` is a known choice; a consensus needs several members of one k."""
  choice = config.get("ensemble", "none")
  checks.require(choice in CHOICES,
                 f"Unknown ensemble {choice!r}; expected one of "
                 f"{CHOICES}.")
  combine = combine_of(config)
  checks.require(combine in consensus_lib.COMBINE,
                 f"Unknown consensus_combine {combine!r}; expected one of "
                 f"{consensus_lib.COMBINE}.")
  if choice == "none":
    return
  checks.require(size >= 2, f"ensemble={choice} needs a stack of 2 or more "
                 "members: pass --config.seeds=0,1,2,3,4 (or a grid).")
  checks.require(config.n_clusters != "auto", f"ensemble={choice} needs one "
                 "number of clusters for every member; n_clusters=auto may "
                 "choose a different k per member: pass an integer.")
  if choice == "consensus_refine":
    able = sorted(m.name for m in methods.METHODS.values()
                  if m.refines_from_consensus)
    checks.require(methods.get(config.method).refines_from_consensus,
                   f"ensemble=consensus_refine reruns a clustering stage from "
                   f"the consensus, which method={config.method} does not "
                   f"have; use it with {able}, or ensemble=consensus.")


def check_groups(config: ml_collections.ConfigDict, groups: list,
                 finished_before: int) -> None:
  """consensus_refine needs all members in one stack (one program), none of
  them finished by an earlier run while others still have to run."""
  if config.get("ensemble", "none") != "consensus_refine" or not groups:
    return
  checks.require(len(groups) == 1 and not finished_before,
                 f"ensemble=consensus_refine needs all members in one stack, "
                 f"but {finished_before} finished in an earlier run and the "
                 f"rest run as {len(groups)} group(s) (seeds_mode="
                 f"{config.seeds_mode}, or too little memory for all at once):"
                 " use seeds_mode=vmap and a new workdir (or overwrite=True),"
                 " fewer members, or ensemble=consensus.")


def _load(folders: Sequence[str]) -> tuple[np.ndarray, Optional[list]]:
  """Members' labels [S, N] and their q (None unless every member has one)."""
  labels, soft = [], []
  for folder in folders:
    with np.load(os.path.join(folder, ASSIGNMENTS)) as arrays:
      labels.append(arrays["labels"])
      soft.append(arrays["q"] if "q" in arrays else None)
  return np.stack(labels), (None if any(q is None for q in soft) else soft)


def describe(combine: str, soft: bool) -> str:
  """How results.json names a consensus."""
  what = ("soft assignments" if soft else "one-hot labels")
  if combine == "kmeans":
    return f"k-means on the members' concatenated {what}"
  return ("vote of members aligned to the medoid member, "
          + ("summed soft assignments" if soft else "hard labels"))


def build(folders: Sequence[str], names: Sequence[str], k: int,
          y: Optional[np.ndarray], out_dir: Optional[str],
          combine: str = consensus_lib.DEFAULT_COMBINE) -> dict:
  """The consensus of the members in `folders`: results.json's `consensus`
  (its scores, the reference member, the members' mean pairwise ARI);
  its labels go to out_dir/consensus.npz (None: not written)."""
  labels, soft = _load(folders)
  result = consensus_lib.consensus(labels, k, soft, combine=combine)
  pairs = result.agreement[np.triu_indices(len(labels), 1)]
  summary = {
      "method": describe(combine, soft is not None), "combine": combine,
      "members": list(names), "reference": names[result.reference],
      "mean_pairwise_ari": float(pairs.mean()),
      "changed_from_reference": float(np.mean(
          result.labels != labels[result.reference])),
      "cluster_sizes": np.bincount(result.labels, minlength=k).tolist(),
      **metrics.evaluate(y, result.labels)}
  if out_dir is not None:
    write_bytes_atomic(os.path.join(out_dir, FILE), lambda f: np.savez_compressed(
        f, labels=result.labels, agreement=result.agreement))
  return summary


def add_to_workdir(workdir: str,
                   combine: str = consensus_lib.DEFAULT_COMBINE,
                   write: bool = True) -> dict:
  """Adds `consensus` to a finished stack's results.json (one run with
  ensemble=none, or made before ensembles existed, or with another
  `combine`: the consensus is replaced); returns it. With write=False
  only returns it (nothing in the workdir changes)."""
  path = os.path.join(workdir, RESULTS)
  checks.require(os.path.exists(path), f"{path} does not exist: the stack "
                 "has not finished (rerun its command to complete it).")
  summary = read_json(path)
  checks.require(summary.get("kind") == "stack", f"{path} is one run, not a "
                 "stack of members: a consensus needs --config.seeds (or a "
                 "grid).")
  rows = summary["members"]
  ks = {row["n_clusters"] for row in rows}
  checks.require(len(ks) == 1, f"the members chose different k {sorted(ks)}:"
                 " a consensus needs one number of clusters.")
  # Only the fields naming the data (a grid's dotted keys are no ConfigDict's).
  config = ml_collections.ConfigDict({k: summary["config"][k] for k in (
      "dataset", "split", "data_dir", "scale", "label_column")})
  dataset = checks.load_data(config, keep_uint8=True)  # its labels score
  folders = [os.path.join(workdir, row["workdir"]) for row in rows]
  ran_on = {read_json(os.path.join(f, RESULTS)).get(DATA_FINGERPRINT)
            for f in folders} - {None}
  checks.require(ran_on <= {dataset.fingerprint}, f"the data changed since "
                 f"the members of {workdir} ran (fingerprint "
                 f"{dataset.fingerprint}, theirs {sorted(ran_on)}): the "
                 "consensus would be scored against other labels.")
  summary["consensus"] = build(folders, [row["member"] for row in rows],
                               ks.pop(), dataset.y,
                               workdir if write else None, combine)
  if write:
    write_json_atomic(path, summary)
  return summary["consensus"]
