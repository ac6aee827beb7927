"""The registry of node types that YAML configurations may name.

A YAML file names node types (``type: SoftChannelSelector``); the type is looked up here and only here:
never as an import path taken from the file. Three sources fill the registry:

1. classes decorated with :func:`register_node` (the built-in selectors and nodes do this);
2. the built-in modules ``bandselect.selectors`` and ``bandselect.nodes``, imported on the first lookup
   (not when ``bandselect.pipeline`` is imported, which would make the layers import each other);
3. plugins declared by installed distributions in the ``bandselect.nodes`` entry-point group
   (``MyNode = "my_package.nodes:MyNode"``), loaded only when their name is looked up. A plugin whose
   name clashes with a registered node or with another plugin is an error.

Example
-------
>>> from bandselect.pipeline import Node, PortSpec, register_node, get_node_class, unregister_node
>>> import torch
>>> @register_node
... class DocExampleScale(Node):
...     INPUT_PORTS = (PortSpec("x", torch.float32, ("B", "H", "W", "C")),)
...     OUTPUT_PORTS = (PortSpec("y", torch.float32, ("B", "H", "W", "C")),)
...     def __init__(self, factor: float = 2.0):
...         super().__init__(factor=factor)
...         self.factor = factor
...     def forward(self, x):
...         return {"y": x * self.factor}
>>> get_node_class("DocExampleScale") is DocExampleScale
True
>>> unregister_node("DocExampleScale")
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from collections.abc import Callable
from typing import TypeVar, overload

from bandselect.errors import ConfigError, PipelineError
from bandselect.pipeline._hints import did_you_mean
from bandselect.pipeline.node import Node

#: Entry-point group in which installed distributions declare plugin node types.
ENTRY_POINT_GROUP = "bandselect.nodes"

#: Modules of built-in nodes, imported on the first lookup when they exist.
BUILTIN_NODE_MODULES = ("bandselect.selectors", "bandselect.nodes")

NodeT = TypeVar("NodeT", bound=type[Node])

_REGISTRY: dict[str, type[Node]] = {}
_PLUGINS: dict[str, importlib.metadata.EntryPoint] | None = None
_builtins_state = "unloaded"  # "unloaded" | "loading" | "loaded"


def _check_node_class(cls: object, name: str) -> type[Node]:
    if not (isinstance(cls, type) and issubclass(cls, Node)):
        raise PipelineError(
            f"cannot register node type {name!r}",
            expected="a subclass of bandselect.pipeline.Node",
            found=repr(cls),
            fix="derive the class from bandselect.pipeline.Node",
        )
    return cls


def _same_class(a: type, b: type) -> bool:
    # Re-executing a module (importlib.reload, doctest re-runs) creates a new class object with the same
    # qualified name; that is a re-registration, not a clash.
    return a is b or (a.__module__ == b.__module__ and a.__qualname__ == b.__qualname__)


@overload
def register_node(cls: NodeT, *, name: str | None = None) -> NodeT: ...


@overload
def register_node(cls: None = None, *, name: str | None = None) -> Callable[[NodeT], NodeT]: ...


def register_node(cls: NodeT | None = None, *, name: str | None = None) -> NodeT | Callable[[NodeT], NodeT]:
    """Register a node class under ``name`` (default: the class name) so YAML files can name it.

    Usable as ``@register_node``, ``@register_node(name="Alias")`` or ``register_node(MyNode)``.

    Parameters
    ----------
    cls
        A subclass of :class:`~bandselect.pipeline.Node`.
    name
        The type name YAML files use.

    Returns
    -------
    type
        ``cls`` unchanged (so it works as a decorator).

    Raises
    ------
    PipelineError
        ``cls`` is not a Node subclass, or another class is registered under ``name``.
    """

    def decorate(klass: NodeT) -> NodeT:
        type_name = name or getattr(klass, "__name__", repr(klass))
        _check_node_class(klass, type_name)
        existing = _REGISTRY.get(type_name)
        if existing is not None and not _same_class(existing, klass):
            raise PipelineError(
                f"cannot register node type {type_name!r}",
                expected="a name not yet registered",
                found=f"{type_name!r} already registered to {existing.__module__}.{existing.__qualname__}",
                fix="register the class under another name with register_node(cls, name=...)",
            )
        plugins = _plugins()
        if type_name in plugins:
            raise PipelineError(
                f"cannot register node type {type_name!r}",
                expected="a name no installed plugin declares",
                found=f"entry point {plugins[type_name].value!r} in group {ENTRY_POINT_GROUP!r}",
                fix="register the class under another name with register_node(cls, name=...)",
            )
        _REGISTRY[type_name] = klass
        return klass

    if cls is None:
        return decorate
    return decorate(cls)


def unregister_node(name: str) -> None:
    """Remove a registered node type (for tests and interactive sessions).

    Raises
    ------
    ConfigError
        No node type of that name is registered.
    """
    if name not in _REGISTRY:
        raise ConfigError(
            f"cannot unregister node type {name!r}",
            expected=f"one of {sorted(_REGISTRY)}",
            found=repr(name),
            fix="check the name passed to unregister_node",
        )
    del _REGISTRY[name]


def _load_builtins() -> None:
    """Import the built-in node modules once, so their ``@register_node`` decorators run."""
    global _builtins_state
    if _builtins_state != "unloaded":
        return
    _builtins_state = "loading"
    loaded = False
    try:
        for module_name in BUILTIN_NODE_MODULES:
            # Absent modules are expected while the package grows; errors inside present ones propagate.
            if importlib.util.find_spec(module_name) is not None:
                importlib.import_module(module_name)
        loaded = True
    finally:
        # A failed import is retried (and fails loudly again) on the next lookup.
        _builtins_state = "loaded" if loaded else "unloaded"


def _plugins() -> dict[str, importlib.metadata.EntryPoint]:
    """Entry points of the plugin group by name (listed once; not loaded)."""
    global _PLUGINS
    if _PLUGINS is None:
        found: dict[str, importlib.metadata.EntryPoint] = {}
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            other = found.get(entry_point.name)
            if other is not None and other.value != entry_point.value:
                raise PipelineError(
                    f"plugin node type {entry_point.name!r} is declared twice",
                    expected=f"one entry point per name in group {ENTRY_POINT_GROUP!r}",
                    found=f"{other.value!r} and {entry_point.value!r}",
                    fix="uninstall one of the two distributions or rename one entry point",
                )
            found[entry_point.name] = entry_point
        _PLUGINS = found
    return _PLUGINS


def _load_plugin(name: str) -> type[Node]:
    entry_point = _plugins()[name]
    if name in _REGISTRY:
        existing = _REGISTRY[name]
        raise PipelineError(
            f"plugin node type {name!r} clashes with a registered node type",
            expected="plugin names distinct from registered node types",
            found=f"entry point {entry_point.value!r} and {existing.__module__}.{existing.__qualname__}",
            fix="rename the plugin's entry point",
        )
    cls = _check_node_class(entry_point.load(), name)
    _REGISTRY[name] = cls
    return cls


def get_node_class(name: str) -> type[Node]:
    """Return the node class registered (or declared as a plugin) under ``name``.

    Raises
    ------
    ConfigError
        No such node type; the message lists close matches.
    PipelineError
        A plugin name clashes with a registered node type.
    """
    _load_builtins()
    if name in _REGISTRY:
        if name in _plugins():
            return _load_plugin(name)  # raises the clash error
        return _REGISTRY[name]
    if name in _plugins():
        return _load_plugin(name)
    known = available_nodes()
    hint = did_you_mean(name, known) or "check the spelling. "
    raise ConfigError(
        f"unknown node type {name!r}",
        expected=f"a registered node type ({', '.join(known) or 'none registered'})",
        found=repr(name),
        fix=f"{hint}Node types come from bandselect.pipeline.register_node or plugins in the "
        f"{ENTRY_POINT_GROUP!r} entry-point group",
    )


def available_nodes() -> list[str]:
    """Sorted names of every registered node type and every declared (not yet loaded) plugin."""
    _load_builtins()
    return sorted(set(_REGISTRY) | set(_plugins()))


def registered_name(cls: type[Node]) -> str:
    """The name under which ``cls`` is registered (what ``Pipeline.to_yaml`` writes as ``type``).

    Raises
    ------
    ConfigError
        ``cls`` is not registered, so a saved pipeline could not be loaded again.
    """
    _load_builtins()
    for type_name, klass in _REGISTRY.items():
        if klass is cls:
            return type_name
    raise ConfigError(
        f"node class {cls.__module__}.{cls.__qualname__} is not registered",
        expected="a node type registered with bandselect.pipeline.register_node",
        found="an unregistered class",
        fix=f"decorate the class with @register_node (or call register_node({cls.__name__}))",
    )
