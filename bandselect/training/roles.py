"""Which pipeline nodes do what in gradient training: the losses summed, the metrics evaluated, the
parameters trained. Found through the capability protocols of :mod:`bandselect.pipeline.node`
(``is_loss_node``, ``Metric``, ``Freezable``), never by probing attributes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from bandselect.errors import PipelineError, TrainingError
from bandselect.pipeline import Node, Pipeline
from bandselect.pipeline.node import (
    LOSS_PORT,
    BandSelector,
    Freezable,
    Metric,
    WeightedSelector,
    is_loss_node,
)

__all__ = [
    "check_node_name",
    "is_metric_node",
    "loss_node_names",
    "metric_node_names",
    "selector_node",
    "trainable_parameters",
]


def check_node_name(pipeline: Pipeline, name: str, role: str, fix: str) -> None:
    """Raise :class:`PipelineError` unless ``name`` is a node of ``pipeline`` (``role`` names its use)."""
    if name not in pipeline.nodes:
        raise PipelineError(
            f"{role} node {name!r} is not in the pipeline",
            expected=f"one of {list(pipeline.nodes)}",
            found=repr(name),
            fix=fix,
        )


def selector_node(pipeline: Pipeline, name: str | None = None, *, learnable: bool = False) -> str:
    """The selector node whose selection is reported.

    ``name`` when given (it must be a :class:`~bandselect.pipeline.node.BandSelector`); else the first
    selector in topological order, or with ``learnable`` the pipeline's only learnable one (a selector
    that is also a :class:`~bandselect.pipeline.node.WeightedSelector`).

    Raises
    ------
    PipelineError
        ``name`` is not a node or not a selector; no selector; several learnable ones and no ``name``.
    """
    nodes = pipeline.nodes
    if name is not None:
        check_node_name(pipeline, name, "selector", "name the pipeline's selector node (`selector:`)")
        if not isinstance(nodes[name], BandSelector):
            raise PipelineError(
                f"node {name!r} ({type(nodes[name]).__name__}) is not a band selector",
                expected="a node with selection(wavelengths_nm)",
                found=type(nodes[name]).__name__,
                fix="name the selector node, e.g. a SoftChannelSelector or a supervised selector",
            )
        return name
    order = pipeline.topological_order()
    if learnable:
        candidates = [
            n for n in order if isinstance(nodes[n], BandSelector) and isinstance(nodes[n], WeightedSelector)
        ]
        if len(candidates) == 1:
            return candidates[0]
        raise PipelineError(
            "cannot tell which node is the selector to train",
            expected="exactly one learnable selector (e.g. a SoftChannelSelector)",
            found=f"{candidates}" if candidates else f"none among {list(nodes)}",
            fix="pass selector=<node name>" if candidates else "add a learnable selector to the pipeline",
        )
    for candidate in order:
        if isinstance(nodes[candidate], BandSelector):
            return candidate
    raise PipelineError(
        "pipeline selector",
        expected="a band selector node (a fixed, supervised or learnable selector)",
        found=f"nodes {[type(n).__name__ for n in nodes.values()]}",
        fix="add a selector node to the pipeline",
    )


def is_metric_node(node: Node) -> bool:
    """Whether ``node`` is a :class:`~bandselect.pipeline.node.Metric` (its ``is_metric`` is ``True``).

    A runtime protocol check only sees that the attribute exists, so its value is checked too: a node
    that sets ``is_metric = False`` is not a metric.
    """
    return isinstance(node, Metric) and node.is_metric is True


def _check_inputs_connected(pipeline: Pipeline, name: str, role: str) -> None:
    node = pipeline.nodes[name]
    missing = [
        port
        for port, spec in node.INPUT_PORTS.items()
        if not spec.optional and pipeline.source_of(name, port) is None
    ]
    if missing:
        raise TrainingError(
            f"{role} node {name!r} ({type(node).__name__}) is not connected",
            expected=f"connections into its inputs {sorted(node.INPUT_PORTS)}",
            found=f"nothing feeds {', '.join(f'{name}.{p}' for p in missing)}",
            fix=f"connect them, e.g. pipeline.connect(('head.logits', '{name}.{missing[0]}'))",
        )


def loss_node_names(pipeline: Pipeline, loss_nodes: Sequence[str] | None) -> list[str]:
    """The loss nodes whose outputs are summed: ``loss_nodes`` checked, or every loss node (topological).

    Raises
    ------
    TrainingError
        No loss node, an empty list, a listed node that is not a loss node, or one not connected.
    PipelineError
        A listed name that is not in the pipeline.
    """
    nodes = pipeline.nodes
    if loss_nodes is None:
        names = [n for n in pipeline.topological_order() if is_loss_node(nodes[n])]
        if not names:
            raise TrainingError(
                "the pipeline has no loss node",
                expected=f"at least one node with an output port named {LOSS_PORT!r}",
                found=f"nodes {list(nodes)}",
                fix="add a loss node (e.g. AnomalyBCELoss) and connect it, or pass loss_nodes=[...]",
            )
    else:
        names = list(loss_nodes)
        if not names:
            raise TrainingError(
                "loss_nodes is empty", expected="at least one loss node", found="[]", fix="leave it None"
            )
    for name in names:
        check_node_name(pipeline, name, "loss", "check the name passed in loss_nodes")
        if not is_loss_node(nodes[name]):
            raise TrainingError(
                f"node {name!r} ({type(nodes[name]).__name__}) is not a loss node",
                expected=f"an output port named {LOSS_PORT!r}",
                found=f"outputs {sorted(nodes[name].OUTPUT_PORTS)}",
                fix="list only loss nodes in loss_nodes",
            )
        _check_inputs_connected(pipeline, name, "loss")
    return names


def metric_node_names(pipeline: Pipeline, metric_nodes: Sequence[str] | None) -> list[str]:
    """The metric nodes evaluated on validation data: ``metric_nodes`` checked, or every metric node.

    Raises
    ------
    PipelineError
        A listed name that is not in the pipeline.
    TrainingError
        A metric node that is not connected.
    """
    nodes = pipeline.nodes
    if metric_nodes is None:
        names = [n for n in pipeline.topological_order() if is_metric_node(nodes[n])]
    else:
        names = list(metric_nodes)
    for name in names:
        check_node_name(pipeline, name, "metric", "check the name passed in metric_nodes")
        _check_inputs_connected(pipeline, name, "metric")
    return names


def trainable_parameters(
    pipeline: Pipeline, loss_nodes: Sequence[str], allow_frozen: Sequence[str] = ()
) -> list[torch.nn.Parameter]:
    """The parameters to optimise (``requires_grad``), after checking nothing is left frozen by mistake.

    Raises
    ------
    TrainingError
        A :class:`~bandselect.pipeline.node.Freezable` node feeding a loss is frozen and not in
        ``allow_frozen`` (the seed's "Issue 3": training would silently leave it untouched), or there is
        no trainable parameter at all; the message names the ``unfreeze()`` calls to make.
    """
    nodes = pipeline.nodes
    feeding = set(loss_nodes)
    for name in loss_nodes:
        feeding |= pipeline.upstream_of(name)
    freezable = [n for n in pipeline.topological_order() if isinstance(nodes[n], Freezable)]
    frozen = [
        name
        for name in freezable
        if name in feeding and name not in allow_frozen and not nodes[name].is_trainable
    ]
    if frozen:
        calls = "; ".join(f"pipeline.nodes[{n!r}].unfreeze()" for n in frozen)
        raise TrainingError(
            f"node {frozen[0]!r} ({type(nodes[frozen[0]]).__name__}) is frozen: it has no trainable "
            "parameters, so gradient training would leave it unchanged",
            expected="its learnable state unfrozen after the statistical initialisation",
            found=f"frozen nodes {frozen}",
            fix=f"call {calls} before training (or list it in allow_frozen=[...])",
        )
    parameters = [p for p in pipeline.parameters() if p.requires_grad]
    if not parameters:
        fix = (
            "call " + "; ".join(f"pipeline.nodes[{n!r}].unfreeze()" for n in freezable)
            if freezable
            else "add a node with trainable parameters"
        )
        raise TrainingError(
            "the pipeline has no trainable parameters",
            expected="at least one parameter with requires_grad",
            found="none (every node frozen)",
            fix=fix,
        )
    return parameters
