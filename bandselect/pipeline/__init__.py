"""Pipelines of nodes: ports, graph, YAML configuration, node registry, persistence.

One job per module, imports pointing one way (see :mod:`bandselect.pipeline.graph`):

- ``node.py``: :class:`Node`, :class:`PortSpec`, :class:`PortRef`, :class:`StatisticsRequest`,
  :func:`check_ports_compatible` and the capability protocols;
- ``registry.py``: :func:`register_node`, :func:`get_node_class`, :func:`available_nodes`;
- ``config.py``: the YAML form without graphs: :func:`load_yaml`, :func:`build_node`, :func:`dump_yaml`;
- ``graph.py``: :class:`PipelineGraph` (nodes, connections, checks, execution), :class:`Connection`,
  :class:`DataSource`;
- ``persistence.py``: :class:`Pipeline` (the graph plus ``from_yaml``/``to_yaml``/``save``/``load``),
  :func:`pipeline_from_config`, :func:`pipeline_to_config`.
"""

from __future__ import annotations

from bandselect.pipeline.config import build_node, dump_yaml, load_yaml
from bandselect.pipeline.graph import Connection, DataSource, PipelineGraph
from bandselect.pipeline.node import (
    Node,
    PortDType,
    PortRef,
    PortSpec,
    StatisticsRequest,
    check_ports_compatible,
)
from bandselect.pipeline.persistence import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    Pipeline,
    SuppliedNode,
    pipeline_from_config,
    pipeline_to_config,
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
    "PipelineGraph",
    "PortDType",
    "PortRef",
    "PortSpec",
    "StatisticsRequest",
    "SuppliedNode",
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
