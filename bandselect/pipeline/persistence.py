"""Pipelines and their persistence: the YAML structure <-> a pipeline, ``save``/``load`` of a directory.

:class:`Pipeline` (what ``bandselect.pipeline.Pipeline`` is) is the graph of
:class:`~bandselect.pipeline.graph.PipelineGraph` plus its YAML form and its files. It lives here, not in
``graph.py``, so that imports point one way: this module imports the graph (``graph.py``) and the YAML
form (``config.py``), and neither of them imports it. The graph then stays a graph (nodes, connections,
checks, execution) that knows nothing of files, the YAML module knows nothing of graphs, and the
classmethods users expect (``Pipeline.from_yaml``, ``Pipeline.load``) need no import inside a function,
which is how the import loop between ``graph.py`` and ``config.py`` used to be hidden.

Loading a YAML whose connections name a node it does not define (the seed's ``rx`` and ``adaclip``): pass
the node with ``nodes=``, a ready node or a ``{"type": ..., "config": {...}}`` definition:

>>> from bandselect.nodes import RXDetector
>>> from bandselect.pipeline import Pipeline
>>> text = '''
... nodes:
...   selector: {type: SoftChannelSelector, config: {n_select: 3, input_channels: 61}}
... connections:
...   - [data.cube, selector.data]
...   - [selector.selected, rx.data]
... '''
>>> pipeline = Pipeline.from_yaml(text, nodes={"rx": RXDetector(input_channels=61, background="batch")})
>>> pipeline.topological_order()
['selector', 'rx']
>>> pipeline.to_config()["nodes"]["rx"]["type"]  # from now on the YAML defines it
'RXDetector'
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import torch

from bandselect.errors import ConfigError, FileFormatError, PipelineError
from bandselect.names import DATA_NODE
from bandselect.pipeline._hints import did_you_mean
from bandselect.pipeline.config import (
    build_node,
    check_data_name,
    check_structure,
    dump_yaml,
    load_yaml,
    node_definition,
)
from bandselect.pipeline.graph import PipelineGraph
from bandselect.pipeline.node import Node

#: File names written by :meth:`Pipeline.save`.
CONFIG_FILE = "pipeline.yaml"
WEIGHTS_FILE = "weights.pt"

#: What ``nodes=`` maps a name to: a ready node (used as is, not copied) or its YAML-style definition.
SuppliedNode = Node | Mapping[str, Any]

_SUPPLY_FORMS = "a ready Node instance or a {'type': NodeType, 'config': {...}} definition"


class Pipeline(PipelineGraph):
    """A pipeline of nodes connected port to port, with its YAML form and ``save``/``load``.

    Everything about the graph (building, checks, execution, partial runs) is
    :class:`~bandselect.pipeline.graph.PipelineGraph`'s; this class adds the seed's YAML structure
    (:meth:`from_yaml`, :meth:`from_config`, :meth:`to_yaml`, :meth:`to_config`) and a directory with
    ``pipeline.yaml`` and ``weights.pt`` (:meth:`save`, :meth:`load`). It adds no state, so the
    ``state_dict`` is the graph's.

    Examples
    --------
    >>> from bandselect.pipeline import Pipeline
    >>> pipeline = Pipeline.from_yaml('''
    ... nodes:
    ...   top_k: {type: TopKIndices, config: {k: 2}}
    ... connections: []
    ... ''')
    >>> pipeline.nodes["top_k"].k
    2
    >>> Pipeline.from_config(pipeline.to_config()).to_yaml() == pipeline.to_yaml()
    True
    """

    # -- the YAML structure ----------------------------------------------------------------------
    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], nodes: Mapping[str, SuppliedNode] | None = None
    ) -> Pipeline:
        """Build a pipeline from the parsed YAML structure (``nodes``, ``connections``).

        Parameters
        ----------
        config
            The mapping :func:`~bandselect.pipeline.load_yaml` returns.
        nodes
            Nodes the connections name but the structure does not define, by name: a ready
            :class:`~bandselect.pipeline.Node` (used as is, not copied) or a definition
            ``{"type": ..., "config": {...}}`` checked like one in the file. They are added after the
            defined nodes, in the order the connections first name them.

        Raises
        ------
        ConfigError
            Malformed structure, unknown node type or config key; a name both defined in the structure and
            given in ``nodes``; a name in ``nodes`` that no connection uses; a value of ``nodes`` that is
            neither a node nor a definition.
        PipelineError
            A connection names a node that is neither defined nor in ``nodes`` (the fix says how to supply
            it), an unknown port, incompatible ports, or closes a cycle.
        """
        definitions, connections = check_structure(config)
        supplied = _supplied_nodes(nodes, definitions, connections)
        pipeline = cls()
        for name, definition in definitions.items():
            pipeline.add_node(build_node(name, definition), name=name)
        for name, supply in supplied.items():
            pipeline.add_node(supply if isinstance(supply, Node) else build_node(name, supply), name=name)
        for index, (source, target) in enumerate(connections, start=1):
            where = f"connection #{index} [{source}, {target}]"
            for end, role in ((source, "output"), (target, "input")):
                name, dot, port = end.partition(".")
                if dot and name and name != DATA_NODE and name not in pipeline.nodes:
                    raise _undefined_node(where, name, role, port, defined=list(pipeline.nodes))
            try:
                pipeline.connect((source, target))
            except PipelineError as exc:
                raise PipelineError(f"{where}: {exc}") from exc
        return pipeline

    @classmethod
    def from_yaml(
        cls, source: str | os.PathLike[str], nodes: Mapping[str, SuppliedNode] | None = None
    ) -> Pipeline:
        """Build a pipeline from a YAML file path or YAML text (see :func:`~bandselect.pipeline.load_yaml`).

        ``nodes`` supplies nodes the file connects to but does not define, as in :meth:`from_config`.
        """
        return cls.from_config(load_yaml(source), nodes=nodes)

    def to_config(self) -> dict[str, Any]:
        """The pipeline as the seed's YAML structure (``nodes``, ``connections``), plain Python values."""
        return pipeline_to_config(self)

    def to_yaml(self) -> str:
        """The pipeline as YAML text in the seed's form."""
        return dump_yaml(self.to_config())

    # -- files -----------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``pipeline.yaml`` and ``weights.pt`` (the ``state_dict``) into ``directory``.

        Both files are written under temporary names first and then renamed into place, so a failure
        (unserialisable config, unregistered node, full disk) leaves a previous save untouched.

        Returns
        -------
        pathlib.Path
            The directory.
        """
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        text = self.to_yaml()  # before writing anything: fails on unregistered nodes or odd config
        state = self.state_dict()
        _write_all_or_nothing(
            target,
            {
                CONFIG_FILE: lambda f: f.write(text.encode("utf-8")),
                WEIGHTS_FILE: lambda f: torch.save(state, f),
            },
        )
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Pipeline:
        """Rebuild a pipeline saved with :meth:`save` and load its weights (``weights_only=True``).

        There is no ``nodes=`` here: :meth:`save` writes every node's definition (it refuses unregistered
        node types), so a saved directory never names a node it does not define.

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
        state = load_torch_file(weights_path, "pipeline weights")
        try:
            if not isinstance(state, Mapping):
                raise TypeError(f"a {type(state).__name__}, not a state dict")
            pipeline.load_state_dict(state)
        except (RuntimeError, TypeError) as exc:
            raise FileFormatError(
                f"cannot load {weights_path}",
                expected=f"weights matching the pipeline in {CONFIG_FILE}",
                found=str(exc).replace("\n", " "),
                fix="save the pipeline again, or load weights written by the same configuration",
            ) from exc
        return pipeline


#: What ``torch.load`` raises on a file it did not write (empty: EOFError; text: KeyError; garbage or a
#: pickle of other objects: UnpicklingError; a truncated archive: RuntimeError; others seen: IndexError).
_TORCH_LOAD_ERRORS: tuple[type[BaseException], ...] = (
    pickle.UnpicklingError,
    EOFError,
    RuntimeError,
    ValueError,
    IndexError,
    KeyError,
    TypeError,
    AttributeError,
)


def load_torch_file(path: Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU; a file torch did not write is refused by name.

    Raises
    ------
    FileFormatError
        The file is empty, truncated, not written by ``torch.save``, or holds objects other than tensors
        and plain containers.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except _TORCH_LOAD_ERRORS as error:
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        raise FileFormatError(
            f"{what} {path}",
            expected="a file written by torch.save (tensors and plain containers only)",
            found=f"{type(error).__name__}: {first_line or 'no content (empty or truncated file)'}",
            fix=f"restore the file, or delete {path.parent} so that the step that wrote it runs again",
        ) from error


def pipeline_from_config(
    config: Mapping[str, Any], nodes: Mapping[str, SuppliedNode] | None = None
) -> Pipeline:
    """Build a :class:`Pipeline` from the parsed YAML structure: :meth:`Pipeline.from_config`."""
    return Pipeline.from_config(config, nodes=nodes)


def pipeline_to_config(pipeline: PipelineGraph) -> dict[str, Any]:
    """The YAML structure of ``pipeline`` (node types by registered name, config as plain values)."""
    nodes = {name: node_definition(name, node) for name, node in pipeline.nodes.items()}  # type: ignore[arg-type]
    connections = [[c.source, c.target] for c in pipeline.connections]
    return {"nodes": nodes, "connections": connections}


def _supplied_nodes(
    nodes: Mapping[str, SuppliedNode] | None,
    definitions: Mapping[str, object],
    connections: Sequence[tuple[str, str]],
) -> dict[str, SuppliedNode]:
    """Check ``nodes=`` against the structure; return it in the order the connections first name each."""
    if nodes is None:
        return {}
    if not isinstance(nodes, Mapping):
        raise ConfigError(
            "nodes= of the pipeline loader",
            expected=f"a mapping of node name to {_SUPPLY_FORMS}",
            found=type(nodes).__name__,
            fix="pass e.g. nodes={'rx': RXDetector(input_channels=61)}",
        )
    for name, supply in nodes.items():
        if not isinstance(name, str):
            raise ConfigError(
                "a key of nodes=",
                expected="a node name (str) as the connections write it",
                found=repr(name),
                fix="key nodes= by the name used in the YAML's connections, e.g. 'rx'",
            )
        check_data_name(name, "nodes=")
        if not isinstance(supply, Node | Mapping):
            instance = isinstance(supply, type) and issubclass(supply, Node)
            raise ConfigError(
                f"nodes[{name!r}]",
                expected=_SUPPLY_FORMS,
                found=f"the class {supply.__name__}" if instance else type(supply).__name__,
                fix=f"pass an instance, e.g. {supply.__name__}(...)"
                if instance
                else f"pass nodes={{{name!r}: NodeType(...)}} or a {{'type': ..., 'config': ...}} mapping",
            )
    both = [name for name in nodes if name in definitions]
    if both:
        raise ConfigError(
            f"node(s) {both} defined both in the YAML's 'nodes:' and in nodes=",
            expected="each node defined once",
            found=f"{both} in both places",
            fix="drop them from nodes= (or their definitions from the YAML)",
        )
    named: list[str] = []
    for end in (end for pair in connections for end in pair):
        name = end.partition(".")[0]
        if name not in definitions and name != DATA_NODE and name not in named:
            named.append(name)
    unused = [name for name in nodes if name not in named]
    if unused:
        hint = did_you_mean(unused[0], named)
        raise ConfigError(
            f"nodes= gives {unused}, which no connection of the YAML names",
            expected=f"names the connections use without a definition ({named or 'none'})",
            found=f"{unused}",
            fix=f"{hint}key nodes= by the name the connections use; add other nodes with "
            "pipeline.add_node after loading",
        )
    return {name: nodes[name] for name in named if name in nodes}


def _undefined_node(where: str, name: str, role: str, port: str, *, defined: list[str]) -> PipelineError:
    """The error for a connection to a node that is neither defined nor supplied, with both fixes."""
    return PipelineError(
        f"{where}: node {name!r} is not defined",
        expected=f"a node {name!r} with an {role} port {port!r}, defined under 'nodes:' or given with nodes=",
        found=f"no definition (defined: {[DATA_NODE, *defined]})",
        fix=f"{did_you_mean(name, [DATA_NODE, *defined])}add a node definition named {name!r} under 'nodes:' "
        f"(its 'type' and 'config'), or supply the node when loading: Pipeline.from_yaml(..., "
        f"nodes={{{name!r}: NodeType(...)}}) with a ready node, or "
        f"nodes={{{name!r}: {{'type': 'NodeType', 'config': {{...}}}}}}",
    )


def _write_all_or_nothing(directory: Path, writers: Mapping[str, Callable[[IO[bytes]], object]]) -> None:
    """Write every file under a temporary name, then rename all into place: a failure publishes none."""
    temporaries: list[tuple[Path, Path]] = []
    try:
        for file_name, write in writers.items():
            handle, temp_name = tempfile.mkstemp(prefix=f".{file_name}.", dir=directory)
            temporaries.append((Path(temp_name), directory / file_name))
            with os.fdopen(handle, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
        for temp, final in temporaries:
            os.replace(temp, final)
    finally:
        for temp, _ in temporaries:
            temp.unlink(missing_ok=True)
