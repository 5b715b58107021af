"""The sweep: grid syntax, overrides, and resuming an interrupted sweep
without redoing finished runs."""

import csv
import json
import os

import pytest

from dec_jax.runner import run as run_lib
from dec_jax.errors import DecJaxError
from dec_jax.runner.workdir import read_json
from dec_jax.apps import sweep
from tests.test_end_to_end import cli, tiny_config


def test_parse_grid():
  assert sweep.parse_grid("method=dec,idec;dec.update_interval=70,140") == [
      ("method", ["dec", "idec"]), ("dec.update_interval", [70, 140])]
  assert sweep.parse_grid("model.dims=(500,500,2000,10),(32,4); augment=True") \
      == [("model.dims", [(500, 500, 2000, 10), (32, 4)]),
          ("augment", [True])]
  assert sweep.parse_grid("") == []
  # Issue #4's shorthand, on the grid and on the command line.
  assert sweep.parse_grid("model=mlp,conv") == [("model.kind", ["mlp",
                                                                "conv"])]
  assert run_lib.expand_config_shorthands(
      ["main", "--config=c.py", "--config.model=conv", "--config.seed=1",
       "--config.model.dims=(8,2)"]) == [
           "main", "--config=c.py", "--config.model.kind=conv",
           "--config.seed=1", "--config.model.dims=(8,2)"]
  assert run_lib.expand_config_shorthands(  # the value as the next argument
      ["main", "--config.model", "conv"]) == ["main", "--config.model.kind",
                                              "conv"]
  assert sweep.cells([]) == [("base", {})]
  names = [n for n, _ in sweep.cells(sweep.parse_grid("a=1,2;b=x"))]
  assert names == ["a=1__b=x", "a=2__b=x"]
  for bad, match in (("method", "key=value"), ("method=", "key=value"),
                     ("seed=1,2", "--seeds"), ("a=1;a=2", "twice")):
    with pytest.raises(DecJaxError, match=match):
      sweep.parse_grid(bad)


def test_apply_overrides():
  config = tiny_config("digits")
  out = sweep.apply_overrides(config, {"method": "idec",
                                       "dec.update_interval": 70,
                                       "model.dims": [16, 4]})
  assert (out.method, out.dec.update_interval, out.model.dims) == (
      "idec", 70, (16, 4))
  assert config.method == "dec"  # the base config is untouched
  with pytest.raises(DecJaxError, match="not a config field"):
    sweep.apply_overrides(config, {"dec.nope": 1})
  with pytest.raises(DecJaxError, match="no section"):
    sweep.apply_overrides(config, {"nope.x": 1})
  with pytest.raises(DecJaxError, match="update_interval"):
    sweep.apply_overrides(config, {"dec.update_interval": "often"})


def _mtimes(root):
  return {os.path.relpath(os.path.join(d, f), root):
          os.stat(os.path.join(d, f)).st_mtime_ns
          for d, _, files in os.walk(root) for f in files
          if f in ("results.json", "metrics.jsonl", "assignments.npz")
          and os.path.basename(d).startswith("seed")}


def test_interrupted_sweep_resumes_without_redoing_runs(tmp_path, blobs_npz,
                                                        monkeypatch):
  config = tiny_config(blobs_npz, report=False, tensorboard=False)
  config.pretrain.epochs = 5
  config.dec.maxiter = 20
  workdir = str(tmp_path / "sweep")
  grid = "method=ae_kmeans,dec"
  # Interrupt the second cell (dec, both seeds in one stack) as a kill would.
  real_run, calls = run_lib.run, []

  def flaky_run(cfg, path, **kwargs):
    calls.append(path)
    if len(calls) == 2:
      raise KeyboardInterrupt
    return real_run(cfg, path, **kwargs)

  monkeypatch.setattr(run_lib, "run", flaky_run)
  with pytest.raises(KeyboardInterrupt):
    sweep.run_sweep(config, workdir, grid, "0,1")
  monkeypatch.setattr(run_lib, "run", real_run)
  first = _mtimes(workdir)
  assert sorted(first) == [f"method=ae_kmeans/seed{s}/{f}" for s in (0, 1)
                           for f in ("assignments.npz", "metrics.jsonl",
                                     "results.json")]

  rows = sweep.run_sweep(config, workdir, grid, "0,1")
  after = _mtimes(workdir)
  for path, mtime in first.items():
    assert after[path] == mtime, path  # finished runs were not redone
  assert len(after) == 12 and len(rows) == 4
  # The dec cell reused the autoencoders the ae_kmeans cell trained.
  assert all(r["pretrain_reused"] for r in rows if r["method"] == "dec")

  # Finished: a rerun does nothing (a single lost run is redone alone, as
  # tests/test_stack.py checks).
  sweep.run_sweep(config, workdir, grid, "0,1")
  assert _mtimes(workdir) == after
  # ... unless its config changed (refused) or overwrite is asked for.
  config.pretrain.epochs = 6
  with pytest.raises(DecJaxError, match="finished with another config: "
                     r".*other settings \(pretrain\)"):
    sweep.run_sweep(config, workdir, grid, "0,1")
  assert _mtimes(workdir) == after
  config.pretrain.epochs, config.pretrain.log_every = 5, 3  # cadence only
  sweep.run_sweep(config, workdir, grid, "0,1")
  assert _mtimes(workdir) == after
  config.overwrite = True
  sweep.run_sweep(config, workdir, grid, "0,1")
  redone = _mtimes(workdir)
  assert all(redone[path] != mtime for path, mtime in after.items())

  with open(os.path.join(workdir, "sweep.csv")) as f:
    table = list(csv.DictReader(f))
  assert [(r["cell"], r["seed"]) for r in table] == [
      ("method=ae_kmeans", "0"), ("method=ae_kmeans", "1"),
      ("method=dec", "0"), ("method=dec", "1")]
  assert all(0 <= float(r["acc"]) <= 1 for r in table)
  md = open(os.path.join(workdir, "sweep.md")).read()
  assert md.count("\n| method=") == 2 and " ± " in md


def test_numeric_axes_stack_in_one_run_per_cell(tmp_path, blobs_npz,
                                                monkeypatch):
  """dec.learning_rate (stackable) joins the seeds' stack: two cells
  (method), each one run of 2 seeds x 2 rates, not eight runs."""
  config = tiny_config(blobs_npz, report=False, tensorboard=False)
  config.pretrain.epochs, config.dec.maxiter = 5, 20
  real_run, calls = run_lib.run, []

  def counted(cfg, path, **kwargs):
    calls.append((path, cfg.grid))
    return real_run(cfg, path, **kwargs)

  monkeypatch.setattr(run_lib, "run", counted)
  workdir = str(tmp_path / "sweep")
  rows = sweep.run_sweep(config, workdir,
                         "method=ae_kmeans,dec;dec.learning_rate=0.01,0.1",
                         "0,1")
  assert [os.path.basename(p) for p, _ in calls] == ["method=ae_kmeans",
                                                     "method=dec"]
  assert all(json.loads(g) == {"dec.learning_rate": [0.01, 0.1]}
             for _, g in calls)
  assert len(rows) == 8
  assert {(r["cell"], r["dec.learning_rate"]) for r in rows} == {
      (f"method={m}/dec.learning_rate={lr}", lr)
      for m in ("ae_kmeans", "dec") for lr in (0.01, 0.1)}
  # Each point trained with its own rate: their soft assignments differ.
  confidence = {(r["seed"], r["dec.learning_rate"]): read_json(os.path.join(
      workdir, r["workdir"], "results.json"))["mean_max_q"]
                for r in rows if r["method"] == "dec"}
  for seed in (0, 1):
    assert confidence[(seed, 0.01)] != confidence[(seed, 0.1)]


def test_bad_grid_rejected_before_any_run(tmp_path, blobs_npz):
  with pytest.raises(DecJaxError, match="Unknown method"):
    sweep.run_sweep(tiny_config(blobs_npz), str(tmp_path / "s"),
                    "method=dec,nope", "0")
  assert not os.path.exists(tmp_path / "s")
  # A grid given as --config.grid would be dropped by the cells: refused.
  with pytest.raises(DecJaxError, match="axes come from --grid"):
    sweep.run_sweep(tiny_config(blobs_npz, grid='{"dec.alpha": [1.0, 2.0]}'),
                    str(tmp_path / "s"), "method=dec", "0")
  assert not os.path.exists(tmp_path / "s")
  with pytest.raises(DecJaxError, match="the sweep's workdir is empty"):
    sweep.run_sweep(tiny_config(blobs_npz), "", "method=dec", "0")
  # A setting that only the data refuses, in the last cell: found before
  # the first cell runs.
  with pytest.raises(DecJaxError, match=r"dec.batch_size \(4096\)"):
    sweep.run_sweep(tiny_config(blobs_npz), str(tmp_path / "s"),
                    "dec.batch_size=16,4096", "0")
  assert not os.path.exists(tmp_path / "s")


def test_sweep_cli(tmp_path, blobs_npz):
  workdir = str(tmp_path / "sweep")
  proc = cli("--config=experiments/configs/default.py", f"--workdir={workdir}",
             f"--config.dataset={blobs_npz}", "--config.method=kmeans",
             "--config.n_clusters=4", "--config.report=False",
             "--config.tensorboard=False", "--grid=kmeans.n_init=1,2",
             "--seeds=0,1", module="experiments.sweep")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "| kmeans.n_init=1 | 1 | 2 |" in proc.stdout
  with open(os.path.join(workdir, "sweep.csv")) as f:
    rows = list(csv.DictReader(f))
  assert [(r["cell"], r["seed"], r["kmeans.n_init"]) for r in rows] == [
      ("kmeans.n_init=1", "0", "1"), ("kmeans.n_init=1", "1", "1"),
      ("kmeans.n_init=2", "0", "2"), ("kmeans.n_init=2", "1", "2")]
  bad = cli(f"--workdir={workdir}2", "--grid=dec.nope=1",
            module="experiments.sweep")
  assert bad.returncode == 2 and "not a config field" in bad.stderr
