"""Bad input, as a new user gives it, gets one clear DecJaxError before
anything is written: no workdir is made, an existing one is not touched, and
the CLI prints one `error: ...` line."""

import os

import numpy as np
import pytest

from dec_jax.errors import DecJaxError
from dec_jax.runner.run import run
from tests.test_end_to_end import cli, tiny_config


def _npz(**arrays):
  def make(folder):
    np.savez(folder / "d.npz", **arrays)
    return str(folder / "d.npz")
  return make


def _garbage(folder):
  (folder / "d.npz").write_bytes(np.random.default_rng(0).bytes(300))
  return str(folder / "d.npz")


_X = np.random.default_rng(0).random((40, 3)).astype(np.float32)
_NAN = _X.copy()
_NAN[[3, 9]] = np.nan

CASES = {
    "missing file": (lambda folder: str(folder / "nope.npz"), {},
                     "does not exist"),
    "1-D inputs": (_npz(x=np.arange(40.0)), {}, r"shape \[N, D\]"),
    "NaN rows": (_npz(x=_NAN), {}, r"NaN or inf in 2 rows \(first rows: "
                 r"\[3, 9\]\)"),
    "k above N": (_npz(x=_X[:3]), {}, "between 2 and the number of samples"),
    "split of an npz": (_npz(x=_X), {"split": "test"},
                        "split='test': .*d.npz is a .npz file"),
    "garbage npz": (_garbage, {}, r"not a valid \.npz file"),
    "negative seed": (_npz(x=_X), {"seed": -1},
                      "seed must be an integer between 0 and 4294967295"),
    "seed above uint32": (_npz(x=_X), {"seed": 2**32}, "seed must be"),
    # float64 1e8 + [0, 1): float32 (8 apart at 1e8) keeps a few values
    "spread lost in float32": (_npz(x=1e8 + _X.astype(np.float64)), {},
                               "cannot hold the spread of 3 feature"),
}


def test_a_feature_constant_but_for_float64_rounding_is_kept():
  # 0.3 and 0.30000000000000004 are one value to float32: no spread lost
  from dec_jax.runner import data  # pylint: disable=g-import-not-at-top
  x = np.column_stack([_X[:, 0].astype(np.float64),
                       np.where(np.arange(40) % 2, 0.1 + 0.2, 0.3)])
  assert data.from_arrays(x).x.shape == (40, 2)


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_before_a_workdir_is_made(tmp_path, case):
  make, overrides, message = CASES[case]
  config = tiny_config(make(tmp_path), **overrides)
  with pytest.raises(DecJaxError, match=message):
    run(config, str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()


def test_bad_input_leaves_an_existing_workdir_as_it_was(tmp_path):
  workdir = tmp_path / "w"
  workdir.mkdir()
  for name in ("results.json", "config.json", "metrics.jsonl"):
    (workdir / name).write_text(name)
  before = {p: (p.stat().st_mtime_ns, p.read_text())
            for p in workdir.iterdir()}
  config = tiny_config(_garbage(tmp_path), overwrite=True)
  with pytest.raises(DecJaxError, match="not a valid"):
    run(config, str(workdir))
  assert {p: (p.stat().st_mtime_ns, p.read_text())
          for p in workdir.iterdir()} == before


@pytest.mark.parametrize("seeds", ["-1,0", f"0,{2**32}"])
def test_bad_seeds_are_refused_before_a_workdir_is_made(tmp_path, seeds):
  config = tiny_config(_npz(x=_X)(tmp_path), seeds=seeds)
  with pytest.raises(DecJaxError, match="seeds must be"):
    run(config, str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()


def test_cli_says_one_error_line_and_exits_2(tmp_path):
  proc = cli(f"--workdir={tmp_path / 'w'}",
             f"--config.dataset={_garbage(tmp_path)}")
  errors = [line for line in proc.stderr.splitlines()
            if line.startswith("error: ")]
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert len(errors) == 1 and "not a valid .npz file" in errors[0]
  assert not os.path.exists(tmp_path / "w")
