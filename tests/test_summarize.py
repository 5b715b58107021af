"""The results table over several runs: mean ± sd per (data, method)."""

import json

import pytest

from dec_jax.apps import plots
from dec_jax.runner.workdir import write_json_atomic
from experiments import stop_replay
from experiments import summarize


def test_summary_table_groups_seeds_and_reports_mean_and_sd(tmp_path):
  pretrain = {"optimizer": "adam", "learning_rate": 0.001,
              "schedule": "cosine", "epochs": 50}
  sgd = {"optimizer": "sgd", "learning_rate": 0.01}
  for seed, acc in enumerate((0.8, 0.9)):
    (tmp_path / f"s{seed}").mkdir()
    write_json_atomic(str(tmp_path / f"s{seed}" / "results.json"), {
        "dataset": "mnist", "method": "dec", "acc": acc, "nmi": 0.5,
        "ari": 0.4, "times_s": {"total": 60.0 * (seed + 1)},
        "config": {"seed": seed, "pretrain": pretrain, "dec": sgd}})
  (tmp_path / "other").mkdir()  # same method, other settings: its own row
  write_json_atomic(str(tmp_path / "other" / "results.json"), {
      "dataset": "mnist", "method": "dec", "acc": 0.7, "nmi": 0.5, "ari": 0.4,
      "times_s": {"total": 60.0},
      "config": {"seed": 0, "pretrain": {**pretrain, "epochs": 10},
                 "dec": sgd}})
  (tmp_path / "conv").mkdir()  # the conv AE, augmented
  write_json_atomic(str(tmp_path / "conv" / "results.json"), {
      "dataset": "mnist", "method": "dec", "acc": 0.9, "nmi": 0.5, "ari": 0.4,
      "times_s": {"total": 60.0},
      "config": {"seed": 0, "pretrain": pretrain, "dec": sgd,
                 "model": {"kind": "conv"}, "augment": True}})
  (tmp_path / "test").mkdir()  # the 10k test split: its own, named row
  write_json_atomic(str(tmp_path / "test" / "results.json"), {
      "dataset": "mnist", "method": "dec", "acc": 0.6, "nmi": 0.5, "ari": 0.4,
      "times_s": {"total": 60.0},
      "config": {"seed": 0, "pretrain": pretrain, "dec": sgd,
                 "split": "test"}})
  (tmp_path / "glorot").mkdir()  # Keras's init and a shorter DEC stage
  write_json_atomic(str(tmp_path / "glorot" / "results.json"), {
      "dataset": "mnist", "method": "dec", "acc": 0.8, "nmi": 0.5, "ari": 0.4,
      "times_s": {"total": 60.0},
      "config": {"seed": 0, "pretrain": pretrain,
                 "dec": {**sgd, "maxiter": 2800, "patience": 20},
                 "model": {"mlp_init": "glorot_uniform"}}})
  (tmp_path / "km").mkdir()
  write_json_atomic(str(tmp_path / "km" / "results.json"), {
      "dataset": "mnist", "method": "kmeans", "acc": 0.5, "nmi": 0.5,
      "ari": 0.3, "times_s": {"total": 30.0}})
  for n_init in (3, 7):  # alike but for a setting the table has no column for
    (tmp_path / f"n{n_init}").mkdir()
    write_json_atomic(str(tmp_path / f"n{n_init}" / "results.json"), {
        "dataset": "usps", "method": "dec", "acc": 0.6, "nmi": 0.5,
        "ari": 0.4, "times_s": {"total": 60.0}, "config": {
            "seed": 0, "pretrain": pretrain, "dec": sgd,
            "kmeans": {"n_init": n_init}}})
  table = summarize.summary_table(summarize.find_results([str(tmp_path)]))
  lines = table.splitlines()
  for n_init in (3, 7):
    assert (f"| usps | dec (kmeans.n_init={n_init}) | adam 0.001 cosine, "
            "50 ep | sgd 0.01 | 1 | 0.600 | 0.500 | 0.400 | 1.0 min |") in lines
  assert ("| mnist | dec | adam 0.001 cosine, 50 ep | sgd 0.01 | 2 | "
          "0.850 ± 0.071 | 0.500 ± 0.000 | 0.400 ± 0.000 | 1.5 min |") in lines
  assert ("| mnist | dec | adam 0.001 cosine, 10 ep | sgd 0.01 | 1 | 0.700 | "
          "0.500 | 0.400 | 1.0 min |") in lines
  assert ("| mnist | kmeans | – | – | 1 | 0.500 | 0.500 | 0.300 | 0.5 min |"
          in lines)
  assert ("| mnist | dec | conv, adam 0.001 cosine, 50 ep, augmented | "
          "sgd 0.01 | 1 | 0.900 | 0.500 | 0.400 | 1.0 min |") in lines
  assert ("| mnist (test) | dec | adam 0.001 cosine, 50 ep | sgd 0.01 | 1 | "
          "0.600 | 0.500 | 0.400 | 1.0 min |") in lines
  assert ("| mnist | dec | adam 0.001 cosine, 50 ep, glorot_uniform init | "
          "sgd 0.01, maxiter 2800, patience 20 | 1 | 0.800 | 0.500 | 0.400 | "
          "1.0 min |") in lines
  assert len(lines) == 10


def test_time_to_accuracy_groups_by_recipe_and_pretraining_epochs(tmp_path):
  from experiments import time_to_accuracy  # pylint: disable=g-import-not-at-top
  pretrain = {"optimizer": "adam", "learning_rate": 0.001,
              "schedule": "cosine", "epochs": 10}
  runs = {"a": (10, 0, 0.80, 0.85, 100.0), "b": (10, 1, 0.70, 0.95, 300.0),
          "c": (50, 0, 0.90, 0.92, 500.0)}
  for name, (epochs, seed, init, acc, pretrain_s) in runs.items():
    (tmp_path / name).mkdir()
    write_json_atomic(str(tmp_path / name / "results.json"), {
        "dataset": "mnist", "method": "dec", "seed": seed, "acc": acc,
        "nmi": 0.8, "ari": 0.7, "init_metrics": {"acc": init},
        "times_s": {"pretrain": pretrain_s, "total": pretrain_s + 60.0},
        "config": {"seed": seed, "pretrain": {**pretrain, "epochs": epochs}}})
  (tmp_path / "reused").mkdir()  # IDEC on the 50-epoch autoencoder
  write_json_atomic(str(tmp_path / "reused" / "results.json"), {
      "dataset": "mnist", "method": "idec", "seed": 0, "acc": 0.88,
      "nmi": 0.8, "ari": 0.7, "init_metrics": {"acc": 0.9},
      "times_s": {"total": 60.0}, "config": {"seed": 0, "pretrain": pretrain},
      "pretrained_from": {"workdir": str(tmp_path / "c"),
                          "settings": {"pretrain": {**pretrain,
                                                    "epochs": 50}}}})
  sgd = {**pretrain, "optimizer": "sgd", "learning_rate": 1.0,
         "schedule": "constant"}
  for name, config in (("sgd", {"pretrain": sgd}),  # another recipe
                       ("test", {"pretrain": pretrain, "split": "test"}),
                       ("short", {"pretrain": pretrain,  # another DEC stage
                                  "dec": {"optimizer": "sgd",
                                          "learning_rate": 0.01,
                                          "maxiter": 2800}})):
    (tmp_path / name).mkdir()
    write_json_atomic(str(tmp_path / name / "results.json"), {
        "dataset": "mnist", "method": "dec", "seed": 0, "acc": 0.5,
        "nmi": 0.5, "ari": 0.5, "init_metrics": {"acc": 0.5},
        "times_s": {"pretrain": 60.0, "total": 120.0},
        "config": {"seed": 0, **config}})
  results = summarize.find_results([str(tmp_path)])
  rows = time_to_accuracy.curve_rows(results)
  assert [(r["dataset"], r["recipe"], r["clustering"], r["epochs"],
           r["seeds"]) for r in rows] == [
              ("mnist", "adam 0.001 cosine", "sgd 0.01, maxiter 2800", 10,
               [0]),
              ("mnist", "adam 0.001 cosine", "–", 10, [0, 1]),
              ("mnist", "adam 0.001 cosine", "–", 50, [0]),
              ("mnist", "sgd 1 constant", "–", 10, [0]),
              ("mnist (test)", "adam 0.001 cosine", "–", 10, [0])]
  assert rows[1]["init_acc"] == [0.80, 0.70] and rows[1]["total_s"] == 260.0
  lines = time_to_accuracy.table(rows).splitlines()
  assert ("| mnist | dec | adam 0.001 cosine | – | 10 | 2 | 0.750 ± 0.071 | "
          "0.900 ± 0.071 | 0.800 ± 0.000 | 3.3 min | 4.3 min |") in lines
  both = time_to_accuracy.curve_rows(results, ("dec", "idec"))
  idec, = [r for r in both if r["method"] == "idec"]
  assert idec["epochs"] == 50  # the reused autoencoder's, and its cost:
  assert idec["pretrain_s"] == 500.0 and idec["total_s"] == 560.0
  (tmp_path / "n2d").mkdir()  # N2D has no AE + k-means start: a dash
  write_json_atomic(str(tmp_path / "n2d" / "results.json"), {
      "dataset": "mnist", "method": "n2d", "seed": 0, "acc": 0.95,
      "nmi": 0.9, "ari": 0.9, "times_s": {"pretrain": 60.0, "total": 90.0},
      "config": {"seed": 0, "pretrain": pretrain}})
  n2d, = time_to_accuracy.curve_rows(
      summarize.find_results([str(tmp_path / "n2d")]), ("n2d",))
  assert ("| mnist | n2d | adam 0.001 cosine | – | 10 | 1 | – | 0.950 | "
          "0.900 | 1.0 min | 1.5 min |") in time_to_accuracy.table([n2d])
  figure = plots.accuracy_vs_pretraining(rows + [n2d])
  assert len(figure.axes) == 2 and figure.axes[0].lines
  (tmp_path / "unlabelled").mkdir()  # a user's own data: no scores to plot
  write_json_atomic(str(tmp_path / "unlabelled" / "results.json"), {
      "dataset": "mine.npz", "method": "dec", "seed": 0, "init_metrics": {},
      "times_s": {"pretrain": 60.0, "total": 90.0},
      "config": {"seed": 0, "pretrain": pretrain}})
  assert time_to_accuracy.curve_rows(
      summarize.find_results([str(tmp_path)])) == rows


def test_pretraining_names_a_reused_autoencoders_init():
  pretrain = {"optimizer": "adam", "learning_rate": 0.001,
              "schedule": "constant", "epochs": 1000}
  own = {"method": "n2d", "config": {"pretrain": pretrain}}
  reused = {**own, "pretrained_from": {"settings": {
      "pretrain": pretrain, "mlp_init": "glorot_uniform"}}}
  # The config asks for Keras's init, but the reused autoencoder's
  # fingerprint (no mlp_init: the default) decides.
  keras_config = {"method": "n2d", "config": {
      "pretrain": pretrain, "model": {"mlp_init": "glorot_uniform"}},
                  "pretrained_from": {"settings": {"pretrain": pretrain}}}
  assert summarize.pretraining(own) == "adam 0.001 constant, 1000 ep"
  assert summarize.pretraining(reused) == (
      "adam 0.001 constant, 1000 ep, glorot_uniform init")
  assert summarize.pretraining(keras_config) == "adam 0.001 constant, 1000 ep"


def test_a_reused_autoencoder_is_charged_its_recorded_pretraining(tmp_path):
  """The autoencoder's description (pretrain_s) gives the cost when the
  source run left no results.json (e.g. stopped in clustering)."""
  from experiments import time_to_accuracy  # pylint: disable=g-import-not-at-top
  recorded = {"method": "n2d", "times_s": {"total": 60.0},
              "pretrained_from": {"workdir": str(tmp_path / "gone"),
                                  "pretrain_s": 900.0}}
  unknown = {"method": "n2d", "times_s": {"total": 60.0},
             "pretrained_from": {"workdir": str(tmp_path / "gone")}}
  own = {"method": "dec", "times_s": {"pretrain": 300.0, "total": 400.0},
         "pretrained_from": {"pretrain_s": 900.0}}  # resumed: counted once
  assert time_to_accuracy.charged_seconds(recorded) == (900.0, 960.0)
  assert time_to_accuracy.charged_seconds(unknown) == (0.0, 60.0)
  assert time_to_accuracy.charged_seconds(own) == (300.0, 400.0)


def _logged_run(folder, changes, accs, patience=0, kind=None, resumed_at=None,
                ensemble=""):
  """An idec run's results.json and metrics.jsonl (its target updates
  logged as stage `dec`, as dec's are): target updates every 10
  iterations with these label changes and ACCs (re-logged from iteration
  `resumed_at` with the ACC + 1, as a resumed run logs again)."""
  folder.mkdir(parents=True)
  config = {"dec": {"tol": 0.001, "maxiter": 10_000, "patience": patience},
            "ensemble": ensemble}
  write_json_atomic(str(folder / "results.json"), {
      "method": "idec", "acc": accs[-1], "config": config,
      **({"kind": kind} if kind else {})})
  records = [{"stage": "dec", "iteration": 10 * i, "label_change": c,
              "acc": a} for i, (c, a) in enumerate(zip(changes, accs))]
  if resumed_at is not None:
    records += [{**r, "acc": r["acc"] + 1} for r in records
                if r["iteration"] >= resumed_at]
  with open(folder / "metrics.jsonl", "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in records)


def test_stop_replay_reports_where_each_patience_would_have_stopped(
    tmp_path):
  # The lowest change (0.01) is at iteration 20; patience 2 stops at 40,
  # patience 3 at 50; patience 9 never: the final iterate (70).
  changes = [0.0, 0.05, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06]
  accs = [0.5, 0.6, 0.7, 0.71, 0.72, 0.73, 0.74, 0.75]
  _logged_run(tmp_path / "stack" / "seed0", changes, accs)
  _logged_run(tmp_path / "stack" / "seed1", changes,
              [a - 0.1 for a in accs], resumed_at=40)
  write_json_atomic(str(tmp_path / "stack" / "results.json"),
                    {"kind": "stack", "method": "dec", "acc": 0.0})
  _logged_run(tmp_path / "own", changes[:6], accs[:6], patience=3)
  _logged_run(tmp_path / "refined", changes, accs,
              ensemble="consensus_refine")

  rows = stop_replay.rows([str(tmp_path)], [2, 3, 9])
  assert [r["run"] for r in rows] == [str(tmp_path / "own"),
                                      str(tmp_path / "refined"),
                                      str(tmp_path / "stack")]
  own, refined, stack = rows
  assert [s["iteration"] for s in stack["stops"][2]] == [40, 40]
  # seed1's records from 40 on were logged again after its resume: the
  # later ones count.
  assert [s["acc"] for s in stack["stops"][3]] == pytest.approx([0.73, 1.63])
  assert [s["iteration"] for s in stack["stops"][9]] == [70, 70]
  # A run that stopped by patience 3 says nothing about a longer one.
  assert own["stops"][9] is None and own["stops"][2][0]["iteration"] == 40
  # Its result is a second DEC stage, not the logged one.
  assert refined["stops"][2] is None
  assert "n/a" in stop_replay.table(rows, [2, 3, 9])


def test_stop_replay_refuses_a_patience_that_is_not_an_integer(tmp_path):
  from tests.test_end_to_end import cli  # pylint: disable=g-import-not-at-top
  proc = cli(f"--runs={tmp_path}", "--patience=5,x",
             module="experiments.stop_replay")
  assert proc.returncode != 0 and "--patience takes integers" in proc.stderr
  assert "Traceback" not in proc.stderr
