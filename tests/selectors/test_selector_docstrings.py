"""Every Examples section of the selector modules runs and gives the documented output."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "bandselect.selectors.base",
    "bandselect.selectors.soft",
    "bandselect.selectors.fixed",
    "bandselect.selectors.supervised",
    "bandselect.selectors.regularizers",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
