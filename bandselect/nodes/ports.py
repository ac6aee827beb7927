"""Port declarations with a node's configured sizes, so the pipeline checks channel counts at connect time.

A node class declares symbolic shapes (``("B", "H", "W", "C")``); an instance knows its sizes (``C`` is
its ``input_channels``). :func:`sized_ports` replaces the named dims by those ints, and a node that
stores the result as its instance's ``INPUT_PORTS`` / ``OUTPUT_PORTS`` gets fixed sizes that
:meth:`bandselect.pipeline.Pipeline.connect` compares: a selector whose ``selected`` output has 3
channels cannot feed a detector built for 102 (the error names both nodes, their ports and shapes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from bandselect.pipeline.node import PortSpec

__all__ = ["sized_ports"]


def sized_ports(ports: Mapping[str, PortSpec], **sizes: int) -> dict[str, PortSpec]:
    """``ports`` with every named dim in ``sizes`` replaced by its int.

    Examples
    --------
    >>> import torch
    >>> ports = {"data": PortSpec("data", torch.float32, ("B", "H", "W", "C"))}
    >>> sized_ports(ports, C=61)["data"].shape
    ('B', 'H', 'W', 61)
    """

    def sized(dim: int | str) -> int | str:
        return sizes.get(dim, dim) if isinstance(dim, str) else dim

    return {name: replace(spec, shape=tuple(map(sized, spec.shape))) for name, spec in ports.items()}
