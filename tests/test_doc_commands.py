"""The docs' commands and links work: every `python -m experiments.<entry>`
command in a fenced block of README.md and docs/*.md parses with that entry
point's own absl flags (and, for `--config=...`, its config file's fields),
every relative link and image resolves, the README's test command is the one
`.ci/run` runs, and no command names a path of the machine the docs were
written on.

The commands are parsed in one child process (`python tests/test_doc_commands.py`):
it imports each entry point once, takes its flags out of absl's global
FlagValues (entry points define flags of the same names) and parses every
command with a fresh copy of them, as `app.run` would, without running main.
"""

from __future__ import annotations

import copy
import importlib
import json
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
ENTRY = "experiments."
# Paths of the machine the project ran on: never in a command a reader copies.
MACHINE_PATHS = re.compile(r"(?<![\w.])(/work/|/tmp/|/home/|/usr/share/|/shared/|"
                           r"\.\./shared/)")


# ------------------------------------------------------------- extraction


def fenced_blocks(text: str) -> list[str]:
  """The bodies of the ``` fenced blocks of a Markdown text."""
  return re.findall(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M)


def commands(text: str) -> list[tuple[str, list[str]]]:
  """(module, argv) of every `python -m experiments.X ...` in the fenced
  blocks: `\\` continuations joined, comments and what follows `&&`, `|`,
  `;` or a redirection dropped."""
  found = []
  for block in fenced_blocks(text):
    for line in block.replace("\\\n", " ").splitlines():
      line = line.strip().removeprefix("$ ")
      if f"-m {ENTRY}" not in line:
        continue
      words = shlex.split(line, comments=True)
      for i, word in enumerate(words[:-1]):
        if word == "-m" and words[i + 1].startswith(ENTRY):
          argv = []
          for arg in words[i + 2:]:
            if arg in ("&&", "||", "|", ";") or arg.startswith((">", "2>")):
              break
            argv.append(arg)
          found.append((words[i + 1], argv))
  return found


def all_commands() -> list[tuple[str, str, list[str]]]:
  return [(doc.relative_to(REPO).as_posix(), module, argv)
          for doc in DOCS for module, argv in commands(doc.read_text())]


COMMANDS = all_commands()


def _id(command: tuple[str, str, list[str]]) -> str:
  doc, module, argv = command
  return f"{doc}: {module} {' '.join(argv)}"[:150]


# ------------------------------------------------------- the child's side


def _module_flags(module_name: str, cache: dict) -> tuple[object, list]:
  """(module, its flag objects), taken out of absl's global FLAGS so that
  the next entry point can define flags of the same names."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  if module_name not in cache:
    module = importlib.import_module(module_name)
    defined = list(flags.FLAGS.flags_by_module_dict().get(module_name, []))
    for flag in defined:
      delattr(flags.FLAGS, flag.name)
    cache[module_name] = (module, defined)
  return cache[module_name]


def _parse(module_name: str, argv: list[str], cache: dict) -> None:
  """Parses argv as `python -m module_name` would; raises on any error."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  from dec_jax.runner import run as run_lib  # pylint: disable=g-import-not-at-top
  path = REPO.joinpath(*module_name.split(".")).with_suffix(".py")
  if not path.is_file():
    raise FileNotFoundError(f"no entry point {path.relative_to(REPO)}")
  module, defined = _module_flags(module_name, cache)
  if not defined:  # not an absl program: positional arguments only
    bad = [a for a in argv if a.startswith("-")]
    if bad:
      raise ValueError(f"{module_name} defines no flags, got {bad}")
    return
  if hasattr(module, "expand_config_shorthands"):
    argv = run_lib.expand_config_shorthands(argv)
  argv = ["prog", *argv]
  values = flags.FlagValues()
  config_names = []
  for flag in defined:
    if isinstance(flag.parser, config_flags.config_flags.ConfigFileFlagParser):
      # Defined anew: its `--config.<field>` flags come from argv and the file.
      config_flags.DEFINE_config_file(flag.name, flag.default_unparsed,
                                      flag.help, flag_values=values,
                                      sys_argv=argv)
      config_names.append(flag.name)
    else:
      values[flag.name] = copy.deepcopy(flag)
  rest = values(argv)  # unknown flags, bad values, missing required flags
  if rest[1:]:
    raise ValueError(f"unexpected positional arguments {rest[1:]}")
  for name in config_names:
    _check_config(module_name, values, values[name].value)


def _check_config(module_name: str, values, config) -> None:
  """What the entry point checks before it computes anything: the config's
  members and fields (main), each cell of the grid (sweep)."""
  from dec_jax.runner import run as run_lib  # pylint: disable=g-import-not-at-top
  if module_name == "experiments.main":
    run_lib.validate(config)
  elif module_name == "experiments.sweep":
    from dec_jax.apps import sweep  # pylint: disable=g-import-not-at-top
    for _, overrides in sweep.cells(sweep.parse_grid(values["grid"].value)):
      run_lib.validate(sweep.apply_overrides(config, overrides))


def child() -> None:
  """Reads [[module, argv], ...] on stdin; writes one error (or null) per
  command on stdout, as JSON."""
  sys.path.insert(0, str(REPO))
  cache, errors = {}, []
  for module_name, argv in json.load(sys.stdin):
    try:
      _parse(module_name, argv, cache)
      errors.append(None)
    except BaseException as e:  # pylint: disable=broad-except
      errors.append(f"{type(e).__name__}: {e}")
  json.dump(errors, sys.stdout)


# ------------------------------------------------------------------ tests


def parse_in_child(commands_: list[tuple[str, list[str]]]) -> list:
  proc = subprocess.run(
      [sys.executable, __file__], input=json.dumps(commands_), cwd=REPO,
      capture_output=True, text=True, timeout=600, check=False,
      env={**__import__("os").environ, "JAX_PLATFORMS": "cpu"})
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout)


# Misspelt commands the check must reject, each with a word of its error.
_MAIN = ["--config=experiments/configs/default.py", "--workdir=runs/x"]
MISSPELT = [
    ("experiments.main", _MAIN + ["--config.dec.update_intervl=140"],
     "update_intervl"),
    ("experiments.main", _MAIN + ["--config.modle.kind=conv"], "modle"),
    ("experiments.main", _MAIN + ["--num_device=2"], "num_device"),
    ("experiments.main", _MAIN + ["--config.seed=S"], "seed"),
    ("experiments.main", _MAIN + ["--config.method=decc"], "decc"),
    ("experiments.main", _MAIN + ["--config.grid={\"model.dims\": [1, 2]}"],
     "model.dims"),
    ("experiments.main", ["--config=experiments/configs/nosuch.py",
                          "--workdir=runs/x"], "nosuch.py"),
    ("experiments.main", ["--config=experiments/configs/default.py"],
     "workdir"),
    ("experiments.sweep", _MAIN + ["--grid=dec.update_intervl=70,140"],
     "update_intervl"),
    ("experiments.bench", ["--seeds=1"], "seeds"),
    ("experiments.mian", ["--workdir=runs/x"], "experiments/mian.py"),
    ("experiments.summarize", ["--workdir=runs/x"], "defines no flags"),
]


@pytest.fixture(scope="module")
def parse_errors() -> dict:
  """One child for all: the docs' commands, then MISSPELT."""
  batch = [(module, argv) for _, module, argv in COMMANDS]
  errors = parse_in_child(batch + [(m, argv) for m, argv, _ in MISSPELT])
  return {"docs": {_id(c): e for c, e in zip(COMMANDS, errors)},
          "misspelt": errors[len(batch):]}


def test_the_docs_hold_commands_of_every_kind():
  modules = {module for _, module, _ in COMMANDS}
  assert {"experiments.main", "experiments.sweep", "experiments.bench",
          "experiments.predict", "experiments.report",
          "experiments.organize"} <= modules


@pytest.mark.parametrize("command", COMMANDS, ids=_id)
def test_command_parses(command, parse_errors):
  error = parse_errors["docs"][_id(command)]
  assert error is None, error


def test_a_misspelt_command_is_caught(parse_errors):
  """The check fails where the entry point would: a flag or a config field
  misspelt, a value of the wrong type or name, a missing file or flag."""
  missed = [(m, argv, error) for (m, argv, word), error
            in zip(MISSPELT, parse_errors["misspelt"])
            if error is None or word not in error]
  assert not missed, missed


def test_commands_are_read_across_continuations_and_comments():
  text = ("```bash\n$ XLA_FLAGS=--x=4 python -m experiments.main \\\n"
          "    --config=a.py --workdir=runs/a  # a comment --config.x=1\n"
          "python -m experiments.report --workdir=runs/a && echo done\n"
          "```\nNot a command: python -m experiments.main --bogus\n")
  assert commands(text) == [
      ("experiments.main", ["--config=a.py", "--workdir=runs/a"]),
      ("experiments.report", ["--workdir=runs/a"])]


# ------------------------------------------------------------------ links


def _outside_code(text: str) -> str:
  text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
  return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
  """GitHub's anchor of a heading."""
  text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
  return text.replace(" ", "-")


def anchors(path: pathlib.Path) -> set[str]:
  text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
  return {slug(h) for h in re.findall(r"^#+\s+(.*)$", text, re.M)}


def links(doc: pathlib.Path) -> list[str]:
  return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", _outside_code(doc.read_text()))


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_relative_links_and_images_resolve(doc):
  broken = []
  for target in links(doc):
    if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
      continue
    path, _, anchor = target.partition("#")
    file = (doc.parent / path).resolve() if path else doc
    if not file.exists():
      broken.append(f"{target}: no file {file}")
    elif anchor and file.suffix == ".md" and anchor not in anchors(file):
      broken.append(f"{target}: no heading #{anchor} in {file.name}")
  assert not broken, broken


def test_every_picture_in_docs_is_shown_somewhere():
  shown = {(doc.parent / t).resolve() for doc in DOCS for t in links(doc)}
  pictures = sorted((REPO / "docs").glob("*.png"))
  assert pictures and not [p.name for p in pictures if p not in shown]


# ------------------------------------------------------- README and paths


def test_readme_gives_the_test_command_that_ci_runs():
  ci = (REPO / ".ci" / "run").read_text()
  [command] = [line for line in ci.splitlines() if "pytest" in line
               and not line.lstrip().startswith("#")]
  readme_blocks = [b.strip() for b in fenced_blocks((REPO / "README.md").read_text())]
  assert command.strip() in readme_blocks


def test_readme_stays_short():
  assert len((REPO / "README.md").read_text().splitlines()) <= 150


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_no_machine_paths(doc):
  lines = [f"{i}: {line}" for i, line in enumerate(doc.read_text().splitlines(), 1)
           if MACHINE_PATHS.search(line)]
  assert not lines, lines


if __name__ == "__main__":
  child()
