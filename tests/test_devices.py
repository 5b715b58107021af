"""Any number of samples on any number of devices gives the one-device result.

Row counts (1,797, 1,796, 1,001), batch sizes (101, 256) and chunk sizes
(499) that the device counts 2, 3, 4 do not divide: every stage that splits
rows over devices (tests/device_stages.py) and a whole `experiments.main` run
on 3 devices end where one device ends.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from dec_jax.apps.predict import load_trained
from dec_jax.runner.run import run
from experiments.configs import default
from tests.test_end_to_end import REPO, device_env

TOLERANCE = 1e-5  # sums of per-device partial sums add in another order
# DEC's 20 Adam steps amplify that order (Adam divides by sqrt(v)): one
# weight of 2,048 differed by 1.4e-5 on 3 devices (session 12's machine).
TRAINED_TOLERANCE = 1e-4
MULTI = (2, 3, 4)
# A digits run with tiny epochs; 256-row batches on 3 devices do not divide.
TINY_DIGITS = {"n_clusters": 10, "model.dims": (32, 8), "pretrain.epochs": 3,
               "kmeans.n_init": 2, "dec.update_interval": 10,
               "dec.maxiter": 30, "dec.tol": 0.0, "report": False,
               "tensorboard": False}


def _python(args, devices, log):
  """A subprocess with `devices` emulated CPU devices, its output in the
  file `log` (a pipe could fill up and stall it)."""
  with open(log, "w") as out:
    return subprocess.Popen([sys.executable, *args], cwd=REPO,
                            env=device_env(devices), stdout=out,
                            stderr=subprocess.STDOUT)


def _wait(proc, log):
  """Waits for subprocess proc; fails with the end of its output `log`."""
  proc.wait(timeout=900)
  assert proc.returncode == 0, open(log).read()[-3000:]


@pytest.fixture(scope="module")
def started(tmp_path_factory):
  """Both subprocesses, started at once to run side by side: the stages on
  1-4 devices, and the digits run on 3 devices."""
  tmp = tmp_path_factory.mktemp("devices")
  digits = load_digits()
  data = str(tmp / "digits1796.npz")  # 1,796 = 3 x 598 + 2
  np.savez(data, x=(digits.data[:-1] / 16.0).astype(np.float32),
           y=digits.target[:-1])
  procs = {
      "stages": _python(["-m", "tests.device_stages",
                         str(tmp / "stages.npz")], 4, tmp / "stages.log"),
      "cli": _python(["-m", "experiments.main", f"--workdir={tmp / 'three'}",
                      f"--config.dataset={data}",
                      *(f"--config.{k}={v}" for k, v in TINY_DIGITS.items())],
                     3, tmp / "cli.log")}
  yield {"dir": tmp, "data": data, **procs}
  for proc in procs.values():
    if proc.poll() is None:
      proc.kill()
      proc.wait()


@pytest.fixture(scope="module")
def stages(started):
  """{'{n}/{stage}/{leaf}': result} of tests/device_stages.py."""
  _wait(started["stages"], started["dir"] / "stages.log")
  return dict(np.load(started["dir"] / "stages.npz"))


@pytest.fixture(scope="module")
def digits_runs(started):
  """The workdir holding the digits run on 3 devices ('three') and, run
  here meanwhile, on one ('one')."""
  config = default.get_config()
  config.update_from_flattened_dict({**TINY_DIGITS, "num_devices": 1,
                                     "dataset": started["data"]})
  run(config, str(started["dir"] / "one"))
  _wait(started["cli"], started["dir"] / "cli.log")
  return started["dir"]


# The digits run first: its one-device half runs here while the stages do.
def test_digits_run_on_three_devices_matches_one_device(digits_runs):
  one, three = (np.load(digits_runs / d / "assignments.npz")
                for d in ("one", "three"))
  np.testing.assert_array_equal(three["labels"], one["labels"])
  np.testing.assert_allclose(three["q"], one["q"], rtol=0, atol=TOLERANCE)
  log = [json.loads(line) for line in open(digits_runs / "three" /
                                           "metrics.jsonl")]
  assert log[0]["devices"] == 3 and log[0]["n_samples"] == 1796


def test_checkpoints_move_between_device_counts(digits_runs):
  """A checkpoint does not pin the devices that saved it: the 3-device
  run's model predicts in this 1-device process, and a 3-device run
  reuses the 1-device run's autoencoder (pretrained_workdir) and ends
  where the 1-device run ends."""
  one, three = digits_runs / "one", digits_runs / "three"
  data = digits_runs / "digits1796.npz"
  np.testing.assert_array_equal(
      load_trained(str(three)).predict(np.load(data)["x"]),
      np.load(three / "assignments.npz")["labels"])

  reuse = _python(["-m", "experiments.main", f"--workdir={three}_reused",
                   f"--config.dataset={data}",
                   f"--config.pretrained_workdir={one}",
                   *(f"--config.{k}={v}" for k, v in TINY_DIGITS.items())],
                  3, digits_runs / "reuse.log")
  _wait(reuse, digits_runs / "reuse.log")
  assert json.load(open(f"{three}_reused/results.json"))["pretrain_reused"]
  log = open(f"{three}_reused/metrics.jsonl").readline()
  assert json.loads(log)["devices"] == 3
  np.testing.assert_array_equal(
      np.load(f"{three}_reused/assignments.npz")["labels"],
      np.load(one / "assignments.npz")["labels"])


def _stage(stages, name):
  """{leaf: {n: array}} of stage `name` on every device count."""
  out = {}
  for key, value in stages.items():
    n, stage, leaf = key.split("/", 2)
    if stage == name:
      assert leaf != "error", f"{name} on {n} devices failed:\n{value}"
      out.setdefault(leaf, {})[int(n)] = value
  assert out, f"no results for stage {name}"
  return out


def _assert_matches_one_device(stages, name, exact=(), atol=TOLERANCE):
  """Every leaf of stage `name` on 2, 3, 4 devices is the one on 1 device:
  within atol, or equal for the leaves named in `exact`."""
  for leaf, by_n in _stage(stages, name).items():
    for n in MULTI:
      message = f"{name}{leaf} on {n} devices"
      if any(e in leaf for e in exact):
        np.testing.assert_array_equal(by_n[n], by_n[1], err_msg=message)
      else:
        np.testing.assert_allclose(by_n[n], by_n[1], rtol=0, atol=atol,
                                   err_msg=message)


@pytest.mark.parametrize("stage", ["pretrain", "pretrain_streamed", "greedy"])
def test_pretrained_params_on_any_device_count_match_one_device(stages, stage):
  _assert_matches_one_device(stages, stage)


@pytest.mark.parametrize("stage", ["embed_one_chunk", "embed_chunks",
                                   "embed_streamed", "predict_q"])
def test_embeddings_on_any_device_count_match_one_device(stages, stage):
  _assert_matches_one_device(stages, stage)


def test_target_update_on_any_device_count_matches_one_device(stages):
  _assert_matches_one_device(stages, "target_update_reseed",
                             exact=("labels", "cluster_sizes", "reseeded"))


@pytest.mark.parametrize("stage", ["dec", "dec_streamed"])
def test_dec_steps_on_any_device_count_match_one_device(stages, stage):
  _assert_matches_one_device(stages, stage, exact=("labels",),
                             atol=TRAINED_TOLERANCE)


def test_uneven_minibatches_are_split_over_devices(stages):
  """Rows that do not divide are still split (XLA pads them internally),
  not computed whole on every device: the per-device shapes say so."""
  split = _stage(stages, "split_rows")[""]
  assert all(split[n] for n in MULTI), split
