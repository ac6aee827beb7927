"""The pipeline graph: nodes, connections between their ports, the checks, execution in dependency order.

This module knows nothing of YAML or files. :class:`PipelineGraph` is the graph and its execution;
:class:`bandselect.pipeline.Pipeline` (in :mod:`bandselect.pipeline.persistence`) is this class plus the
YAML form and ``save``/``load``, and is what users build. Inside ``bandselect.pipeline`` every import
points one way, at module level, never from inside a function::

    _hints, node  <-  registry  <-  config  <-+
    _hints, node  <-  graph  <----------------+-  persistence  <-  __init__

so any module can be imported first, in any order (``tests/pipeline/test_import_graph.py`` proves it).
Ordering uses :class:`graphlib.TopologicalSorter`, also for naming the cycle a connection would close.
"""

from __future__ import annotations

import graphlib
import heapq
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bandselect.errors import BandSelectError, PipelineError, with_context
from bandselect.names import DATA_NODE, PORT_CUBE, PORT_LABELS, PORT_MASK, PORT_VALID, PORT_WAVELENGTHS
from bandselect.pipeline._hints import did_you_mean
from bandselect.pipeline.node import Node, PortRef, PortSpec, check_ports_compatible

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DataSource(Node):
    """The reserved ``data`` node: the pipeline's inputs, passed as keyword arguments to ``run``.

    Its output ports are ``cube`` (B, H, W, C) float32, ``mask`` (B, H, W, 1) bool (optional),
    ``wavelengths`` (C,) float32 (integer wavelengths, as the seed declares them, connect as well) and
    ``valid`` (B, H, W, 1) bool (optional: False on the pixels of an ``ignore_label``, which the nodes
    with a ``valid`` input leave out) and ``labels`` (B, H, W, 1) int64 (optional: the class ids beside
    the bool ``mask``, as the streamed datamodules give them).
    It holds no state and is not part of ``Pipeline.nodes`` or the ``state_dict``.
    """

    OUTPUT_PORTS = (
        PortSpec(PORT_CUBE, torch.float32, ("B", "H", "W", "C"), "hyperspectral cube"),
        PortSpec(PORT_MASK, torch.bool, ("B", "H", "W", 1), "label mask, True = positive", optional=True),
        PortSpec(PORT_WAVELENGTHS, torch.float32, ("C",), "band-centre wavelengths in nm"),
        PortSpec(
            PORT_VALID, torch.bool, ("B", "H", "W", 1), "False on ignored and invalid pixels", optional=True
        ),
        PortSpec(PORT_LABELS, torch.int64, ("B", "H", "W", 1), "class ids beside the mask", optional=True),
    )

    def forward(self, **data: Any) -> dict[str, Any]:
        return dict(data)


@dataclass(frozen=True)
class Connection:
    """One edge: ``source_node.source_port`` feeds ``target_node.target_port``."""

    source_node: str
    source_port: str
    target_node: str
    target_port: str

    @property
    def source(self) -> str:
        """``"node.port"`` of the source, as YAML writes it."""
        return f"{self.source_node}.{self.source_port}"

    @property
    def target(self) -> str:
        """``"node.port"`` of the target, as YAML writes it."""
        return f"{self.target_node}.{self.target_port}"

    def __str__(self) -> str:
        return f"{self.source} → {self.target}"


def _snake_case(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _starting_at(cycle: list[str], first: str) -> list[str]:
    """The cycle ``[a, b, c]`` (a feeds b feeds c feeds a) rotated to start at ``first``."""
    index = cycle.index(first)
    return cycle[index:] + cycle[:index]


def _fits(source: PortSpec, target: PortSpec) -> bool:
    """Whether ``source`` could feed ``target`` (:func:`check_ports_compatible` without raising)."""
    try:
        check_ports_compatible(source, target, where="")
    except PipelineError:
        return False
    return True


class PipelineGraph(nn.Module):
    """A graph of :class:`~bandselect.pipeline.Node` s connected port to port, and its execution.

    Users build :class:`bandselect.pipeline.Pipeline`, which is this class plus the YAML form and
    ``save``/``load``; this class alone is the graph, for code that needs no persistence.

    The reserved source node ``data`` provides the ports ``cube``, ``mask`` and ``wavelengths``; their
    values are the keyword arguments of :meth:`run`. Nodes run in topological order; each receives the
    values of its connected input ports. Unconnected optional inputs, and optional inputs fed by a data
    port that was not passed (e.g. ``mask`` at inference), are left out of the node's call.

    Nodes that are not needed can be skipped: ``run(cube=..., outputs=["top_k"])`` runs only ``top_k``
    and the nodes it depends on. Without ``outputs`` every node runs, and a node whose required input
    is unavailable (a loss that needs ``data.mask`` when no mask was passed) is an error that names the
    node, the port and what feeds it: nothing is skipped silently.

    Examples
    --------
    >>> import torch
    >>> from bandselect.pipeline import Node, PortSpec, PipelineGraph
    >>> class Scale(Node):
    ...     INPUT_PORTS = (PortSpec("cube", torch.float32, ("B", "H", "W", "C")),)
    ...     OUTPUT_PORTS = (PortSpec("scaled", torch.float32, ("B", "H", "W", "C")),)
    ...     def __init__(self, factor: float = 2.0):
    ...         super().__init__(factor=factor)
    ...         self.factor = factor
    ...     def forward(self, cube):
    ...         return {"scaled": cube * self.factor}
    >>> pipeline = PipelineGraph()
    >>> scale = Scale(factor=3.0)
    >>> pipeline.add_node(scale)
    'scale'
    >>> pipeline.connect(("data.cube", scale.cube))
    >>> out = pipeline.run(cube=torch.ones(1, 2, 2, 4))
    >>> float(out["scale"]["scaled"].sum())
    48.0
    """

    def __init__(self) -> None:
        super().__init__()
        self.nodes = nn.ModuleDict()
        self._connections: list[Connection] = []
        # Not a submodule: the data source holds no state and must not appear in state_dict.
        object.__setattr__(self, "_data_source", DataSource())

    # -- building ------------------------------------------------------------------------------
    @property
    def data(self) -> DataSource:
        """The data source node, so ``pipeline.data.cube`` is a port reference like ``"data.cube"``."""
        return self._data_source

    @property
    def connections(self) -> list[Connection]:
        """The connections in the order they were made."""
        return list(self._connections)

    def add_node(self, node: Node, name: str | None = None) -> str:
        """Add ``node`` under ``name`` and return the name.

        Parameters
        ----------
        node
            The node instance (a node can belong to one pipeline slot only).
        name
            An identifier (letters, digits, ``_``); default: the class name in snake_case, with a
            ``_2``, ``_3``, ... suffix when taken.

        Raises
        ------
        PipelineError
            Not a node, the node is already in the pipeline, the name is reserved, invalid or taken.
        """
        if not isinstance(node, Node) or isinstance(node, DataSource):
            raise PipelineError(
                "cannot add node",
                expected="an instance of a bandselect.pipeline.Node subclass",
                found=repr(type(node)),
                fix="wrap the computation in a Node subclass with declared ports",
            )
        existing = self._name_of(node)
        if existing is not None:
            raise PipelineError(
                f"cannot add {type(node).__name__} node",
                expected="a node not yet in the pipeline",
                found=f"the same instance already added as {existing!r}",
                fix="create a second instance to use the node twice",
            )
        if name is None:
            base = _snake_case(type(node).__name__)
            name, suffix = base, 2
            while name in self.nodes or name == DATA_NODE or hasattr(self.nodes, name):
                name, suffix = f"{base}_{suffix}", suffix + 1
        self._check_new_name(name)
        self.nodes[name] = node
        return name

    def _check_new_name(self, name: object) -> None:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise PipelineError(
                "invalid node name",
                expected="an identifier (letters, digits and _, not starting with a digit)",
                found=repr(name),
                fix="choose a name such as 'selector' or 'top_k'",
            )
        if name == DATA_NODE:
            raise PipelineError(
                "invalid node name",
                expected=f"any name but {DATA_NODE!r}",
                found=repr(name),
                fix=f"{DATA_NODE!r} is the reserved data source (data.cube, data.mask, data.wavelengths); "
                "choose another name",
            )
        if name in self.nodes:
            raise PipelineError(
                "invalid node name",
                expected="a name not yet used in this pipeline",
                found=f"{name!r}, already a {type(self.nodes[name]).__name__}",
                fix="choose another name",
            )
        if hasattr(self.nodes, name):
            raise PipelineError(
                "invalid node name",
                expected="a name that is not an attribute of torch.nn.ModuleDict",
                found=repr(name),
                fix=f"choose another name, e.g. {name + '_node'!r}",
            )

    def node_name(self, node: Node) -> str:
        """The name under which ``node`` was added (``"data"`` for the data source)."""
        found = self._name_of(node)
        if found is None:
            raise PipelineError(
                f"{type(node).__name__} node is not in the pipeline",
                expected="a node added with pipeline.add_node",
                found="an instance that was never added",
                fix="call pipeline.add_node(node) first",
            )
        return found

    def _name_of(self, node: object) -> str | None:
        if node is self._data_source:
            return DATA_NODE
        for name, candidate in self.nodes.items():
            if candidate is node:
                return name
        return None

    def _node(self, name: str) -> Node:
        if name == DATA_NODE:
            return self._data_source
        if name not in self.nodes:
            raise PipelineError(
                f"node {name!r} is not defined",
                expected=f"one of {[DATA_NODE, *self.nodes]}",
                found=repr(name),
                fix=f"{did_you_mean(name, [DATA_NODE, *self.nodes])}add a node definition named {name!r} "
                f"first: pipeline.add_node(node, name={name!r})",
            )
        return self.nodes[name]  # type: ignore[return-value]

    def _resolve(self, endpoint: object, role: str) -> tuple[Node, str | None, str, PortSpec]:
        """Return (node, name or None when not yet added, port, spec) for one end of a connection."""
        if isinstance(endpoint, PortRef):
            node, port = endpoint.node, endpoint.name
            name = self._name_of(node)
        elif isinstance(endpoint, str):
            node_part, dot, port = endpoint.partition(".")
            if not dot or not node_part or not port or "." in port:
                raise PipelineError(
                    f"invalid port reference {endpoint!r}",
                    expected="'node.port', e.g. 'data.cube' or 'selector.weights'",
                    found=repr(endpoint),
                    fix="write the node name and the port name separated by one dot",
                )
            node, name = self._node(node_part), node_part
        else:
            raise PipelineError(
                f"invalid {role} of a connection",
                expected="a port reference (selector.weights) or a 'node.port' string",
                found=repr(endpoint),
                fix="pass pairs such as (selector.weights, top_k.weights) or ('data.cube', 'selector.data')",
            )
        wanted, other = (
            (node.OUTPUT_PORTS, node.INPUT_PORTS)
            if role == "source"
            else (node.INPUT_PORTS, node.OUTPUT_PORTS)
        )
        label = f"{name or _snake_case(type(node).__name__)}.{port}"
        if port not in wanted:
            kind = "output" if role == "source" else "input"
            if port in other:
                found = f"{label} is an {'input' if role == 'source' else 'output'} port"
                fix = (
                    "connect an output port to an input port: (source.output, target.input)"
                    if role == "source"
                    else "the target of a connection must be an input port; swap the pair if reversed"
                )
            else:
                found = f"no port {port!r} on {type(node).__name__}"
                fix = f"{did_you_mean(port, [*wanted, *other])}check the node's port table"
            raise PipelineError(
                f"unknown {kind} port {label!r} ({type(node).__name__})",
                expected=f"one of the {kind} ports {sorted(wanted)}",
                found=found,
                fix=fix,
            )
        return node, name, port, wanted[port]

    def connect(self, *pairs: tuple[PortRef | str, PortRef | str]) -> None:
        """Connect output ports to input ports.

        Parameters
        ----------
        *pairs
            ``(source, target)`` pairs; each end a port reference (``selector.weights``,
            ``pipeline.data.cube``) or a ``"node.port"`` string (``"data.cube"``). Nodes referenced by a
            port reference and not yet added are added under their default name (the seed's
            ``pipeline.connect((selector.weights, top_k.weights))``).

        Raises
        ------
        PipelineError
            Unknown node or port, source not an output, target not an input, incompatible dtype/shape,
            the input already connected, or the connection would close a cycle (the cycle is named).
        """
        for pair in pairs:
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise PipelineError(
                    "invalid connection",
                    expected="a (source, target) pair",
                    found=repr(pair),
                    fix="pass each connection as a 2-tuple, e.g. pipeline.connect((a.out, b.inp))",
                )
            self._connect_one(pair[0], pair[1])

    def _connect_one(self, source: object, target: object) -> None:
        src_node, src_name, src_port, src_spec = self._resolve(source, "source")
        dst_node, dst_name, dst_port, dst_spec = self._resolve(target, "target")
        if src_node is dst_node:
            label = src_name or _snake_case(type(src_node).__name__)
            raise PipelineError(
                f"connecting {label}.{src_port} → {label}.{dst_port} closes a cycle",
                expected="an acyclic graph",
                found=f"cycle {label} → {label}",
                fix="a node cannot feed itself; remove this connection",
            )
        src_label = src_name or type(src_node).__name__
        dst_label = dst_name or type(dst_node).__name__
        where = f"{src_label}.{src_port} → {dst_label}.{dst_port}"
        try:
            check_ports_compatible(src_spec, dst_spec, where=where)
        except PipelineError as error:
            # The source's other outputs that would fit (a ConcreteBandSelector's (n_select, C) weights
            # into a regularizer's (C,) input: its channel_weights do).
            fitting = [
                f"{src_label}.{name} (shape {spec.shape})"
                for name, spec in src_node.OUTPUT_PORTS.items()
                if name != src_port and _fits(spec, dst_spec)
            ]
            if not fitting:
                raise
            raise PipelineError(
                f"cannot connect {where}",
                expected=error.expected,
                found=error.found,
                fix=f"connect {' or '.join(fitting)} to {dst_label}.{dst_port} instead",
            ) from error
        if dst_name is not None:
            fed_by = self.source_of(dst_name, dst_port)
            if fed_by is not None:
                raise PipelineError(
                    f"cannot connect {where}",
                    expected=f"input {dst_name}.{dst_port} connected at most once",
                    found=f"it is already fed by {fed_by[0]}.{fed_by[1]}",
                    fix="an input takes one source; insert a node that combines the values",
                )
        if src_name is not None and dst_name is not None:
            cycle = self._cycle(extra=(src_name, dst_name))
            if cycle is not None:
                # The graph was acyclic, so the cycle runs through the new edge: name it from its target.
                cycle = _starting_at(cycle, dst_name) if dst_name in cycle else cycle
                raise PipelineError(
                    f"connecting {where} closes a cycle",
                    expected="an acyclic graph",
                    found="cycle " + " → ".join([*cycle, cycle[0]]),
                    fix="remove one connection of the cycle",
                )
        # All checks passed: only now add nodes given by reference.
        if src_name is None:
            src_name = self.add_node(src_node)
        if dst_name is None:
            dst_name = self.add_node(dst_node)
        self._connections.append(Connection(src_name, src_port, dst_name, dst_port))

    def _sorter(self, extra: tuple[str, str] | None = None) -> graphlib.TopologicalSorter[str]:
        """The dependency graph (node -> the nodes feeding it), with one ``(source, target)`` edge added."""
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for name in self.nodes:
            sorter.add(name)
        edges = [(c.source_node, c.target_node) for c in self._connections]
        for source, target in [*edges, *([extra] if extra is not None else [])]:
            if source != DATA_NODE:
                sorter.add(target, source)
        return sorter

    def _cycle(self, extra: tuple[str, str] | None = None) -> list[str] | None:
        """One cycle ``[a, b, ...]`` (each node feeds the next, the last feeds the first), or None."""
        try:
            self._sorter(extra).prepare()
        except graphlib.CycleError as error:
            # graphlib reports [a, b, ..., a]: each node an immediate predecessor of the next.
            return list(error.args[1][:-1])
        return None

    # -- graph queries ---------------------------------------------------------------------------
    def source_of(self, name: str, port: str) -> tuple[str, str] | None:
        """``(node, port)`` feeding input ``port`` of node ``name``, or None when unconnected."""
        for c in self._connections:
            if c.target_node == name and c.target_port == port:
                return c.source_node, c.source_port
        return None

    def topological_order(self) -> list[str]:
        """Node names in an order where every node comes after the nodes feeding it.

        Ties keep the order in which nodes were added. ``data`` is not listed.

        Raises
        ------
        PipelineError
            The graph has a cycle (``connect`` refuses them, so only a corrupted graph gets here).
        """
        rank = {name: index for index, name in enumerate(self.nodes)}
        sorter = self._sorter()
        try:
            sorter.prepare()
        except graphlib.CycleError as error:
            cycle = list(error.args[1][:-1])
            cycle = _starting_at(cycle, min(cycle, key=rank.__getitem__))
            raise PipelineError(
                "the pipeline has a cycle",
                expected="an acyclic graph",
                found="cycle " + " → ".join([*cycle, cycle[0]]),
                fix="remove one connection of the cycle",
            ) from error
        # graphlib hands out every ready node at once; taking them one at a time, earliest added first,
        # keeps the documented tie-break (and the order does not depend on graphlib's internals).
        ready: list[tuple[int, str]] = []
        order: list[str] = []
        while sorter.is_active():
            for name in sorter.get_ready():
                heapq.heappush(ready, (rank[name], name))
            _, current = heapq.heappop(ready)
            order.append(current)
            sorter.done(current)
        return order

    def upstream_of(self, name: str) -> set[str]:
        """Names of every node ``name`` depends on, directly or indirectly (not ``data``, not itself)."""
        self._node(name)
        found: set[str] = set()
        stack = [name]
        while stack:
            current = stack.pop()
            for c in self._connections:
                if c.target_node == current and c.source_node != DATA_NODE and c.source_node not in found:
                    found.add(c.source_node)
                    stack.append(c.source_node)
        return found

    # -- execution ------------------------------------------------------------------------------
    def _check_data(self, data: Mapping[str, Any]) -> dict[str, Any]:
        ports = self._data_source.OUTPUT_PORTS
        unknown = sorted(set(data) - set(ports))
        if unknown:
            raise PipelineError(
                f"unknown data port(s) {unknown}",
                expected=f"keyword arguments among {list(ports)}",
                found=f"{sorted(data)}",
                fix="pass the data as run(cube=..., mask=..., wavelengths=...)",
            )
        return {k: v for k, v in data.items() if v is not None}

    def _gather(self, name: str, outputs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        node = self._node(name)
        inputs: dict[str, Any] = {}
        for port, spec in node.INPUT_PORTS.items():
            source = self.source_of(name, port)
            if source is None:
                if spec.optional:
                    continue
                raise PipelineError(
                    f"required input {name}.{port} ({type(node).__name__}) is not connected",
                    expected="a connection feeding it",
                    found="no connection",
                    fix=f"connect a source, e.g. pipeline.connect(('data.cube', '{name}.{port}')), "
                    f"or run only other nodes with run(..., outputs=[...])",
                )
            src_node, src_port = source
            produced = outputs.get(src_node, {})
            if src_port in produced:
                inputs[port] = produced[src_port]
            elif spec.optional and src_node == DATA_NODE:
                continue
            elif src_node == DATA_NODE:
                raise PipelineError(
                    f"required input {name}.{port} ({type(node).__name__}) has no value",
                    expected=f"data.{src_port} passed to run()",
                    found=f"it is fed by data.{src_port}, which was not passed",
                    fix=f"pass {src_port}=... to run(), or run only the nodes you need with "
                    "run(..., outputs=[...])",
                )
            else:
                raise PipelineError(
                    f"input {name}.{port} ({type(node).__name__}) has no value",
                    expected=f"node {src_node!r} to produce output {src_port!r}",
                    found=f"its outputs were {sorted(produced)}",
                    fix=f"check that {type(self._node(src_node)).__name__}.forward returns {src_port!r}",
                )
        return inputs

    def _execute(self, to_run: set[str], data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        outputs: dict[str, dict[str, Any]] = {DATA_NODE: dict(data)}
        for name in self.topological_order():
            if name not in to_run:
                continue
            node = self.nodes[name]
            try:
                result = node(**self._gather(name, outputs))
            except BandSelectError as error:
                if f"{name!r}" in str(error):
                    raise
                raise with_context(error, f"node {name!r} ({type(node).__name__})") from error
            if not isinstance(result, Mapping):
                raise PipelineError(
                    f"node {name!r} ({type(node).__name__}) returned {type(result).__name__}",
                    expected="a dict keyed by output-port name",
                    found=type(result).__name__,
                    fix="return {'port_name': value, ...} from forward",
                )
            extra = sorted(set(result) - set(node.OUTPUT_PORTS))
            if extra:
                raise PipelineError(
                    f"node {name!r} ({type(node).__name__}) returned undeclared outputs {extra}",
                    expected=f"keys among its output ports {sorted(node.OUTPUT_PORTS)}",
                    found=sorted(result),
                    fix="declare the port in OUTPUT_PORTS or drop it from the returned dict",
                )
            outputs[name] = dict(result)
        return outputs

    def _closure(self, names: Iterable[str]) -> set[str]:
        wanted: set[str] = set()
        for name in names:
            self._node(name)
            if name == DATA_NODE:
                continue
            wanted |= {name} | self.upstream_of(name)
        return wanted

    def forward(self, *, outputs: Sequence[str] | None = None, **data: Any) -> dict[str, dict[str, Any]]:
        """Run the pipeline on ``data`` and return every executed node's outputs.

        Parameters
        ----------
        outputs
            Names of the nodes whose outputs are wanted; only they and their upstream nodes run.
            None (default) runs every node.
        **data
            The data source's ports: ``cube``, ``mask``, ``wavelengths`` (None values count as absent).

        Returns
        -------
        dict
            ``{node_name: {port: value}}`` for each node that ran, in topological order.
        """
        values = self._check_data(data)
        to_run = set(self.nodes) if outputs is None else self._closure(outputs)
        result = self._execute(to_run, values)  # filled in topological order, after the data entry
        return {name: out for name, out in result.items() if name != DATA_NODE}

    def run(self, *, outputs: Sequence[str] | None = None, **data: Any) -> dict[str, dict[str, Any]]:
        """Same as calling the pipeline: see :meth:`forward`."""
        return self(outputs=outputs, **data)

    def inputs_for(self, name: str, **data: Any) -> dict[str, Any]:
        """Run only what node ``name`` depends on and return its input-port values.

        Optional inputs without a value are left out; a required input without one is an error.
        """
        self._node(name)
        values = self._check_data(data)
        outputs = self._execute(self.upstream_of(name), values)
        return self._gather(name, outputs)

    def port_values(self, ports: Sequence[tuple[str, str]], **data: Any) -> dict[tuple[str, str], Any]:
        """Values arriving at the given ``(node, input_port)`` pairs, running only what feeds them.

        Unlike :meth:`inputs_for` this never raises for a port without a value (unconnected, or fed by a
        data port that was not passed): such ports are absent from the result, for the caller to judge.
        One pass serves several nodes (the StatisticalTrainer initialises independent nodes together).
        """
        values = self._check_data(data)
        sources = {key: self.source_of(*key) for key in ports}
        producers = {s[0] for s in sources.values() if s is not None and s[0] != DATA_NODE}
        outputs = self._execute(self._closure(producers), values)
        found: dict[tuple[str, str], Any] = {}
        for key, source in sources.items():
            if source is not None and source[1] in outputs.get(source[0], {}):
                found[key] = outputs[source[0]][source[1]]
        return found

    def extra_repr(self) -> str:
        return "connections=[" + ", ".join(str(c) for c in self._connections) + "]"
