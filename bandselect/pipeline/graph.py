"""The pipeline graph: nodes, connections between their ports, execution in dependency order, save/load."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bandselect.errors import FileFormatError, PipelineError
from bandselect.names import DATA_NODE, PORT_CUBE, PORT_MASK, PORT_WAVELENGTHS
from bandselect.pipeline.node import Node, PortRef, PortSpec, check_ports_compatible

#: File names written by :meth:`Pipeline.save`.
CONFIG_FILE = "pipeline.yaml"
WEIGHTS_FILE = "weights.pt"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DataSource(Node):
    """The reserved ``data`` node: the pipeline's inputs, passed as keyword arguments to ``run``.

    Its output ports are ``cube`` (B, H, W, C) float32, ``mask`` (B, H, W, 1) bool (optional) and
    ``wavelengths`` (C,) float32 (integer wavelengths, as the seed declares them, connect as well).
    It holds no state and is not part of ``Pipeline.nodes`` or the ``state_dict``.
    """

    OUTPUT_PORTS = (
        PortSpec(PORT_CUBE, torch.float32, ("B", "H", "W", "C"), "hyperspectral cube"),
        PortSpec(PORT_MASK, torch.bool, ("B", "H", "W", 1), "label mask, True = positive", optional=True),
        PortSpec(PORT_WAVELENGTHS, torch.float32, ("C",), "band-centre wavelengths in nm"),
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


def _close_matches(name: str, candidates: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(dict.fromkeys(candidates)), n=3, cutoff=0.6)
    return f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""


class Pipeline(nn.Module):
    """A graph of :class:`~bandselect.pipeline.Node` s connected port to port.

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
    >>> from bandselect.pipeline import Node, PortSpec, Pipeline
    >>> class Scale(Node):
    ...     INPUT_PORTS = (PortSpec("cube", torch.float32, ("B", "H", "W", "C")),)
    ...     OUTPUT_PORTS = (PortSpec("scaled", torch.float32, ("B", "H", "W", "C")),)
    ...     def __init__(self, factor: float = 2.0):
    ...         super().__init__(factor=factor)
    ...         self.factor = factor
    ...     def forward(self, cube):
    ...         return {"scaled": cube * self.factor}
    >>> pipeline = Pipeline()
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
                fix=f"{_close_matches(name, [DATA_NODE, *self.nodes])}add a node definition named "
                f"{name!r} (in YAML: under 'nodes:' with its 'type' and 'config')",
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
                fix = f"{_close_matches(port, [*wanted, *other])}check the node's port table"
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
        check_ports_compatible(src_spec, dst_spec, where=where)
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
            path = self._path(dst_name, src_name)
            if path is not None:
                raise PipelineError(
                    f"connecting {where} closes a cycle",
                    expected="an acyclic graph",
                    found="cycle " + " → ".join([*path, dst_name]),
                    fix="remove one connection of the cycle",
                )
        # All checks passed: only now add nodes given by reference.
        if src_name is None:
            src_name = self.add_node(src_node)
        if dst_name is None:
            dst_name = self.add_node(dst_node)
        self._connections.append(Connection(src_name, src_port, dst_name, dst_port))

    def _downstream(self, name: str) -> list[str]:
        return list(dict.fromkeys(c.target_node for c in self._connections if c.source_node == name))

    def _path(self, start: str, goal: str) -> list[str] | None:
        """A path of node names from ``start`` to ``goal`` along connections, or None."""
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        seen: set[str] = set()
        while stack:
            current, path = stack.pop()
            if current == goal:
                return path
            if current in seen:
                continue
            seen.add(current)
            stack.extend((nxt, [*path, nxt]) for nxt in self._downstream(current))
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
        names = list(self.nodes)
        indegree = {n: 0 for n in names}
        for c in self._connections:
            if c.source_node != DATA_NODE:
                indegree[c.target_node] += 1
        ready = [n for n in names if indegree[n] == 0]
        order: list[str] = []
        while ready:
            current = ready.pop(0)
            order.append(current)
            for c in self._connections:
                if c.source_node == current:
                    indegree[c.target_node] -= 1
                    if indegree[c.target_node] == 0:
                        ready.append(c.target_node)
            ready.sort(key=names.index)
        if len(order) != len(names):
            left = [n for n in names if n not in order]
            cycle = next(
                (path for n in left for m in self._downstream(n) if (path := self._path(m, n)) is not None),
                left,
            )
            raise PipelineError(
                "the pipeline has a cycle",
                expected="an acyclic graph",
                found="cycle " + " → ".join([*cycle, cycle[0]]),
                fix="remove one connection of the cycle",
            )
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
            result = node(**self._gather(name, outputs))
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

    # -- persistence -----------------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """The pipeline as the seed's YAML structure (``nodes``, ``connections``), plain Python values."""
        from bandselect.pipeline.config import pipeline_to_config

        return pipeline_to_config(self)

    def to_yaml(self) -> str:
        """The pipeline as YAML text in the seed's form."""
        from bandselect.pipeline.config import dump_yaml

        return dump_yaml(self.to_config())

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Pipeline:
        """Build a pipeline from the parsed YAML structure (see :mod:`bandselect.pipeline.config`)."""
        from bandselect.pipeline.config import pipeline_from_config

        return pipeline_from_config(config)

    @classmethod
    def from_yaml(cls, source: str | os.PathLike[str]) -> Pipeline:
        """Build a pipeline from a YAML file path or YAML text (see :func:`load_yaml`)."""
        from bandselect.pipeline.config import load_yaml, pipeline_from_config

        return pipeline_from_config(load_yaml(source))

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``pipeline.yaml`` and ``weights.pt`` (the ``state_dict``) into ``directory``.

        Both files are written under temporary names first and then renamed into place, so a failure
        (unserialisable config, full disk) leaves a previous save untouched.

        Returns
        -------
        pathlib.Path
            The directory.
        """
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        text = self.to_yaml()  # before writing anything: fails on unregistered nodes or odd config
        state = self.state_dict()
        temporaries: list[tuple[Path, Path]] = []
        try:
            for final, write in (
                (target / CONFIG_FILE, lambda f: f.write(text.encode("utf-8"))),
                (target / WEIGHTS_FILE, lambda f: torch.save(state, f)),
            ):
                handle, temp_name = tempfile.mkstemp(prefix=f".{final.name}.", dir=target)
                temporaries.append((Path(temp_name), final))
                with os.fdopen(handle, "wb") as f:
                    write(f)
                    f.flush()
                    os.fsync(f.fileno())
            for temp, final in temporaries:
                os.replace(temp, final)
        finally:
            for temp, _ in temporaries:
                temp.unlink(missing_ok=True)
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Pipeline:
        """Rebuild a pipeline saved with :meth:`save` and load its weights (``weights_only=True``).

        Raises
        ------
        FileFormatError
            A file is missing or the weights do not fit the rebuilt pipeline.
        """
        source = Path(directory)
        config_path, weights_path = source / CONFIG_FILE, source / WEIGHTS_FILE
        for path in (config_path, weights_path):
            if not path.is_file():
                raise FileFormatError(
                    f"cannot load pipeline from {source}",
                    expected=f"{CONFIG_FILE} and {WEIGHTS_FILE} in the directory",
                    found=f"{path.name} missing",
                    fix="pass a directory written by Pipeline.save",
                )
        pipeline = cls.from_yaml(config_path)
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        try:
            pipeline.load_state_dict(state)
        except RuntimeError as exc:
            raise FileFormatError(
                f"cannot load {weights_path}",
                expected=f"weights matching the pipeline in {CONFIG_FILE}",
                found=str(exc).replace("\n", " "),
                fix="save the pipeline again, or load weights written by the same configuration",
            ) from exc
        return pipeline

    def extra_repr(self) -> str:
        return "connections=[" + ", ".join(str(c) for c in self._connections) + "]"
