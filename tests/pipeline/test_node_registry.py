"""Node registry: registration, lookup with close matches, lazy entry-point plugins and clashes."""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap

import pytest
import torch

from bandselect.errors import ConfigError, PipelineError
from bandselect.pipeline import (
    Node,
    Pipeline,
    PortSpec,
    available_nodes,
    get_node_class,
    register_node,
    registered_name,
    registry,
    unregister_node,
)


class Identity(Node):
    INPUT_PORTS = (PortSpec("x", torch.float32, ("N",)),)
    OUTPUT_PORTS = (PortSpec("x", torch.float32, ("N",)),)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"x": x}


def test_register_lookup_and_unregister() -> None:
    register_node(Identity, name="RegistryTestIdentity")
    try:
        assert get_node_class("RegistryTestIdentity") is Identity
        assert "RegistryTestIdentity" in available_nodes()
        assert registered_name(Identity) == "RegistryTestIdentity"
        register_node(Identity, name="RegistryTestIdentity")  # same class again: fine

        class Other(Identity):
            pass

        with pytest.raises(PipelineError, match=r"already registered to .*Identity"):
            register_node(Other, name="RegistryTestIdentity")
    finally:
        unregister_node("RegistryTestIdentity")
    with pytest.raises(ConfigError, match="unknown node type 'RegistryTestIdentity'"):
        get_node_class("RegistryTestIdentity")
    with pytest.raises(ConfigError, match="cannot unregister"):
        unregister_node("RegistryTestIdentity")


def test_decorator_forms_and_non_nodes() -> None:
    @register_node
    class RegistryTestDecorated(Identity):
        pass

    @register_node(name="RegistryTestAlias")
    class Aliased(Identity):
        pass

    try:
        assert get_node_class("RegistryTestDecorated") is RegistryTestDecorated
        assert get_node_class("RegistryTestAlias") is Aliased
    finally:
        unregister_node("RegistryTestDecorated")
        unregister_node("RegistryTestAlias")
    with pytest.raises(PipelineError, match=r"a subclass of bandselect\.pipeline\.Node"):
        register_node(dict, name="RegistryTestDict")  # type: ignore[type-var]


def test_unknown_type_suggests_close_names() -> None:
    register_node(Identity, name="RegistryTestIdentity")
    try:
        with pytest.raises(ConfigError, match="did you mean 'RegistryTestIdentity'"):
            get_node_class("RegistryTestIdentiy")
    finally:
        unregister_node("RegistryTestIdentity")


def test_builtin_selectors_resolve_without_importing_them_first() -> None:
    if importlib.util.find_spec("bandselect.selectors") is None:
        pytest.skip("bandselect.selectors not written yet")
    assert "SoftChannelSelector" in available_nodes()
    assert get_node_class("SoftChannelSelector").__module__.startswith("bandselect.selectors")


PLUGIN_SOURCE = """
import torch
from bandselect.pipeline import Node, PortSpec

class Doubler(Node):
    INPUT_PORTS = (PortSpec("x", torch.float32, ("N",)),)
    OUTPUT_PORTS = (PortSpec("y", torch.float32, ("N",)),)

    def __init__(self, factor: float = 2.0):
        super().__init__(factor=factor)
        self.factor = factor

    def forward(self, x):
        return {"y": x * self.factor}

NOT_A_NODE = 3
"""


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """Install a real plugin module and declare entry points for it (restored afterwards)."""
    (tmp_path / "registry_test_plugin.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    declared: list[importlib.metadata.EntryPoint] = []

    def fake_entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        assert group == registry.ENTRY_POINT_GROUP
        return list(declared)

    monkeypatch.setattr(registry.importlib.metadata, "entry_points", fake_entry_points)
    monkeypatch.setattr(registry, "_PLUGINS", None)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    yield declared
    sys.modules.pop("registry_test_plugin", None)


def _entry_point(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=value, group=registry.ENTRY_POINT_GROUP)


def test_plugin_is_loaded_lazily_and_usable_from_yaml(plugins) -> None:
    plugins.append(_entry_point("Doubler", "registry_test_plugin:Doubler"))
    assert "Doubler" in available_nodes()
    assert "registry_test_plugin" not in sys.modules  # listed, not imported
    pipeline = Pipeline.from_yaml("nodes:\n  d:\n    type: Doubler\n    config: {factor: 3.0}\n")
    assert "registry_test_plugin" in sys.modules
    # a plugin node has no data port to connect to (N,) here; call it through the pipeline's node
    out = pipeline.nodes["d"](x=torch.ones(2))
    torch.testing.assert_close(out["y"], torch.full((2,), 3.0))
    assert registered_name(type(pipeline.nodes["d"])) == "Doubler"


def test_plugin_name_clashes_are_errors(plugins) -> None:
    register_node(Identity, name="RegistryTestClash")
    plugins.append(_entry_point("RegistryTestClash", "registry_test_plugin:Doubler"))
    registry._PLUGINS = None  # entry points are listed once per process; re-list the new declaration
    with pytest.raises(PipelineError, match="clashes with a registered node type"):
        get_node_class("RegistryTestClash")
    # the other way round: registering a name a plugin declares
    plugins.append(_entry_point("Doubler", "registry_test_plugin:Doubler"))
    registry._PLUGINS = None
    with pytest.raises(PipelineError, match="a name no installed plugin declares"):
        register_node(Identity, name="Doubler")


def test_two_plugins_with_one_name_and_non_node_plugin(plugins) -> None:
    plugins.append(_entry_point("Twice", "registry_test_plugin:Doubler"))
    plugins.append(_entry_point("Twice", "other_package:Doubler"))
    with pytest.raises(PipelineError, match="declared twice"):
        available_nodes()
    plugins.clear()
    registry._PLUGINS = None
    plugins.append(_entry_point("Three", "registry_test_plugin:NOT_A_NODE"))
    with pytest.raises(PipelineError, match=r"a subclass of bandselect\.pipeline\.Node"):
        get_node_class("Three")
