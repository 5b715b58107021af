"""An interrupted run (in pretraining or in clustering, by an exception or
SIGKILL) resumes from its last checkpoint and ends exactly where an
uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from dec_jax.runner import run as run_lib
from dec_jax.runner import stack
from dec_jax.methods.dec import DEC_PARTIAL
from dec_jax.runner.workdir import Workdir, load_params, read_metrics
from tests.conftest import tensorboard_scalars
from tests.test_end_to_end import REPO, device_env, tiny_config


def _interrupted_run(config, workdir, monkeypatch, name, key=None, at=None,
                     before_dying=None):
  """Runs config into workdir and stops it with KeyboardInterrupt right
  after checkpoint `name` is saved (with meta[key] == at, if given)."""
  save_params = Workdir.save_params

  def save_then_die(self, saved, params, meta):
    save_params(self, saved, params, meta)
    if saved == name and (key is None or meta[key] == at):
      if before_dying:
        before_dying(self)
      raise KeyboardInterrupt

  monkeypatch.setattr(Workdir, "save_params", save_then_die)
  with pytest.raises(KeyboardInterrupt):
    run_lib.run(config, workdir)
  monkeypatch.undo()


def test_killed_pretraining_resumes_to_the_same_result(tmp_path, blobs_npz,
                                                       monkeypatch):
  config = tiny_config(blobs_npz, method="ae_kmeans",
                       pretrain={"epochs": 10, "checkpoint_every": 4,
                                 "log_every": 2})
  whole = run_lib.run(config, str(tmp_path / "whole"))

  # killed right after the epoch-8 checkpoint
  _interrupted_run(config, str(tmp_path / "killed"), monkeypatch,
                   stack.PARTIAL, "epoch", 8)
  resumed = run_lib.run(config, str(tmp_path / "killed"))

  assert resumed["pretrain_resumed_from_epoch"] == 8
  assert load_params(str(tmp_path / "killed"), stack.PARTIAL) is None
  jax.tree.map(np.testing.assert_array_equal,
               load_params(str(tmp_path / "whole"), stack.AUTOENCODER),
               load_params(str(tmp_path / "killed"), stack.AUTOENCODER))
  for key in ("acc", "nmi", "ari", "cluster_sizes"):
    assert resumed[key] == whole[key]


@pytest.mark.parametrize("change, resumed", [
    ({"learning_rate": 0.002}, False),
    # how often it logs and saves changes nothing it computes
    ({"log_every": 5, "checkpoint_every": 3}, True)])
def test_partial_checkpoint_resumes_only_under_the_same_settings(
    tmp_path, blobs_npz, monkeypatch, change, resumed):
  config = tiny_config(blobs_npz, method="ae_kmeans",
                       pretrain={"epochs": 10, "checkpoint_every": 4})
  _interrupted_run(config, str(tmp_path / "w"), monkeypatch, stack.PARTIAL)
  config.pretrain.update(change)
  changed = run_lib.run(config, str(tmp_path / "w"))
  assert changed.get("pretrain_resumed_from_epoch") == (4 if resumed
                                                        else None)


def _dec_config(blobs_npz, method="dec"):
  """DEC that runs to maxiter (tol 0) with checkpoints every 20 iterations."""
  return tiny_config(blobs_npz, method=method,
                     dec={**tiny_config(blobs_npz).dec.to_dict(), "tol": 0.0,
                          "maxiter": 60, "checkpoint_every": 20})


def test_clustering_resumes_under_another_cadence_and_data_folder(
    tmp_path, blobs_npz, monkeypatch):
  config = _dec_config(blobs_npz)
  whole = run_lib.run(config, str(tmp_path / "whole"))
  _interrupted_run(config, str(tmp_path / "killed"), monkeypatch,
                   DEC_PARTIAL, "iteration", 40)
  config.dec.checkpoint_every = 30
  config.pretrain.log_every = 7
  config.data_dir = str(tmp_path)  # not read for a file: a path, not data
  resumed = run_lib.run(config, str(tmp_path / "killed"))
  assert resumed["dec_resumed_from_iteration"] == 40
  assert resumed["pretrain_reused"]
  for key in ("acc", "nmi", "ari", "cluster_sizes", "iterations"):
    assert resumed[key] == whole[key], key


@pytest.mark.parametrize("method", ["dec", "idec"])
def test_killed_clustering_resumes_to_the_same_result(tmp_path, blobs_npz,
                                                      monkeypatch, method):
  config = _dec_config(blobs_npz, method)
  whole = run_lib.run(config, str(tmp_path / "whole"))
  assert whole["iterations"] == 60

  _interrupted_run(config, str(tmp_path / "killed"), monkeypatch,
                   DEC_PARTIAL, "iteration", 40)
  resumed = run_lib.run(config, str(tmp_path / "killed"))

  assert resumed["dec_resumed_from_iteration"] == 40
  assert resumed["pretrain_reused"]  # the finished autoencoder, not retrained
  assert load_params(str(tmp_path / "killed"), DEC_PARTIAL) is None
  for key in ("acc", "nmi", "ari", "cluster_sizes", "init_metrics",
              "iterations"):
    assert resumed[key] == whole[key], key
  np.testing.assert_array_equal(
      np.load(tmp_path / "whole" / "assignments.npz")["labels"],
      np.load(tmp_path / "killed" / "assignments.npz")["labels"])
  # One log: the records before the kill, a resume marker, the rest.
  stages = [r["stage"] for r in read_metrics(str(tmp_path / "killed"))]
  assert "resume" in stages and stages.count("final") == 1


def _killed_after_logging(config, workdir, monkeypatch, stage, counter, at):
  """Runs config into workdir and stops it right after it logs the `stage`
  record with `counter` == at (past the last checkpoint) to metrics.jsonl
  and TensorBoard."""
  log = stack.MemberRun.log

  def log_then_die(self, record):
    log(self, record)
    if record.get("stage") == stage and record.get(counter) == at:
      raise KeyboardInterrupt

  monkeypatch.setattr(stack.MemberRun, "log", log_then_die)
  with pytest.raises(KeyboardInterrupt):
    run_lib.run(config, workdir)
  monkeypatch.undo()


def _logged_config(blobs_npz):
  """_dec_config with pretraining checkpoints every 4 of 12 epochs, logs
  every 2, TensorBoard, and collapse flagged at every update."""
  config = _dec_config(blobs_npz)
  config.update({"n_clusters": 6, "collapse_fraction": 0.99,  # flagged
                 "tensorboard": True})
  config.pretrain.update({"epochs": 12, "checkpoint_every": 4,
                          "log_every": 2})
  return config


def _assert_logs_alike(workdir, uninterrupted):
  """Both training stages read in workdir's metrics.jsonl and TensorBoard
  as in the uninterrupted run's: each epoch and iteration once, in order,
  with the same values (seconds aside)."""
  for stage, counter in (("pretrain", "epoch"), ("dec", "iteration")):
    def series(folder):
      return [(r[counter], r.get("loss")) for r in read_metrics(folder)
              if r["stage"] == stage and counter in r]
    assert series(workdir) == series(uninterrupted) != [], stage

    def shown(folder):
      return tensorboard_scalars(os.path.join(folder, "tensorboard", stage))
    seen, expected = shown(workdir), shown(uninterrupted)
    assert expected and expected.keys() <= seen.keys(), stage
    for tag, points in expected.items():
      steps, values = zip(*points)
      assert [step for step, _ in seen[tag]] == list(steps), tag
      if not tag.endswith("_s"):  # seconds differ, the rest is replayed
        assert [v for _, v in seen[tag]] == pytest.approx(values), tag


@pytest.mark.parametrize("stage, counter, at", [
    ("pretrain", "epoch", 10),
    ("dec", "iteration", 50),
    # before the first clustering checkpoint (20): the log starts afresh,
    # and the reused autoencoder's pretraining records are logged again
    ("dec", "iteration", 10)])
def test_a_resumed_log_reads_as_the_uninterrupted_runs(
    tmp_path, blobs_npz, monkeypatch, stage, counter, at):
  # Killed 2 epochs / 10 iterations after the last checkpoint: the records
  # logged since are written again by the resumed stage, and only once.
  # TensorBoard shows each step once too.
  config = _logged_config(blobs_npz)
  whole = run_lib.run(config, str(tmp_path / "whole"))
  _killed_after_logging(config, str(tmp_path / "killed"), monkeypatch,
                        stage, counter, at)
  resumed = run_lib.run(config, str(tmp_path / "killed"))
  _assert_logs_alike(str(tmp_path / "killed"), str(tmp_path / "whole"))
  assert whole["collapse"]["flagged_updates"] > 0
  assert resumed["collapse"] == whole["collapse"]


@pytest.mark.parametrize("checkpoint, key, at, section", [
    (stack.PARTIAL, "epoch", 8, "pretrain"),
    (DEC_PARTIAL, "iteration", 40, "dec")])
def test_a_stage_not_resumed_leaves_none_of_its_old_records(
    tmp_path, blobs_npz, monkeypatch, checkpoint, key, at, section):
  # Rerun with another learning rate, the interrupted stage starts afresh
  # (its partial checkpoint has other settings): its records of the first
  # run are gone from the continued log and from TensorBoard.
  config = _logged_config(blobs_npz)
  _interrupted_run(config, str(tmp_path / "w"), monkeypatch, checkpoint,
                   key, at)
  config[section].learning_rate *= 0.5
  changed = run_lib.run(config, str(tmp_path / "w"))
  run_lib.run(config, str(tmp_path / "whole"))
  assert "resume" in [r["stage"] for r in read_metrics(str(tmp_path / "w"))]
  assert changed.get("pretrain_resumed_from_epoch") is None
  assert changed.get("dec_resumed_from_iteration") is None
  _assert_logs_alike(str(tmp_path / "w"), str(tmp_path / "whole"))


def test_grid_points_sharing_an_autoencoder_each_log_its_pretraining(
    tmp_path, blobs_npz):
  # One autoencoder is pretrained for both points (their settings differ
  # after pretraining); the twin's log shows it too, as does its saved
  # description, which a rerun logs again.
  config = _logged_config(blobs_npz)
  config.update({"seeds": "0", "grid": '{"dec.learning_rate": [0.01, 0.02]}'})
  run_lib.run(config, str(tmp_path / "grid"))
  logs = []
  for point in ("dec.learning_rate=0.01", "dec.learning_rate=0.02"):
    folder = str(tmp_path / "grid" / point / "seed0")
    logs.append([r for r in read_metrics(folder) if r["stage"] == "pretrain"])
    with open(os.path.join(folder, "checkpoints", "autoencoder.json")) as f:
      assert json.load(f)["pretraining_log"] == logs[-1]
  assert len(logs[0]) == 6 and logs[0] == logs[1]


def test_an_overwritten_run_logs_each_step_once(tmp_path, blobs_npz):
  # The rerun reuses the autoencoder: its log and TensorBoard show that
  # autoencoder's pretraining and the new clustering, without the first
  # run's events beside them.
  config = _logged_config(blobs_npz)
  run_lib.run(config, str(tmp_path / "whole"))
  run_lib.run(config, str(tmp_path / "again"))
  config.overwrite = True
  again = run_lib.run(config, str(tmp_path / "again"))
  assert again["pretrain_reused"]
  _assert_logs_alike(str(tmp_path / "again"), str(tmp_path / "whole"))


def test_killed_clustering_resumes_its_patience_count(tmp_path, blobs_npz,
                                                      monkeypatch):
  """The blobs' labels never change (label change 0 from update 10 on), so
  patience 4 stops the run at 50. Killed after the checkpoint at 40, the
  resumed run still stops at 50: the count is in the checkpoint (a count
  started afresh would stop at 80)."""
  config = _dec_config(blobs_npz)
  config.dec.update(patience=4, maxiter=200)
  whole = run_lib.run(config, str(tmp_path / "whole"))
  assert (whole["stop_reason"], whole["iterations"]) == ("patience", 50)

  _interrupted_run(config, str(tmp_path / "killed"), monkeypatch,
                   DEC_PARTIAL, "iteration", 40)
  resumed = run_lib.run(config, str(tmp_path / "killed"))
  assert resumed["dec_resumed_from_iteration"] == 40
  assert (resumed["stop_reason"], resumed["iterations"]) == ("patience", 50)


@pytest.mark.parametrize("checkpoint,key,at,stage", [
    (stack.PARTIAL, "epoch", 8, "pretrain"),
    (DEC_PARTIAL, "iteration", 40, "dec")])
def test_a_resumed_stage_counts_the_seconds_it_ran_before(
    tmp_path, blobs_npz, monkeypatch, checkpoint, key, at, stage):
  """times_s and the logs' time_s go on from the seconds the checkpoint
  recorded (inflated here to stand for a long first session)."""
  config = _dec_config(blobs_npz)
  config.pretrain.update(epochs=10, checkpoint_every=4, log_every=2)
  workdir = str(tmp_path / "w")
  _interrupted_run(config, workdir, monkeypatch, checkpoint, key, at)
  path = os.path.join(workdir, "checkpoints", checkpoint + ".json")
  with open(path) as f:
    meta = json.load(f)
  assert 0 < meta["elapsed_s"] < 1000
  with open(path, "w") as f:
    json.dump({**meta, "elapsed_s": 1000.0}, f)

  resumed = run_lib.run(config, workdir)

  # Resumed in clustering, the autoencoder of the first process is reused
  # and its pretraining (recorded in its description) counts too.
  pretrained = resumed.get("pretrained_from", {}).get("pretrain_s", 0.0)
  assert (stage == "dec") == (pretrained > 0)
  times = resumed["times_s"]
  assert times["carried_over"] == 1000.0 + pretrained
  assert 1000.0 < times[stage] < times["total"]
  assert times["pretrain"] >= pretrained
  after = [r for r in read_metrics(workdir)
           if r["stage"] == stage and r.get(key, 0) > at]
  assert after and all(r["time_s"] > 1000.0 for r in after)


def test_resume_off_starts_afresh(tmp_path, blobs_npz, monkeypatch):
  config = _dec_config(blobs_npz)
  _interrupted_run(config, str(tmp_path / "w"), monkeypatch,
                   DEC_PARTIAL)
  config.resume = False
  results = run_lib.run(config, str(tmp_path / "w"))
  assert "dec_resumed_from_iteration" not in results
  assert "resume" not in [r["stage"] for r in read_metrics(str(tmp_path /
                                                               "w"))]


# Run in a child process: the run is SIGKILLed (no cleanup, no exception
# handlers) right after it saved the named partial checkpoint at `at`.
_KILL_CHILD = r"""
import json, os, signal, sys
from dec_jax.runner import run as run_lib
from dec_jax.runner.workdir import Workdir
from tests.test_resume import _dec_config
args = json.loads(sys.argv[1])
save_params = Workdir.save_params
def save_then_kill(self, name, params, meta):
  save_params(self, name, params, meta)
  if name == args["name"] and meta.get(args["key"]) == args["at"]:
    os.kill(os.getpid(), signal.SIGKILL)
if args["name"]:
  Workdir.save_params = save_then_kill
config = _dec_config(args["data"])
config.pretrain.checkpoint_every = 4
config.pretrain.epochs = 12
run_lib.run(config, args["workdir"])
"""


def _child(workdir, data, name="", key="", at=None, devices=1):
  """The child run on `devices` emulated CPU devices (all of them used)."""
  return subprocess.run(
      [sys.executable, "-c", _KILL_CHILD,
       json.dumps({"workdir": workdir, "data": data, "name": name,
                   "key": key, "at": at})],
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
      env=device_env(devices))


# Also on 3 devices: the checkpoints a resumed run restores (the
# autoencoder, both partials) go back onto its mesh.
@pytest.mark.parametrize("devices", [1, 3])
def test_sigkilled_in_pretraining_and_in_clustering_resumes_exactly(
    tmp_path, blobs_npz, devices):
  whole, killed = str(tmp_path / "whole"), str(tmp_path / "killed")
  assert _child(whole, blobs_npz, devices=devices).returncode == 0

  proc = _child(killed, blobs_npz, stack.PARTIAL, "epoch", 8, devices)
  assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
  assert not os.path.exists(os.path.join(killed, "results.json"))
  proc = _child(killed, blobs_npz, DEC_PARTIAL, "iteration", 40, devices)
  assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
  proc = _child(killed, blobs_npz, devices=devices)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert json.loads(open(os.path.join(killed, "metrics.jsonl")).readline()
                    )["devices"] == devices

  results = [json.load(open(os.path.join(d, "results.json")))
             for d in (whole, killed)]
  assert results[1]["dec_resumed_from_iteration"] == 40
  for key in ("acc", "nmi", "ari", "cluster_sizes", "init_metrics"):
    assert results[1][key] == results[0][key], key
  np.testing.assert_array_equal(
      *[np.load(os.path.join(d, "assignments.npz"))["q"]
        for d in (whole, killed)])
  # The pretraining resumed from epoch 8 in the second process.
  assert any(r.get("resumed_from_epoch") == 8 for r in read_metrics(killed))


def test_a_half_written_log_line_is_dropped_on_resume(tmp_path, blobs_npz,
                                                      monkeypatch):
  config = _dec_config(blobs_npz)
  def write_half_a_record(workdir):  # killed in the middle of a write
    with open(workdir.file("metrics.jsonl"), "a") as f:
      f.write('{"stage": "dec", "iter')

  _interrupted_run(config, str(tmp_path / "w"), monkeypatch,
                   DEC_PARTIAL, before_dying=write_half_a_record)
  run_lib.run(config, str(tmp_path / "w"))
  records = read_metrics(str(tmp_path / "w"))  # every line parses
  assert [r["stage"] for r in records].count("final") == 1
