"""The results table over several runs: mean ± sd per (data, method)."""

from dec_jax.workdir import write_json_atomic
from experiments import summarize


def test_summary_table_groups_seeds_and_reports_mean_and_sd(tmp_path):
  for seed, acc in enumerate((0.8, 0.9)):
    (tmp_path / f"s{seed}").mkdir()
    write_json_atomic(str(tmp_path / f"s{seed}" / "results.json"), {
        "dataset": "mnist", "method": "dec", "acc": acc, "nmi": 0.5,
        "ari": 0.4, "times_s": {"total": 60.0 * (seed + 1)}})
  (tmp_path / "km").mkdir()
  write_json_atomic(str(tmp_path / "km" / "results.json"), {
      "dataset": "mnist", "method": "kmeans", "acc": 0.5, "nmi": 0.5,
      "ari": 0.3, "times_s": {"total": 30.0}})
  table = summarize.summary_table(summarize.find_results([str(tmp_path)]))
  lines = table.splitlines()
  assert lines[2] == ("| mnist | dec | 2 | 0.850 ± 0.071 | 0.500 ± 0.000 | "
                      "0.400 ± 0.000 | 1.5 min |")
  assert lines[3] == "| mnist | kmeans | 1 | 0.500 | 0.500 | 0.300 | 0.5 min |"
