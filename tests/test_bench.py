"""The benchmark entry point runs end to end on tiny sizes and writes JSON."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_smoke_writes_json(tmp_path):
  out = tmp_path / "bench.json"
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.bench", "--n_samples=600",
       "--dim=64", "--dims=16,4", "--conv_samples=128", "--batch_size=64", "--update_interval=5",
       "--repeats=1", "--matmul_size=128", "--n_init=2", "--n_clusters=3",
       "--seeds=2", "--seeds_samples=256",
       f"--out={out}"], cwd=REPO, capture_output=True, text=True, timeout=300,
      check=False, env={**os.environ, "PYTHONPATH": REPO})
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "effective iterations" in proc.stdout
  results = json.loads(out.read_text())
  assert results["pretrain"]["samples_per_s"] > 0
  assert results["dec"]["effective_it_per_s"] > 0
  for name in ("seeds", "dec_seeds"):
    assert results[name]["num_seeds"] == 2 and results[name]["step_ms"] > 0
  assert results["environment"]["backend"] == "cpu"
  conv = results["conv_pretrain"]
  assert conv["image_shape"] == [8, 8] and conv["samples"] == 128
  assert conv["speedup"] == (conv["matmul"]["samples_per_s"]
                             / conv["xla"]["samples_per_s"])


def test_bench_conv_needs_square_images():
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.bench", "--n_samples=100",
       "--dim=20", "--batch_size=50", "--conv_samples=64"], cwd=REPO, capture_output=True,
      text=True, timeout=300, check=False,
      env={**os.environ, "PYTHONPATH": REPO})
  assert proc.returncode == 2
  assert "needs square images; inputs of width 20" in proc.stderr
