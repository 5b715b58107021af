"""The results table over several runs: mean ± sd per (data, method)."""

from dec_jax.workdir import write_json_atomic
from experiments import summarize


def test_summary_table_groups_seeds_and_reports_mean_and_sd(tmp_path):
  pretrain = {"optimizer": "adam", "learning_rate": 0.001,
              "schedule": "cosine", "epochs": 50}
  for seed, acc in enumerate((0.8, 0.9)):
    (tmp_path / f"s{seed}").mkdir()
    write_json_atomic(str(tmp_path / f"s{seed}" / "results.json"), {
        "dataset": "mnist", "method": "dec", "acc": acc, "nmi": 0.5,
        "ari": 0.4, "times_s": {"total": 60.0 * (seed + 1)},
        "config": {"seed": seed, "pretrain": pretrain}})
  (tmp_path / "other").mkdir()  # same method, other settings: its own row
  write_json_atomic(str(tmp_path / "other" / "results.json"), {
      "dataset": "mnist", "method": "dec", "acc": 0.7, "nmi": 0.5, "ari": 0.4,
      "times_s": {"total": 60.0},
      "config": {"seed": 0, "pretrain": {**pretrain, "epochs": 10}}})
  (tmp_path / "km").mkdir()
  write_json_atomic(str(tmp_path / "km" / "results.json"), {
      "dataset": "mnist", "method": "kmeans", "acc": 0.5, "nmi": 0.5,
      "ari": 0.3, "times_s": {"total": 30.0}})
  table = summarize.summary_table(summarize.find_results([str(tmp_path)]))
  lines = table.splitlines()
  assert ("| mnist | dec | adam 0.001 cosine, 50 ep | 2 | 0.850 ± 0.071 | "
          "0.500 ± 0.000 | 0.400 ± 0.000 | 1.5 min |") in lines
  assert ("| mnist | dec | adam 0.001 cosine, 10 ep | 1 | 0.700 | 0.500 | "
          "0.400 | 1.0 min |") in lines
  assert "| mnist | kmeans | – | 1 | 0.500 | 0.500 | 0.300 | 0.5 min |" in lines
  assert len(lines) == 5
