"""The docs' worked examples run: the method of docs/adding_a_method.md,
registered as written there, fits through the runner and stacks."""

import os
import pathlib
import re
import types

import numpy as np

from dec_jax.methods import base
from dec_jax.runner import config as config_lib
from dec_jax.runner import run as run_lib
from tests.test_end_to_end import tiny_config

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"


def _python_blocks(name: str) -> list[str]:
  return re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), re.S)


def test_the_method_of_adding_a_method_runs(tmp_path, blobs_npz,
                                              monkeypatch):
  monkeypatch.setattr(base, "METHODS", dict(base.METHODS))  # undone after
  [source] = _python_blocks("adding_a_method.md")
  exec(compile(source, "ae_gmm.py", "exec"),  # pylint: disable=exec-used
       types.ModuleType("ae_gmm").__dict__)
  assert "ae_gmm" in base.METHODS
  config = tiny_config(blobs_npz, method="ae_gmm", seeds="0,1")
  config.ae_gmm = config_lib.get_config().ae_gmm  # its section, registered
  results = run_lib.run(config, str(tmp_path / "w"))
  assert results["acc"]["mean"] > 0.9
  member = np.load(os.path.join(tmp_path, "w", "seed0", "assignments.npz"))
  assert member["q"].shape == (240, 4)
