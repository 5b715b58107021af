"""Shared fixtures: small generated data sets in the formats users bring,
and scores computed independently of dec_jax.metrics."""

import contextlib
import glob
import gzip
import itertools
import os
import struct

import numpy as np
import pytest
from tensorboardX.proto import event_pb2


def write_idx(path, array, magic):
  header = struct.pack(">I", magic) + struct.pack(">" + "I" * array.ndim,
                                                  *array.shape)
  with gzip.open(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


def read_events(logdir: str) -> list:
  """Every Event in logdir's event files, file by file in the order they
  were started (the wall time of their first event)."""
  files = []
  for path in glob.glob(os.path.join(logdir, "events.out.tfevents*")):
    events = []
    with open(path, "rb") as f:
      while header := f.read(12):
        length = struct.unpack("<Q", header[:8])[0]
        event = event_pb2.Event()
        event.ParseFromString(f.read(length))
        f.read(4)  # the data's CRC
        events.append(event)
    files.append(events)
  files.sort(key=lambda events: events[0].wall_time if events else 0)
  return [event for events in files for event in events]


def tensorboard_scalars(logdir: str) -> dict[str, list[tuple]]:
  """{tag: [(step, value), ...]} of one TensorBoard run as TensorBoard
  shows it: a SessionLog START at step T hides the earlier events at steps
  >= T (what a restarted writer asks for)."""
  series: dict[str, list[tuple]] = {}
  for event in read_events(logdir):
    if (event.HasField("session_log")
        and event.session_log.status == event_pb2.SessionLog.START):
      series = {tag: [(s, v) for s, v in points if s < event.step]
                for tag, points in series.items()}
    for value in event.summary.value:
      if not value.HasField("image"):
        series.setdefault(value.tag, []).append(
            (event.step, value.simple_value))
  return series


def make_idx_folder(folder) -> str:
  """Writes a tiny MNIST-layout folder: 40 train + 20 test 6x6 images."""
  rng = np.random.default_rng(0)
  for split, n in (("train", 40), ("t10k", 20)):
    write_idx(folder / f"{split}-images-idx3-ubyte.gz",
              rng.integers(0, 256, size=(n, 6, 6)), 0x803)
    write_idx(folder / f"{split}-labels-idx1-ubyte.gz",
              rng.integers(0, 10, size=n), 0x801)
  return str(folder)


# XLA's CPU codegen unoptimised, here and in every subprocess the tests
# start (they inherit the environment; set before jax makes its backend):
# the tests' tiny programs compile about 30 % faster and run as fast.
# Graph-level passes (fusion, the partitioning of rows over devices) are
# unchanged; results agree to float32 rounding (tanh once differed by an ulp
# between a compiled and an eager call).
os.environ["XLA_FLAGS"] = " ".join(filter(None, (
    os.environ.get("XLA_FLAGS"), "--xla_backend_optimization_level=0")))


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache(tmp_path_factory):
  """Compiled programs cached on disk for the session, one folder per xdist
  worker, shared with the subprocesses its tests start (through the
  environment: a CLI run, killed and rerun, compiles once). Each run builds
  its programs once per process (dec_loop._stack_fns), yet the tests' tiny
  runs compile the same programs again and again across processes and
  shapes; the disk cache keys on the program itself. An entry cut short
  by a killed process is a warning and a recompile, not an error."""
  import jax  # pylint: disable=g-import-not-at-top
  from jax.experimental.compilation_cache import compilation_cache  # pylint: disable=g-import-not-at-top
  settings = {"jax_compilation_cache_dir": str(
                  tmp_path_factory.mktemp("jax_cache")),
              "jax_persistent_cache_min_compile_time_secs": 0.0,
              "jax_persistent_cache_min_entry_size_bytes": 0}
  compilation_cache.reset_cache()
  for name, value in settings.items():
    jax.config.update(name, value)
    os.environ[name.upper()] = str(value)
  yield


@contextlib.contextmanager
def lowerings():
  """Counts the programs JAX lowers to XLA inside the block (a program
  reused from jit's in-memory cache is not lowered; one fetched from the
  disk cache is): yields a list whose length is that count."""
  import jax  # pylint: disable=g-import-not-at-top
  seen = []

  def listen(event, seconds, **kwargs):
    del seconds, kwargs
    if event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
      seen.append(event)

  jax.monitoring.register_event_duration_secs_listener(listen)
  try:
    yield seen
  finally:
    jax.monitoring.unregister_event_duration_listener(listen)


@pytest.fixture
def idx_folder(tmp_path):
  """make_idx_folder in the test's temporary folder."""
  return make_idx_folder(tmp_path)


@pytest.fixture
def blobs_npz(tmp_path):
  """Four well-separated Gaussian blobs in 8-D with labels, as .npz."""
  from sklearn.datasets import make_blobs
  x, y = make_blobs(n_samples=240, centers=4, n_features=8, cluster_std=0.6,
                    random_state=0)
  path = os.path.join(tmp_path, "blobs.npz")
  np.savez(path, x=x.astype(np.float32), y=y)
  return path


def independent_scores(y_true, y_pred) -> dict:
  """ACC by trying every one-to-one map of clusters to classes (no Hungarian
  solver: for k <= 7), NMI (arithmetic) and ARI from scikit-learn: the
  scores a run should report for these labels, computed another way."""
  from sklearn import metrics
  y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
  classes, clusters = np.unique(y_true), np.unique(y_pred)
  assert max(classes.size, clusters.size) <= 7, "too many for brute force"
  counts = {(c, t): int(np.sum((y_pred == c) & (y_true == t)))
            for c in clusters for t in classes}
  padded = list(classes) + [None] * max(0, clusters.size - classes.size)
  best = max(sum(counts.get((c, t), 0) for c, t in zip(clusters, perm))
             for perm in itertools.permutations(padded, clusters.size))
  return {"acc": best / y_true.size,
          "nmi": metrics.normalized_mutual_info_score(
              y_true, y_pred, average_method="arithmetic"),
          "ari": metrics.adjusted_rand_score(y_true, y_pred)}


def run_dec_one(encoder, encoder_params, centres, init_labels, x, key, tx,
                cfg, log_fn=None, **kwargs):
  """dec_loop.run_dec on a stack of one member: its DECResult; log_fn gets
  the member's records."""
  import jax  # pylint: disable=g-import-not-at-top
  from dec_jax.train import dec_loop  # pylint: disable=g-import-not-at-top
  start = dec_loop.DECStart(
      dec_loop.stack([{"encoder": encoder_params, "centres": centres}]),
      jax.numpy.asarray(init_labels)[None])
  [result] = dec_loop.run_dec(
      encoder, start, x, key[None], tx, cfg,
      log_fn=None if log_fn is None else lambda member, r: log_fn(r),
      **kwargs)
  return result


def pytest_configure(config):
  """With `-n N`, a test file's tests run on one xdist worker (loadfile),
  so its module-scoped fixtures (the device subprocesses, the trained runs
  of a module) are built once, not once per worker. (xdist_group would
  group finer, but xdist 3.8 marks a node id field pytest 9 ignores.)"""
  if config.pluginmanager.hasplugin("xdist") and (
      config.getoption("dist", "no") == "load"):
    config.option.dist = "loadfile"
