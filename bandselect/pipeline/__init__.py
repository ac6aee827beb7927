"""Pipelines of nodes: ports, graph, YAML configuration, node registry."""
