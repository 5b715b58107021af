r"""Prints a markdown table of the results.json files under some folders.

  python -m experiments.summarize workdirs/

One row per (dataset, method, settings): runs that differ only in their seed
(or data folder, logging, where the autoencoder came from) are grouped, with
the mean ± sd of ACC / NMI / ARI over them, the pretraining recipe, the
clustering stage's optimizer (dec, idec; with its maxiter where not the
default), the number of seeds, and the median wall time per run. Rows that
would read alike name the settings that set them apart beside the method,
e.g. 'dec (kmeans.n_init=2)'.
"""

import collections
import json
import statistics
import sys

from dec_jax.apps.sweep import format_mean_sd
from dec_jax.nn.models import DEFAULT_MLP_INIT
from dec_jax.runner.members import member_results
from dec_jax.runner.workdir import RESULTS
from experiments.configs import default

_DEFAULT_MAXITER = default.get_config().dec.maxiter


def find_results(roots: list[str]) -> list[dict]:
  return [result for _, result in member_results(roots)]


# The config sections that decide what each method computes; runs agreeing
# on them (any seed, data folder, logging or checkpoint cadence) are grouped.
_COMMON = ("dataset", "split", "scale", "n_clusters", "auto_k", "kmeans")
_AUTOENCODER = _COMMON + ("model", "pretrain", "augment")
_RELEVANT = {"kmeans": _COMMON, "ae_kmeans": _AUTOENCODER,
             "dec": _AUTOENCODER + ("dec",), "idec": _AUTOENCODER + ("dec",
                                                                    "idec"),
             "n2d": _AUTOENCODER + ("n2d",)}
_IGNORED = ("log_every", "checkpoint_every")


def _settings_key(result: dict) -> str:
  """The result's relevant settings, missing fields read as today's defaults
  (fields added after a run was made did not exist, i.e. were off)."""
  config = dict(result.get("config", {}))
  reused = (result.get("pretrained_from") or {}).get("settings") or {}
  if "pretrain" in reused:  # the autoencoder's own recipe, not the config's
    config["pretrain"] = reused["pretrain"]
  defaults = default.get_config().to_dict()
  settings = {}
  for name in _RELEVANT.get(result["method"], tuple(defaults)):
    value = config.get(name, defaults.get(name))
    if isinstance(value, dict):
      value = {k: v for k, v in {**defaults.get(name, {}), **value}.items()
               if k not in _IGNORED}
    settings[name] = value
  return json.dumps(settings, sort_keys=True, default=str)


def data_label(result: dict) -> str:
  """The dataset, with its split unless it is the whole set, e.g.
  'mnist (test)': the 10k test set's numbers are not the 70k set's."""
  split = result.get("config", {}).get("split", "all")
  return result["dataset"] + ("" if split == "all" else f" ({split})")


def pretraining(result: dict, epochs: bool = True) -> str:
  """The recipe of the autoencoder used, e.g. 'adam 0.001 cosine, 50 ep',
  'conv, ...' for the convolutional AE, '..., augmented' with DEC-DA's,
  '..., glorot_uniform init' for an MLP not on the default init; without
  the epochs when `epochs` is False."""
  if result["method"] == "kmeans":
    return "–"
  reused = (result.get("pretrained_from") or {}).get("settings") or {}
  config = result.get("config", {})
  cfg = reused.get("pretrain") or config.get("pretrain")
  if not cfg:
    return "?"
  kind = reused.get("model_kind", config.get("model", {}).get("kind"))
  augmented = reused.get("augment", config.get("augment", False))
  # The fingerprint names mlp_init only when it is not the default.
  init = (reused.get("mlp_init", DEFAULT_MLP_INIT) if reused
          else config.get("model", {}).get("mlp_init", DEFAULT_MLP_INIT))
  return ("conv, " if kind == "conv" else "") + (
      f"{cfg['optimizer']} {cfg['learning_rate']:g} {cfg['schedule']}") + (
      f", {cfg['epochs']} ep" if epochs else "") + (
      ", augmented" if augmented else "") + (
      f", {init} init" if kind != "conv" and init != DEFAULT_MLP_INIT
      else "")


def clustering(result: dict) -> str:
  """The DEC stage of dec / idec runs: its optimizer, e.g. 'sgd 0.01', and
  its `maxiter` and `patience` where set, e.g. 'sgd 0.01, maxiter 2800'."""
  cfg = result.get("config", {}).get("dec")
  if result["method"] not in ("dec", "idec") or not cfg:
    return "–"
  maxiter, patience = cfg.get("maxiter", _DEFAULT_MAXITER), cfg.get(
      "patience", 0)
  return f"{cfg['optimizer']} {cfg['learning_rate']:g}" + (
      f", maxiter {maxiter}" if maxiter != _DEFAULT_MAXITER else "") + (
          f", patience {patience}" if patience else "")


def _flat(settings_key: str) -> dict:
  """A settings key as {'section.field' or 'field': value}."""
  flat = {}
  for name, value in json.loads(settings_key).items():
    if isinstance(value, dict):
      flat.update({f"{name}.{k}": v for k, v in value.items()})
    else:
      flat[name] = value
  return flat


def _distinguished(groups: dict) -> dict:
  """Each group's method cell: the method, and where groups would read
  alike (same data, method, pretraining, clustering stage) the settings
  that set them apart, e.g. 'dec (kmeans.n_init=2)'."""
  alike = collections.defaultdict(list)
  for key, runs in groups.items():
    alike[(key[0], key[1], pretraining(runs[0]), clustering(runs[0]))].append(
        key)
  cells = {}
  for (_, method, _, _), keys in alike.items():
    flats = {key: _flat(key[2]) for key in keys}
    differ = sorted({f for flat in flats.values() for f in flat
                     if len({json.dumps(other.get(f), default=str)
                             for other in flats.values()}) > 1})
    for key, flat in flats.items():
      cells[key] = method + (" (" + ", ".join(
          f"{f}={flat.get(f)}" for f in differ) + ")" if differ else "")
  return cells


def summary_table(results: list[dict]) -> str:
  groups = collections.defaultdict(list)
  for r in results:
    groups[(data_label(r), r["method"], _settings_key(r))].append(r)
  method_cells = _distinguished(groups)
  lines = ["| data | method | pretraining | clustering stage | seeds | ACC | "
           "NMI | ARI | wall time / run |",
           "|---|---|---|---|---|---|---|---|---|"]
  for key, runs in sorted(groups.items()):
    scores = [format_mean_sd(values) if values else "–"
              for values in ([r[m] for r in runs if r.get(m) is not None]
                             for m in ("acc", "nmi", "ari"))]
    wall = statistics.median(r["times_s"]["total"] for r in runs)
    lines.append(f"| {key[0]} | {method_cells[key]} | {pretraining(runs[0])} "
                 f"| {clustering(runs[0])} | {len(runs)} | "
                 + " | ".join(scores) + f" | {wall / 60:.1f} min |")
  return "\n".join(lines)


def main(argv: list[str]) -> None:
  if len(argv) < 2:
    sys.exit("usage: python -m experiments.summarize DIR [DIR ...]")
  results = find_results(argv[1:])
  if not results:
    sys.exit(f"error: no {RESULTS} under {argv[1:]}")
  print(summary_table(results))


if __name__ == "__main__":
  main(sys.argv)
