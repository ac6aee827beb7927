"""Hostile YAML through every config loader: bounded, typed, with file, line and column.

Every loader (flow config, pipeline file, a pipeline file named by a flow config, comparison config)
must refuse each document quickly with an :class:`~bandselect.errors.InputError` whose message is short
(never the expanded input) and names what was expected and the fix.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bandselect._yaml import MAX_YAML_BYTES
from bandselect.errors import InputError
from bandselect.flows import SelectBandsConfig, load_config
from bandselect.flows.compare_selectors import CompareSelectorsConfig
from bandselect.pipeline.config import load_yaml


def _laughs(levels: int, width: int = 9) -> str:
    """The "billion laughs" document: each level refers ``width`` times to the one before."""
    names = [f"l{i}" for i in range(levels + 1)]
    lines = [f"{names[0]}: &{names[0]} [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for previous, name in itertools.pairwise(names):
        refs = ", ".join(f"*{previous}" for _ in range(width))
        lines.append(f"{name}: &{name} [{refs}]")
    return "\n".join(lines) + "\n"


# (document, a fragment the message must contain)
DOCUMENTS = {
    "aliases-8-levels": (_laughs(8), "once aliases are expanded"),
    "aliases-5-levels": (_laughs(5), "once aliases are expanded"),
    "recursive-alias": ("a: &a [1, *a]\n", "recursive aliases"),
    "too-long": ("a: " + "x" * (MAX_YAML_BYTES + 10) + "\n", "bytes"),
    "tab-indent": ("campaign: c\n\tstore: s\n", "line 2, column 1"),
    "unclosed-bracket": ("campaign: [c\nstore: s\n", "line 2, column 6"),
    "python-tag": ("campaign: !!python/object/apply:os.system [echo hi]\n", "line 1"),
    "custom-tag": ("campaign: !secret c\n", "line 1"),
    "duplicate-anchor-bad-ref": ("campaign: *missing\n", "line 1"),
    "not-utf8-like": ("campaign: \x00\n", "line 1"),
}


def _flow_config(tmp_path: Path, text: str) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(text, encoding="utf-8")
    load_config(path, SelectBandsConfig)


def _pipeline_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    load_yaml(path)


def _pipeline_named_by_flow(tmp_path: Path, text: str) -> None:
    (tmp_path / "pipeline.yaml").write_text(text, encoding="utf-8")
    config = tmp_path / "flow.yaml"
    config.write_text("campaign: c\nstore: s.zarr\noutput: o.zarr\npipeline: pipeline.yaml\n")
    load_config(config, SelectBandsConfig).pipeline_mapping()


def _comparison_config(tmp_path: Path, text: str) -> None:
    path = tmp_path / "compare.yaml"
    path.write_text(text, encoding="utf-8")
    CompareSelectorsConfig.from_yaml(path)


LOADERS: dict[str, Callable[[Path, str], None]] = {
    "flow-config": _flow_config,
    "pipeline-file": _pipeline_file,
    "pipeline-named-by-flow": _pipeline_named_by_flow,
    "comparison-config": _comparison_config,
}


@pytest.mark.parametrize("loader", LOADERS, ids=str)
@pytest.mark.parametrize("document", DOCUMENTS, ids=str)
def test_hostile_yaml_is_refused_quickly(tmp_path: Path, loader: str, document: str) -> None:
    text, fragment = DOCUMENTS[document]
    started = time.perf_counter()
    with pytest.raises(InputError) as caught:
        LOADERS[loader](tmp_path, text)
    elapsed = time.perf_counter() - started
    message = str(caught.value)
    assert fragment in message, message
    assert "expected" in message and "Fix:" in message, message
    assert len(message) < 2000, len(message)
    assert str(tmp_path) in message or "YAML text" in message  # names the file
    # Generous: bounded work is milliseconds; the unbounded version took minutes and gigabytes.
    assert elapsed < 10, elapsed


def test_validation_error_abbreviates_a_huge_value(tmp_path: Path) -> None:
    # A valid document whose one wrong value is a list of 100,000 numbers: named, not echoed.
    numbers = ", ".join("1" for _ in range(100_000))
    path = tmp_path / "flow.yaml"
    path.write_text(f"campaign: c\nstore: s.zarr\noutput: o.zarr\nlock_timeout_s: [{numbers}]\n")
    with pytest.raises(InputError) as caught:
        load_config(path, SelectBandsConfig)
    message = str(caught.value)
    assert "lock_timeout_s" in message and len(message) < 2000, message[:300]
