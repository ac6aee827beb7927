"""The modules of ``bandselect.pipeline`` import each other one way: no cycle, no import inside a function."""

from __future__ import annotations

import ast
import graphlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import bandselect.pipeline

PACKAGE = "bandselect.pipeline"
PACKAGE_DIR = Path(bandselect.pipeline.__file__).parent
SUBMODULES = sorted(path.stem for path in PACKAGE_DIR.glob("*.py") if path.stem != "__init__")
INIT = "__init__"


def _imports(module: str) -> list[tuple[str, int, bool]]:
    """``(imported pipeline module, line, at module level)`` for every import statement of ``module``.

    Every statement counts, wherever it is: in a function, under ``if TYPE_CHECKING:``, or a string passed
    to ``importlib.import_module``. ``from bandselect.pipeline import X`` counts as the submodule ``X``
    when there is one, else as the package's ``__init__``.
    """
    tree = ast.parse((PACKAGE_DIR / f"{module}.py").read_text(encoding="utf-8"))
    top_level = {id(statement) for statement in tree.body}
    found: list[tuple[str, int, bool]] = []

    def add(target: str, node: ast.AST) -> None:
        if target == PACKAGE:
            found.append((INIT, node.lineno, id(node) in top_level))  # type: ignore[attr-defined]
        elif target.startswith(PACKAGE + "."):
            found.append((target.split(".")[2], node.lineno, id(node) in top_level))  # type: ignore[attr-defined]

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this package
                base = ".".join([PACKAGE, *([base] if base else [])])
            if base == PACKAGE:
                for alias in node.names:
                    add(f"{PACKAGE}.{alias.name}" if alias.name in SUBMODULES else PACKAGE, node)
            else:
                add(base, node)
        elif isinstance(node, ast.Call) and node.args:
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            first = node.args[0]
            if name in {"import_module", "__import__"} and isinstance(first, ast.Constant):
                add(str(first.value), node)
    return found


def _graph() -> dict[str, set[str]]:
    return {module: {target for target, _, _ in _imports(module)} for module in [INIT, *SUBMODULES]}


def test_the_import_graph_has_no_cycle_and_points_one_way() -> None:
    graph = _graph()
    assert {"node", "registry", "config", "graph", "persistence"} <= set(SUBMODULES)
    order = list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on a loop
    assert order[-1] == INIT
    assert all(INIT not in graph[module] for module in SUBMODULES), "a submodule imports the package"
    # The loop this replaced: the graph knows nothing of YAML or files, the YAML form nothing of graphs.
    assert graph["graph"].isdisjoint({"config", "persistence"})
    assert graph["config"].isdisjoint({"graph", "persistence"})
    assert {"graph", "config"} <= graph["persistence"]
    assert all("persistence" not in graph[module] for module in SUBMODULES)


def test_no_pipeline_module_is_imported_lazily() -> None:
    lazy = [
        f"{module}.py:{line} imports {target}"
        for module in [INIT, *SUBMODULES]
        for target, line, at_top in _imports(module)
        if not at_top
    ]
    assert lazy == []


def test_the_ast_scan_sees_lazy_and_type_checking_imports(tmp_path: Path, monkeypatch) -> None:
    # The scan above must be able to fail: the old config.py pattern is found and flagged as lazy.
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE_DIR", tmp_path)
    (tmp_path / "old_config.py").write_text(
        textwrap.dedent(
            """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from bandselect.pipeline.graph import Pipeline
            def build():
                from bandselect.pipeline.graph import Pipeline
                from . import node
            """
        )
    )
    assert [(target, at_top) for target, _, at_top in _imports("old_config")] == [
        ("graph", False),
        ("graph", False),
        ("node", False),
    ]


_EVERY_ORDER = """
import importlib, json, sys, types
from pathlib import Path

package, package_dir, submodules = json.loads(sys.argv[1])

def reset(bypass_init):
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]
    if bypass_init:  # the submodules on their own: a stub package, so __init__ does not run first
        stub = types.ModuleType(package)
        stub.__path__ = [package_dir]
        sys.modules[package] = stub

def loaded():
    return {m for m in submodules if f"{package}.{m}" in sys.modules}

# 1. As users import it (the package's __init__ runs first): each module as the first import.
for first in [package, *(f"{package}.{m}" for m in submodules)]:
    reset(bypass_init=False)
    importlib.import_module(first)
    assert sys.modules[package].Pipeline.__module__ == package + ".persistence", first

# 2. Every order of the submodules, __init__ bypassed. Importing a module loads what it imports, so two
# orders that trigger loading in the same sequence behave the same; every such sequence is run once.
sequences = 0
def explore(prefix):
    global sequences
    reset(bypass_init=True)
    for module in prefix:
        importlib.import_module(f"{package}.{module}")
    remaining = [m for m in submodules if m not in loaded()]
    if not remaining:
        sequences += 1
    for module in remaining:
        explore([*prefix, module])

explore([])
print(json.dumps({"sequences": sequences}))
"""


def test_every_module_imports_in_every_order_in_a_fresh_interpreter() -> None:
    root = PACKAGE_DIR.parents[1]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", _EVERY_ORDER, json.dumps([PACKAGE, str(PACKAGE_DIR), SUBMODULES])],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # The interpreter met exactly the loading sequences the static import graph predicts: no import
    # happens at run time that the scan above does not see.
    assert json.loads(result.stdout.strip().splitlines()[-1])["sequences"] == _predicted_sequences()


def _predicted_sequences() -> int:
    graph = _graph()
    closure = {module: {module} for module in SUBMODULES}
    for module in graphlib.TopologicalSorter(graph).static_order():
        if module != INIT:
            for target in graph[module]:
                closure[module] |= closure[target]

    def count(loaded: frozenset[str]) -> int:
        remaining = [m for m in SUBMODULES if m not in loaded]
        return 1 if not remaining else sum(count(loaded | closure[m]) for m in remaining)

    return count(frozenset())
