"""The Examples sections of every module under ``bandselect/`` run and give the documented output.

One test per module, found by walking the package, so a new module's examples run without being listed.
Examples that need servers are marked ``# doctest: +SKIP`` in their docstring.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import bandselect

OPTION_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _all_module_names() -> list[str]:
    names = [bandselect.__name__]
    names += [info.name for info in pkgutil.walk_packages(bandselect.__path__, prefix="bandselect.")]
    return sorted(names)


MODULE_NAMES = _all_module_names()


def test_every_package_is_walked() -> None:
    # Guards the walk itself: a broken __path__ or prefix would make every doctest test vanish silently.
    for package in ("selectors", "stats", "store", "training", "pipeline", "nodes", "evaluation", "flows"):
        assert any(name.startswith(f"bandselect.{package}.") for name in MODULE_NAMES), package
    assert "bandselect.validation" in MODULE_NAMES


@pytest.mark.parametrize("module_name", MODULE_NAMES)
def test_docstring_examples_run(module_name: str) -> None:
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=OPTION_FLAGS)
    report: list[str] = []
    for test in finder.find(module, module_name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
