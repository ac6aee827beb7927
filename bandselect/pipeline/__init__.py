"""Pipelines of nodes: ports, graph, YAML configuration, node registry.

Public API: :class:`Node`, :class:`PortSpec`, :class:`PortRef`, :class:`StatisticsRequest`,
:func:`check_ports_compatible` (``node.py``); :class:`Pipeline`, :class:`Connection`,
:class:`DataSource` (``graph.py``); :func:`register_node`, :func:`get_node_class`,
:func:`available_nodes` (``registry.py``); :func:`load_yaml`, :func:`pipeline_from_config`,
:func:`pipeline_to_config` (``config.py``).
"""

from __future__ import annotations

from bandselect.pipeline.config import (
    build_node,
    dump_yaml,
    load_yaml,
    pipeline_from_config,
    pipeline_to_config,
)
from bandselect.pipeline.graph import CONFIG_FILE, WEIGHTS_FILE, Connection, DataSource, Pipeline
from bandselect.pipeline.node import (
    Node,
    PortDType,
    PortRef,
    PortSpec,
    StatisticsRequest,
    check_ports_compatible,
)
from bandselect.pipeline.registry import (
    ENTRY_POINT_GROUP,
    available_nodes,
    get_node_class,
    register_node,
    registered_name,
    unregister_node,
)

__all__ = [
    "CONFIG_FILE",
    "ENTRY_POINT_GROUP",
    "WEIGHTS_FILE",
    "Connection",
    "DataSource",
    "Node",
    "Pipeline",
    "PortDType",
    "PortRef",
    "PortSpec",
    "StatisticsRequest",
    "available_nodes",
    "build_node",
    "check_ports_compatible",
    "dump_yaml",
    "get_node_class",
    "load_yaml",
    "pipeline_from_config",
    "pipeline_to_config",
    "register_node",
    "registered_name",
    "unregister_node",
]
