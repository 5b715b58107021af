"""The benchmark entry point runs end to end on tiny sizes and writes JSON."""

import json
import os
import statistics
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _timings(tree, path=""):
  """(path, timing dict) of every timed piece in the results."""
  if isinstance(tree, dict):
    if "times_s" in tree:
      yield path, tree
    for key, value in tree.items():
      yield from _timings(value, f"{path}/{key}")


def test_bench_reports_consistent_timings_and_rates(tmp_path):
  """Tiny sizes, 2 timed repeats. Each piece's times are real (positive,
  together within the process's wall time), its median is the median of
  its times, and every rate is a count over those reported times; the
  printed table shows the JSON's numbers."""
  out = tmp_path / "bench.json"
  start = time.perf_counter()
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.bench", "--n_samples=600",
       "--dim=64", "--dims=16,4", "--conv_samples=64", "--batch_size=64",
       "--update_interval=5", "--repeats=2", "--matmul_size=128",
       "--n_init=2", "--n_clusters=3", "--stack_sizes=1,2", "--seeds_samples=256",
       f"--out={out}"], cwd=REPO, capture_output=True, text=True, timeout=300,
      check=False, env={**os.environ, "PYTHONPATH": REPO})
  wall_s = time.perf_counter() - start
  assert proc.returncode == 0, proc.stderr[-3000:]
  r = json.loads(out.read_text())
  assert r["environment"]["backend"] == "cpu"

  timings = dict(_timings(r))
  assert {"/matmul", "/pretrain", "/conv_pretrain/matmul",
          "/conv_pretrain/xla", "/embed", "/kmeans/jax", "/kmeans/sklearn",
          "/dec/train_interval", "/dec/target_update",
          "/stack/pretrain/1", "/stack/pretrain/2", "/stack/dec/1",
          "/stack/dec/2"} <= set(timings)
  for path, t in timings.items():
    assert len(t["times_s"]) == 2 and min(t["times_s"]) > 0, path
    assert t["median_s"] == pytest.approx(statistics.median(t["times_s"]))
    assert 0 <= t["compile_s"] <= t["first_call_s"], path
  # Every timed call ran one after the other inside the process.
  assert sum(t["first_call_s"] + sum(t["times_s"])
             for t in timings.values()) < wall_s

  # Rates are counts over the reported times.
  steps = -(-600 // 64)  # batches per epoch: 10 (640 samples)
  pt = r["pretrain"]
  assert pt["epoch_samples"] == steps * 64
  assert pt["samples_per_s"] == pytest.approx(640 / pt["median_s"])
  mm = r["matmul"]
  assert mm["gflops"] == pytest.approx(2 * 128 ** 3 / mm["median_s"] / 1e9)
  dec = r["dec"]
  ti, tu = dec["train_interval"], dec["target_update"]
  assert ti["steps_per_s"] == pytest.approx(5 / ti["median_s"])
  assert dec["effective_it_per_s"] == pytest.approx(
      5 / (ti["median_s"] + tu["median_s"]))
  conv = r["conv_pretrain"]
  assert conv["image_shape"] == [8, 8] and conv["samples"] == 64
  # matmul / XLA throughput on the same samples = XLA's time / matmul's.
  assert conv["speedup"] == pytest.approx(conv["xla"]["median_s"]
                                          / conv["matmul"]["median_s"])
  for size in ("1", "2"):  # stacks of 1 and 2 members vs separate steps
    seeds, dec_seeds = r["stack"]["pretrain"][size], r["stack"]["dec"][size]
    assert seeds["num_seeds"] == dec_seeds["num_seeds"] == int(size)
    assert seeds["step_ms"] == pytest.approx(
        1e3 * seeds["median_s"] / -(-256 // 64))
    # the separate model is timed beside the stack, on the same rows
    assert seeds["single_step_ms"] == pytest.approx(
        1e3 * seeds["single"]["median_s"] / -(-256 // 64))
    assert dec_seeds["single_step_ms"] == pytest.approx(
        1e3 * dec_seeds["single"]["median_s"] / 5)
    assert dec_seeds["step_ms"] == pytest.approx(
        1e3 * dec_seeds["median_s"] / 5)
    for sd in (seeds, dec_seeds):
      assert sd["ratio_to_separate"] == pytest.approx(
          sd["step_ms"] / (int(size) * sd["single_step_ms"]))
  km = r["kmeans"]
  assert km["inertia_ratio_jax_over_sklearn"] == pytest.approx(
      km["jax"]["inertia"] / km["sklearn"]["inertia"])

  # The printed table shows these numbers (4 significant digits).
  table = {(line[:10].strip(), line[10:38].strip()): float(line[38:52])
           for line in proc.stdout.splitlines()
           if len(line) > 52 and line[:10].strip() in (
               "matmul", "pretrain", "conv", "dec", "stack")}
  for key, value in [(("pretrain", "throughput"), pt["samples_per_s"]),
                     (("conv", "matmul / XLA"), conv["speedup"]),
                     (("dec", "effective iterations"),
                      dec["effective_it_per_s"]),
                     (("dec", "train_interval steps"), ti["steps_per_s"]),
                     (("stack", "pretrain S=2 vs 2 separate"),
                      r["stack"]["pretrain"]["2"]["ratio_to_separate"])]:
    assert table[key] == pytest.approx(value, rel=1e-3), key


def test_bench_conv_needs_square_images():
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.bench", "--n_samples=100",
       "--dim=20", "--batch_size=50", "--conv_samples=64"], cwd=REPO, capture_output=True,
      text=True, timeout=300, check=False,
      env={**os.environ, "PYTHONPATH": REPO})
  assert proc.returncode == 2
  assert "needs square images; inputs of width 20" in proc.stderr


def test_bench_refuses_bad_stack_sizes_before_timing():
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.bench", "--n_samples=100",
       "--dim=16", "--batch_size=50", "--conv_samples=0",
       "--stack_sizes=1,x"], cwd=REPO, capture_output=True, text=True,
      timeout=300, check=False, env={**os.environ, "PYTHONPATH": REPO})
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "--stack_sizes must be integers, got 1,x" in proc.stderr
