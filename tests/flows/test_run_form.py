"""The Prefect run form of every flow: plain-text descriptions (no reST), every field described."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from prefect.utilities.callables import parameter_schema

from bandselect.flows import compare_selectors, process_campaign, select_bands

MARKUP = re.compile(r":(func|class|meth|mod|attr|data|obj|ref):|``|^-{3,}$|\.\. ", re.MULTILINE)


def _descriptions(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                yield path, value
            else:
                yield from _descriptions(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _descriptions(value, f"{path}/{index}")


@pytest.mark.parametrize("flow", [select_bands, process_campaign, compare_selectors], ids=lambda f: f.name)
def test_run_form_is_plain_text_and_complete(flow: Any) -> None:
    schema = parameter_schema(flow.fn).model_dump()
    marked = [(path, text) for path, text in _descriptions(schema) if MARKUP.search(text)]
    assert not marked, marked
    undescribed = [
        f"{name}.{field}"
        for name, definition in schema["definitions"].items()
        for field, prop in definition.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert not undescribed, undescribed
    assert all(definition.get("description") for definition in schema["definitions"].values())
