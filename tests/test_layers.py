"""The library's layers point one way: errors, parallel (foundations) ->
core (math) -> nn (models) -> train
(loops over stacked state) -> methods -> runner -> apps. A module imports
only from its own layer or those below, never from `experiments`, and the
import graph has no cycle (lazy imports of optional heavy dependencies
inside functions are not counted)."""

import ast
import pathlib

LIBRARY = pathlib.Path(__file__).resolve().parent.parent / "dec_jax"
ORDER = ["errors", "parallel", "core", "nn", "train", "methods", "runner", "apps"]


def _module_imports(path: pathlib.Path) -> set[str]:
  """The dec_jax / experiments modules imported at the top of a file."""
  found = set()
  for node in ast.parse(path.read_text()).body:
    if isinstance(node, ast.ImportFrom) and node.module:
      found.add(node.module)
      found.update(f"{node.module}.{a.name}" for a in node.names)
    elif isinstance(node, ast.Import):
      found.update(a.name for a in node.names)
  return {m for m in found if m.split(".")[0] in ("dec_jax", "experiments")}


def _layer(module: str) -> str:
  return module.split(".")[1]


def _graph() -> dict[str, set[str]]:
  modules = {}
  for path in LIBRARY.rglob("*.py"):
    parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
    name = ".".join(p for p in parts if p != "__init__")
    modules[name] = _module_imports(path)
  return {name: {m for m in deps if m in modules and m != name}
          for name, deps in modules.items()} | {
              "__experiments__": {name for name, deps in modules.items()
                                  if any(m.startswith("experiments")
                                         for m in deps)}}


def test_every_module_is_in_a_layer():
  graph = _graph()
  for name in graph:
    if name not in ("dec_jax", "__experiments__"):
      assert _layer(name) in ORDER, name


def test_imports_point_down_only():
  graph = _graph()
  for name, deps in graph.items():
    if name in ("dec_jax", "__experiments__"):
      continue
    for dep in deps:
      if dep == "dec_jax":
        continue
      assert ORDER.index(_layer(dep)) <= ORDER.index(_layer(name)), (
          f"{name} imports {dep}, a layer above it")


def test_the_library_never_imports_experiments():
  assert not _graph()["__experiments__"]


def test_no_import_cycle():
  graph = _graph()
  graph.pop("__experiments__")
  state = {}

  def visit(node, path):
    state[node] = "open"
    for dep in graph.get(node, ()):
      assert state.get(dep) != "open", " -> ".join(path + [dep])
      if dep not in state:
        visit(dep, path + [dep])
    state[node] = "done"

  for node in graph:
    if node not in state:
      visit(node, [node])


def test_no_import_inside_a_function_points_up():
  """Lazy imports (inside functions) also point down: the runner does not
  reach up to the applications (plots come through `after_member`).
  Imports for type annotations only (`if TYPE_CHECKING:`) are not run."""
  for path in LIBRARY.rglob("*.py"):
    name = ".".join(path.relative_to(LIBRARY.parent).with_suffix("").parts)
    if path.name == "__init__.py" or _layer(name) not in ORDER:
      continue
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree)
                   if isinstance(block, ast.If)
                   and getattr(block.test, "id", "") == "TYPE_CHECKING"
                   for n in ast.walk(block)}
    for node in ast.walk(tree):
      if id(node) in typing_only:
        continue
      if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
          "dec_jax."):
        dep = node.module
        if dep.split(".")[1] in ORDER:
          assert ORDER.index(_layer(dep)) <= ORDER.index(_layer(name)), (
              f"{name} imports {dep}, a layer above it")


def test_no_library_function_is_longer_than_a_screen():
  """Functions of at most 60 lines (docstring included): the brief's rule."""
  long = []
  for path in LIBRARY.rglob("*.py"):
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        if node.end_lineno - node.lineno + 1 > 60:
          long.append(f"{path.name}:{node.lineno} {node.name}")
  assert not long, long
