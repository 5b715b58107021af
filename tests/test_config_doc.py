"""docs/config.md documents exactly the fields of the default config: every
leaf of `get_config()` (dotted), with its default, and no field that does
not exist. A new field, a renamed one or a changed default fails here until
the reference says so."""

import pathlib
import re

from dec_jax.runner import config as config_lib

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "config.md"


def leaves(tree: dict, prefix: str = "") -> dict:
  """{dotted key: value} of every leaf of a nested dict."""
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(leaves(value, f"{prefix}{key}."))
    else:
      out[prefix + key] = value
  return out


def documented() -> dict:
  """{key: default as written} of the reference's table rows
  `| \\`key\\` | \\`default\\` | meaning |`."""
  rows = re.findall(r"^\|\s*`([\w.]+)`\s*\|\s*`([^`]*)`\s*\|", DOC.read_text(),
                    re.M)
  keys = [key for key, _ in rows]
  assert len(keys) == len(set(keys)), "a key is documented twice"
  return dict(rows)


def as_written(value) -> str:
  """How the reference writes a default: strings bare ('' when empty),
  everything else as Python's repr."""
  if isinstance(value, str):
    return value or "''"
  return repr(value)


def test_every_config_field_is_documented_and_every_documented_key_exists():
  fields = leaves(config_lib.get_config().to_dict())
  docs = documented()
  missing = sorted(set(fields) - set(docs))
  unknown = sorted(set(docs) - set(fields))
  assert not missing, (f"fields missing from {DOC.name} (add a row "
                       f"'| `key` | `default` | meaning |'): {missing}")
  assert not unknown, f"{DOC.name} documents keys the config lacks: {unknown}"


def test_documented_defaults_are_the_config_defaults():
  fields = leaves(config_lib.get_config().to_dict())
  docs = documented()
  wrong = {key: (docs[key], as_written(value)) for key, value in fields.items()
           if key in docs and docs[key] != as_written(value)}
  assert not wrong, f"(documented, actual) defaults differ: {wrong}"
