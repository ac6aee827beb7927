"""The YAML form of pipelines, in the seed's layout: text <-> plain structure <-> node definitions.

.. code-block:: yaml

    nodes:
      selector:
        type: SoftChannelSelector      # a registered node type (see bandselect.pipeline.registry)
        config:                        # the constructor's keyword arguments
          n_select: 3
          input_channels: 61
      top_k:
        type: TopKIndices
        config: {k: 3}
    connections:
      - [data.cube, selector.data]     # data.cube, data.mask, data.wavelengths: the data source
      - [selector.weights, top_k.weights]

This module knows nothing of graphs: it parses text (:func:`load_yaml`, ``yaml.safe_load``), checks the
structure (:func:`check_structure`), builds one node from its definition (:func:`build_node`, node types
only from the registry) and writes definitions and text back (:func:`node_definition`,
:func:`dump_yaml`). Turning a structure into a :class:`~bandselect.pipeline.Pipeline` and back is
:mod:`bandselect.pipeline.persistence`, which imports this module (never the reverse).

Every mistake is a :class:`~bandselect.errors.ConfigError` (structure, unknown type, unknown or missing
config key) naming what is wrong and where; config values are validated by the node constructors.

Example
-------
>>> from bandselect.pipeline import load_yaml
>>> load_yaml("nodes: {}\\nconnections: []")
{'nodes': {}, 'connections': []}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from graphlib import CycleError, TopologicalSorter
from typing import Any

import yaml

from bandselect._yaml import parse_yaml_mapping, read_yaml_source
from bandselect.errors import BandSelectError, ConfigError, FileFormatError
from bandselect.names import DATA_NODE
from bandselect.pipeline._hints import did_you_mean
from bandselect.pipeline.node import Node, _constructor_parameters
from bandselect.pipeline.registry import get_node_class, registered_name

#: The value of a node's band-count option that the data's band count replaces.
AUTO = "auto"
#: Constructor options that hold the number of input bands (learnable selectors, RX, supervised selectors).
BAND_COUNT_KEYS = ("input_channels", "num_spectral_bands")

TOP_LEVEL_KEYS = ("nodes", "connections")
NODE_KEYS = ("type", "config")


def load_yaml(source: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a pipeline configuration with ``yaml.safe_load``.

    Parameters
    ----------
    source
        A path (``pathlib.Path``, or a string naming an existing file or ending in ``.yaml``/``.yml``)
        or the YAML text itself.

    Returns
    -------
    dict
        The mapping with ``nodes`` and ``connections`` (its structure is checked by
        :func:`check_structure`, not here).

    Raises
    ------
    FileFormatError
        A named file does not exist, or the text is not YAML.
    ConfigError
        The document is not a mapping.
    """
    text, where = read_yaml_source(source, "pipeline configuration", fix="check the path")
    return parse_yaml_mapping(
        text,
        f"pipeline configuration in {where}",
        expected="a mapping with keys 'nodes' and 'connections'",
        fix="start the file with 'nodes:' and 'connections:'",
        yaml_what=f"cannot parse {where}",
        yaml_error=FileFormatError,
        yaml_fix="fix the YAML syntax (indentation, brackets, colons)",
    )


def resolve_band_counts(
    options: Mapping[str, Any], n_bands: int, *, node_type: type[Node] | None = None
) -> dict[str, Any]:
    """A node's options with ``auto`` band counts (:data:`BAND_COUNT_KEYS`) set to ``n_bands``.

    With ``node_type``, a band-count option the constructor takes but ``options`` omits is filled in too
    (a comparison names selectors without knowing the sensor). The one place where ``auto`` is resolved.

    Examples
    --------
    >>> resolve_band_counts({"n_select": 3, "input_channels": "auto"}, 61)
    {'n_select': 3, 'input_channels': 61}
    """
    resolved = dict(options)
    for key in BAND_COUNT_KEYS:
        if resolved.get(key) == AUTO:
            resolved[key] = int(n_bands)
        elif node_type is not None and key not in resolved and key in node_type.config_keys():
            resolved[key] = int(n_bands)
    return resolved


def resolve_pipeline_band_counts(config: Mapping[str, Any], n_bands: int) -> dict[str, Any]:
    """A copy of a pipeline structure with every node's ``auto`` band counts set to the channels that
    reach it: ``n_bands`` from the data, or the fixed channel count of the node output feeding its band
    input (a port whose last dimension is ``C``). Behind a :class:`ConcreteBandSelector`'s ``selected``
    (``n_select`` channels, a dimension reduction) an ``auto`` detector gets ``n_select``, not the
    sensor's band count.

    A mapping with a ``pipeline`` section (a recipe or flow config) gives that section. Raises
    :class:`ConfigError` when the structure has no ``nodes``.

    Examples
    --------
    >>> structure = {
    ...     "nodes": {
    ...         "selector": {"type": "ConcreteBandSelector", "config": {"input_channels": "auto"}},
    ...         "rx": {"type": "RXDetector", "config": {"input_channels": "auto"}},
    ...     },
    ...     "connections": [["data.cube", "selector.data"], ["selector.selected", "rx.data"]],
    ... }
    >>> nodes = resolve_pipeline_band_counts(structure, 61)["nodes"]
    >>> nodes["selector"]["config"]["input_channels"], nodes["rx"]["config"]["input_channels"]
    (61, 3)
    """
    structure = dict(config)
    if "pipeline" in structure and "nodes" not in structure:
        structure = dict(structure["pipeline"])
    nodes = structure.get("nodes")
    if not isinstance(nodes, Mapping) or not nodes:
        raise ConfigError(
            "pipeline",
            expected="a mapping with 'nodes' (and 'connections') in the seed's form",
            found=f"keys {sorted(structure)}",
            fix="see configs/select_bands.yaml for an example",
        )
    edges = _node_edges(structure.get("connections"), nodes)
    sources = {name: {edge[0] for edge in edges.get(name, [])} for name in nodes}
    try:
        order = list(TopologicalSorter(sources).static_order())
    except CycleError:  # the pipeline's own check names the cycle
        order = list(nodes)
    resolved_nodes: dict[str, Any] = {}
    built: dict[str, Node | None] = {}  # upstream nodes built to read their output sizes, once each
    for name in order:
        definition = nodes[name]
        if isinstance(definition, Mapping) and isinstance(definition.get("config"), Mapping):
            count = _arriving_channels(definition, edges.get(name, []), resolved_nodes, built, n_bands)
            definition = {**definition, "config": resolve_band_counts(definition["config"], count)}
        resolved_nodes[name] = definition
    return {**structure, "nodes": {name: resolved_nodes[name] for name in nodes}}


def _node_edges(connections: Any, nodes: Mapping[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
    """Per target node, its inputs from other nodes as ``(source node, source port, target port)``
    (the data source and malformed entries left out: the pipeline's own checks report those)."""
    edges: dict[str, list[tuple[str, str, str]]] = {}
    for pair in connections if isinstance(connections, list | tuple) else []:
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            continue
        (source, _, out_port), (target, _, in_port) = (str(p).partition(".") for p in pair)
        if source in nodes and target in nodes and source != target:
            edges.setdefault(target, []).append((source, out_port, in_port))
    return edges


def _arriving_channels(
    definition: Mapping[str, Any],
    inputs: list[tuple[str, str, str]],
    resolved: Mapping[str, Any],
    built: dict[str, Node | None],
    n_bands: int,
) -> int:
    """The channel count ``auto`` stands for in a node (``definition``, fed by ``inputs``): that of the
    fixed-size node output its band input (last dimension ``C``) is connected to, else ``n_bands``.
    ``built`` keeps the upstream nodes built for that (None: a definition that does not build)."""
    if not any(definition["config"].get(key) == AUTO for key in BAND_COUNT_KEYS) or not inputs:
        return int(n_bands)
    try:
        ports = get_node_class(str(definition.get("type"))).INPUT_PORTS.values()
    except BandSelectError:  # an unknown type: build_node names it with the close matches
        return int(n_bands)
    band_ports = {port.name for port in ports if port.shape[-1:] == ("C",)}
    sizes = set()
    for source, out_port, in_port in inputs:
        if in_port not in band_ports or source not in resolved:  # (not yet resolved: in a cycle)
            continue
        if source not in built:
            try:
                built[source] = build_node(source, resolved[source])
            except BandSelectError:  # a bad upstream definition: building the pipeline reports it
                built[source] = None
        upstream = built[source]
        if upstream is None:
            return int(n_bands)
        spec = upstream.OUTPUT_PORTS.get(out_port)
        if spec is not None and spec.shape and isinstance(spec.shape[-1], int):
            sizes.add(spec.shape[-1])
    # Several disagreeing inputs are the pipeline's error to report (its shape check names them).
    return sizes.pop() if len(sizes) == 1 else int(n_bands)


def _required_keys(cls: type[Node]) -> set[str]:
    return {name for name, p in _constructor_parameters(cls) if p.default is p.empty}


def build_node(name: str, definition: object) -> Node:
    """Build one node from its YAML definition ``{type: ..., config: {...}}``.

    Raises
    ------
    ConfigError
        Malformed definition, unknown type (close matches listed), unknown or missing config keys
        (accepted keys listed). Errors raised by the node's constructor propagate with the node named
        in a note.
    """
    if not isinstance(definition, Mapping):
        raise ConfigError(
            f"definition of node {name!r}",
            expected="a mapping with 'type' and optional 'config'",
            found=repr(definition),
            fix=f"write '{name}: {{type: NodeType, config: {{...}}}}'",
        )
    unknown = sorted(set(definition) - set(NODE_KEYS))
    if unknown:
        raise ConfigError(
            f"definition of node {name!r} has unknown key(s) {unknown}",
            expected=f"keys among {list(NODE_KEYS)}",
            found=sorted(definition),
            fix="put constructor arguments under 'config:'",
        )
    type_name = definition.get("type")
    if not isinstance(type_name, str):
        raise ConfigError(
            f"definition of node {name!r}",
            expected="a 'type' naming a registered node type",
            found=repr(type_name),
            fix="add 'type: NodeType' to the node definition",
        )
    try:
        cls = get_node_class(type_name)
    except ConfigError as exc:
        raise ConfigError(f"node {name!r}: {exc}") from exc
    config = definition.get("config") or {}
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"config of node {name!r} ({type_name})",
            expected="a mapping of constructor arguments",
            found=repr(config),
            fix="write the arguments as 'config: {key: value}'",
        )
    accepted = cls.config_keys()
    for key in config:
        if key not in accepted:
            hint = did_you_mean(str(key), sorted(accepted))
            raise ConfigError(
                f"unknown config key {key!r} for node {name!r} ({type_name})",
                expected=f"keys among {sorted(accepted)}",
                found=repr(key),
                fix=f"{hint}remove or rename the key",
            )
    missing = sorted(_required_keys(cls) - set(config))
    if missing:
        raise ConfigError(
            f"node {name!r} ({type_name}) is missing required config key(s) {missing}",
            expected=f"values for {missing}",
            found=f"config keys {sorted(config)}",
            fix=f"add {', '.join(f'{m}: ...' for m in missing)} under the node's 'config:'",
        )
    try:
        return cls(**dict(config))
    except Exception as exc:
        # Keep the constructor's own error type and message; say which YAML node it came from.
        exc.add_note(f"while building node {name!r} of type {type_name} from its YAML config")
        raise


def check_data_name(name: object, where: str) -> None:
    """Refuse the reserved name ``data`` for a node (``where``: which mapping named it)."""
    if name == DATA_NODE:
        raise ConfigError(
            f"node name {DATA_NODE!r} in {where}",
            expected=f"any name but {DATA_NODE!r}",
            found=repr(name),
            fix=f"{DATA_NODE!r} is the built-in data source (data.cube, data.mask, data.wavelengths); "
            "rename the node",
        )


def check_structure(config: object) -> tuple[dict[str, object], list[tuple[str, str]]]:
    """Check the top-level structure of a parsed configuration.

    Parameters
    ----------
    config
        The mapping :func:`load_yaml` returns (or one built in code).

    Returns
    -------
    definitions : dict
        Node name -> its (not yet checked) definition, in file order.
    connections : list of (str, str)
        The ``(source, target)`` pairs as written (``"node.port"`` each), in file order.

    Raises
    ------
    ConfigError
        Not a mapping, unknown top-level key, ``nodes`` not a mapping, ``connections`` not a list of
        string pairs, or a node named ``data``.

    Examples
    --------
    >>> check_structure({"nodes": {"s": {"type": "T"}}, "connections": [["data.cube", "s.cube"]]})
    ({'s': {'type': 'T'}}, [('data.cube', 's.cube')])
    """
    if not isinstance(config, Mapping):
        raise ConfigError(
            "pipeline configuration",
            expected="a mapping with keys 'nodes' and 'connections'",
            found=type(config).__name__,
            fix="start the file with 'nodes:' and 'connections:'",
        )
    unknown = sorted(set(config) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise ConfigError(
            f"pipeline configuration has unknown top-level key(s) {unknown}",
            expected=f"keys among {list(TOP_LEVEL_KEYS)}",
            found=sorted(config),
            fix="keep only 'nodes:' and 'connections:' at the top level",
        )
    nodes = config.get("nodes") or {}
    connections = config.get("connections") or []
    if not isinstance(nodes, Mapping):
        raise ConfigError(
            "'nodes' of the pipeline configuration",
            expected="a mapping of node name to {type, config}",
            found=type(nodes).__name__,
            fix="write 'nodes:' followed by indented 'name: {type: ..., config: ...}' entries",
        )
    if not isinstance(connections, list):
        raise ConfigError(
            "'connections' of the pipeline configuration",
            expected="a list of [source.port, target.port] pairs",
            found=type(connections).__name__,
            fix="write 'connections:' followed by '- [data.cube, selector.data]' lines",
        )
    for name in nodes:
        check_data_name(name, "'nodes'")
    pairs: list[tuple[str, str]] = []
    for index, pair in enumerate(connections):
        if (
            not isinstance(pair, list | tuple)
            or len(pair) != 2
            or not all(isinstance(end, str) for end in pair)
        ):
            raise ConfigError(
                f"connection #{index + 1} of the pipeline configuration",
                expected="a pair [source_node.port, target_node.port]",
                found=repr(pair),
                fix="write each connection as '- [data.cube, selector.data]'",
            )
        pairs.append((pair[0], pair[1]))
    return {str(name): definition for name, definition in nodes.items()}, pairs


def _plain(value: Any, where: str) -> Any:
    """Convert a config value to plain YAML-safe Python (tuples become lists)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v, where) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, where) for k, v in value.items()}
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:  # numpy scalars and 0-d arrays
        return _plain(item(), where)
    raise ConfigError(
        f"cannot write {where} to YAML",
        expected="None, bool, int, float, str, or lists/mappings of those",
        found=type(value).__name__,
        fix="pass plain Python values to the node's constructor",
    )


class _FlowList(list):
    """A list written in YAML flow style (``[data.cube, selector.data]``), as the seed writes connections."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _FlowList, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)
)


def node_definition(name: str, node: Node) -> dict[str, Any]:
    """The YAML definition ``{type, config}`` of ``node`` (registered type name, plain config values).

    Raises
    ------
    ConfigError
        The node's class is not registered, or a config value has no YAML form.
    """
    return {
        "type": registered_name(type(node)),
        "config": {k: _plain(v, f"config {k!r} of node {name!r}") for k, v in node.config.items()},
    }


def _flow_leaves(value: Any) -> Any:
    # Lists of scalars (connections, windows' bounds, target wavelengths) read best inline.
    if isinstance(value, dict):
        return {k: _flow_leaves(v) for k, v in value.items()}
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return _FlowList(value)
        return [_flow_leaves(v) for v in value]
    return value


def dump_yaml(config: Mapping[str, Any]) -> str:
    """YAML text of a pipeline structure (safe representers only, key order kept)."""
    return yaml.dump(_flow_leaves(dict(config)), Dumper=_Dumper, sort_keys=False, default_flow_style=False)
