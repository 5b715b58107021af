"""Data parallelism: the compiled step sums gradients over the devices, and a
run over 2 processes x 2 devices joined by jax.distributed ends where the
one-device run ends (same labels, soft assignments within 1e-4). A whole run
on 3 devices against 1 is tests/test_devices.py's."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from dec_jax.errors import DecJaxError
from dec_jax.runner.run import run
from tests.test_end_to_end import REPO, device_env, tiny_config

TOLERANCE = 1e-4  # on q: sums of per-device gradients add in another order

_ALL_REDUCE = r"""
import jax
from dec_jax.nn import models
from dec_jax.train import optim
from dec_jax import parallel
from dec_jax.train import pretrain
assert jax.device_count() == 4
model = models.Autoencoder((8, 32, 4))
params = models.init_autoencoder(model, jax.random.key(0))
tx = optim.make_optimizer("adam", 1e-3)
epoch = pretrain.make_epoch_fn(model, tx, 240, 32)
with jax.set_mesh(parallel.data_mesh(4)):
  state = {"params": params, "opt": tx.init(params)}
  hlo = epoch.lower(state, jax.numpy.zeros((240, 8)),
                    jax.random.key(0)).compile().as_text()
print("all-reduce" in hlo)
"""


def _python(code_or_module, *args, devices=4, extra_env=None):
  env = {**device_env(devices), **(extra_env or {})}
  return subprocess.Popen([sys.executable, *code_or_module, *args], cwd=REPO,
                          env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _assignments(workdir):
  return np.load(os.path.join(workdir, "assignments.npz"))


def test_compiled_pretraining_step_sums_gradients_over_devices():
  proc = _python(["-c", _ALL_REDUCE])
  stdout, stderr = proc.communicate(timeout=600)
  assert proc.returncode == 0, stderr[-3000:]
  assert stdout.strip().splitlines()[-1] == "True"


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_processes_match_one(tmp_path, blobs_npz):
  args = ["--config=experiments/configs/default.py",
          f"--config.dataset={blobs_npz}", "--config.n_clusters=4",
          "--config.model.dims=(32,4)", "--config.pretrain.epochs=5",
          "--config.pretrain.optimizer=adam",
          "--config.pretrain.learning_rate=0.001",
          "--config.pretrain.batch_size=32", "--config.kmeans.n_init=2",
          "--config.dec.batch_size=32", "--config.dec.update_interval=10",
          "--config.dec.maxiter=20", "--config.dec.tol=0",
          "--config.report=False", "--config.tensorboard=False"]
  port = _free_port()
  procs = [_python(["-m", "experiments.main"], *args,
                   f"--workdir={tmp_path / 'multi'}", "--distributed",
                   f"--coordinator=localhost:{port}", "--num_processes=2",
                   f"--process_id={i}", devices=2) for i in (0, 1)]
  single = _python(["-m", "experiments.main"], *args,
                   f"--workdir={tmp_path / 'single'}", devices=1)
  for proc in (*procs, single):
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
  multi, one = (_assignments(tmp_path / d) for d in ("multi", "single"))
  np.testing.assert_array_equal(one["labels"], multi["labels"])
  np.testing.assert_allclose(one["q"], multi["q"], atol=TOLERANCE)
  results = json.load(open(tmp_path / "multi" / "results.json"))
  assert results["environment"]["device_count"] == 4
  assert results["environment"]["process_count"] == 2


def test_more_devices_than_visible_is_a_clear_error(tmp_path, blobs_npz):
  with pytest.raises(DecJaxError, match="num_devices"):
    run(tiny_config(blobs_npz, num_devices=64), str(tmp_path / "w"))
  assert not os.path.exists(tmp_path / "w")
