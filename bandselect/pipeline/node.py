"""Nodes and ports: the unit every pipeline is built from.

A node is a :class:`torch.nn.Module` that declares its input and output ports. ``forward(**inputs)``
returns a dict keyed by output-port name. Ports are reachable as attributes (``selector.weights``)
so ``pipeline.connect((selector.weights, top_k.weights))`` reads as in the seed documentation.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import torch
from torch import nn

from bandselect.errors import PipelineError

if TYPE_CHECKING:
    from bandselect.selection import BandSelection

#: Port value kinds beyond torch dtypes: ``"dict"`` for metadata dicts such as ``band_info``.
PortDType = torch.dtype | Literal["dict", "any"]


@dataclass(frozen=True)
class PortSpec:
    """Declaration of one port.

    Parameters
    ----------
    name
        Port name, unique among the node's inputs (or outputs).
    dtype
        A torch dtype, ``"dict"`` for metadata, or ``"any"``.
    shape
        Symbolic shape: ints are fixed sizes, strings are named dims (``"B"``, ``"H"``, ``"W"``,
        ``"C"``, ``"k"``), ``()`` a scalar or dict. Dims with the same name must agree when connected
        where both sides are fixed ints.
    description
        One line for documentation and error messages.
    optional
        Whether the node can run without this input.
    """

    name: str
    dtype: PortDType
    shape: tuple[int | str, ...]
    description: str = ""
    optional: bool = False

    def dtype_name(self) -> str:
        """The dtype as a short string (``float32``, ``int64``, ``bool``, ``dict``)."""
        if isinstance(self.dtype, torch.dtype):
            return str(self.dtype).removeprefix("torch.")
        return self.dtype


@dataclass(frozen=True)
class PortRef:
    """A reference to one port of one node instance, as returned by ``node.<port_name>``."""

    node: Node = field(compare=False, hash=False, repr=False)
    name: str
    direction: Literal["input", "output"]

    @property
    def spec(self) -> PortSpec:
        """The port's declaration."""
        ports = self.node.INPUT_PORTS if self.direction == "input" else self.node.OUTPUT_PORTS
        return ports[self.name]

    def __repr__(self) -> str:
        return f"PortRef({type(self.node).__name__}.{self.name}, {self.direction})"


def _dims_compatible(a: int | str, b: int | str) -> bool:
    return not (isinstance(a, int) and isinstance(b, int) and a != b)


def check_ports_compatible(source: PortSpec, target: PortSpec, *, where: str) -> None:
    """Raise :class:`PipelineError` when an output port cannot feed an input port.

    Dtypes must match exactly unless one side is ``"any"``; ranks must match; fixed sizes must agree.
    Integer wavelengths feeding a float port are accepted, as the seed declares ``wavelengths`` int32.
    """
    if source.dtype != target.dtype and "any" not in (source.dtype, target.dtype):
        numeric = isinstance(source.dtype, torch.dtype) and isinstance(target.dtype, torch.dtype)
        both_real = numeric and not source.dtype.is_complex and not target.dtype.is_complex
        if not (both_real and source.dtype != torch.bool and target.dtype != torch.bool):
            raise PipelineError(
                f"cannot connect {where}",
                expected=f"dtype {target.dtype_name()}",
                found=f"dtype {source.dtype_name()}",
                fix="connect a port of the matching dtype or insert a conversion node",
            )
    if source.shape != () and target.shape != () and len(source.shape) != len(target.shape):
        raise PipelineError(
            f"cannot connect {where}",
            expected=f"shape {target.shape}",
            found=f"shape {source.shape}",
            fix="connect ports of the same rank",
        )
    for axis, (a, b) in enumerate(zip(source.shape, target.shape, strict=False)):
        if not _dims_compatible(a, b):
            # The last axis is the band axis ((B, H, W, C) images, (n, C) weights, (C,) wavelengths),
            # except on one-value maps (a mask or score map, size 1): no channel count to configure.
            channels = axis == len(target.shape) - 1 and 1 not in (a, b)
            raise PipelineError(
                f"cannot connect {where}",
                expected=f"shape {target.shape}",
                found=f"shape {source.shape}",
                fix=(
                    f"configure the receiving node for {a} channels (its channel count, e.g. "
                    f"input_channels: {a}, or 'auto' where it takes the count from its input), or feed it "
                    f"a port of {b} channels"
                    if channels
                    else f"connect ports whose sizes agree in dimension {axis} ({a} against {b})"
                ),
            )


@dataclass(frozen=True)
class StatisticsRequest:
    """What a node's statistical initialisation needs from the data streamed through the pipeline.

    Parameters
    ----------
    cube_port
        Input port whose ``(B, H, W, C)`` values feed :class:`~bandselect.stats.BandStatistics`.
    mask_port
        Input port with the labels (``(B, H, W, 1)`` or ``(B, H, W)``), or None when unsupervised.
    histograms
        Whether per-class histograms are needed (AUC, MI). The trainer then bins on edges taken from
        the first pass's min/max (from the first pass's kept inputs, or a second pass past its budget).
    n_bins
        Histogram bins per band when ``histograms`` is set (None: the statistics engine's default).
    wavelengths_port
        Input port carrying the wavelengths, passed to ``fit_from_statistics`` as ``wavelengths``.
    contrast
        Whether the spatial contrast terms are needed (``BandStatistics.laplacian_energy``); the cube
        port's values must then be images ``(B, H, W, C)``.
    """

    cube_port: str
    mask_port: str | None = None
    histograms: bool = False
    n_bins: int | None = None
    wavelengths_port: str | None = None
    contrast: bool = False


class Node(nn.Module):
    """Base class of every pipeline node.

    Subclasses declare ``INPUT_PORTS`` and ``OUTPUT_PORTS`` (tuples of :class:`PortSpec`) and implement
    ``forward(**inputs) -> dict[str, Any]``. Constructor keyword arguments are recorded as the node's
    configuration (``node.config``), which is what YAML files and MLflow params show; subclasses call
    ``super().__init__(**config)`` with their own arguments, as the seed's custom-selector example does.

    Nodes that need a statistical initialisation set ``requires_initial_fit = True`` and implement
    ``statistics_request`` (which input ports feed the statistics) and ``fit_from_statistics``; the
    :class:`~bandselect.training.StatisticalTrainer` drives them. ``is_initialized`` says whether that
    has happened (it is derived from a buffer so it survives ``state_dict`` round trips).
    """

    INPUT_PORTS: ClassVar[Mapping[str, PortSpec]] = {}
    OUTPUT_PORTS: ClassVar[Mapping[str, PortSpec]] = {}
    requires_initial_fit: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Accept tuples/lists of PortSpec in subclasses and turn them into name-keyed mappings.
        for attr in ("INPUT_PORTS", "OUTPUT_PORTS"):
            ports = cls.__dict__.get(attr)
            if ports is not None and not isinstance(ports, Mapping):
                setattr(cls, attr, {p.name: p for p in ports})

    def __init__(self, **config: Any) -> None:
        super().__init__()
        self._config: dict[str, Any] = dict(config)
        if self.requires_initial_fit:
            # Registered up front so state_dict keys are the same before and after initialisation.
            self.register_buffer("_initialized", torch.tensor(False))

    # -- configuration -------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments as given (JSON/YAML-friendly values), for saving and tracking."""
        return dict(self._config)

    @classmethod
    def config_keys(cls) -> set[str]:
        """Names of the keyword arguments the constructor accepts.

        A constructor that forwards ``**kwargs`` to its base class (the seed's custom-selector pattern)
        also accepts the base class's named arguments, so those are followed up the MRO until a
        constructor without ``**kwargs`` (or :class:`Node` itself) is reached.
        """
        return {name for name, _ in _constructor_parameters(cls)}

    # -- ports ---------------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            cls = type(self)
            if name in cls.OUTPUT_PORTS:
                return PortRef(self, name, "output")
            if name in cls.INPUT_PORTS:
                return PortRef(self, name, "input")
            raise

    def port(self, name: str) -> PortRef:
        """Return the port called ``name`` (output ports win when a name is both)."""
        if name in self.OUTPUT_PORTS:
            return PortRef(self, name, "output")
        if name in self.INPUT_PORTS:
            return PortRef(self, name, "input")
        raise PipelineError(
            f"{type(self).__name__} has no port {name!r}",
            expected=f"one of inputs {sorted(self.INPUT_PORTS)} or outputs {sorted(self.OUTPUT_PORTS)}",
            found=repr(name),
            fix="check the port name against the node's documentation",
        )

    # -- statistical initialisation --------------------------------------------------------------
    def statistics_request(self) -> StatisticsRequest | None:
        """What the statistical initialisation needs; None for nodes that need none."""
        return None

    def fit_from_statistics(self, stats: Any, *, wavelengths: Any = None) -> None:  # pragma: no cover
        """Initialise fitted state from merged :class:`~bandselect.stats.BandStatistics`.

        Implementations end with ``self._mark_initialized()``.
        """
        raise NotImplementedError(f"{type(self).__name__} has no statistical initialisation")

    @property
    def is_initialized(self) -> bool:
        """True when the node needs no initialisation or has been initialised."""
        flag = self._buffers.get("_initialized")
        return (not self.requires_initial_fit) if flag is None else bool(flag.item())

    def _mark_initialized(self) -> None:
        """Record that statistical initialisation has happened (a buffer, so it is saved)."""
        self._buffers["_initialized"].fill_(True)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._config.items())


def _constructor_parameters(cls: type[Node]) -> list[tuple[str, inspect.Parameter]]:
    """The named constructor arguments of ``cls`` (``self``, ``*args``, ``**kwargs`` excluded).

    A constructor that forwards ``**kwargs`` to its base class also takes the base class's arguments,
    so the MRO is followed until a constructor without ``**kwargs`` (or :class:`Node` itself).
    """
    parameters: list[tuple[str, inspect.Parameter]] = []
    for klass in cls.__mro__:
        if klass is Node or not issubclass(klass, Node):
            break
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        parameters += [
            (name, p)
            for name, p in params.items()
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        ]
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    return parameters


# -- capabilities --------------------------------------------------------------------------------------
# What a node can do is a Protocol, checked with isinstance (never by probing attributes one by one), so
# the trainers, the flows and the comparison agree on what "a selector" or "annealed" means.


@runtime_checkable
class BandSelector(Protocol):
    """A node that chooses bands: ``selection(wavelengths_nm)`` returns its :class:`BandSelection`.

    Every selector node implements it (fixed, data-driven, supervised and learnable ones); the
    wavelengths are the grid the selection is made on (one per input channel).
    """

    def selection(self, wavelengths_nm: Any) -> BandSelection:
        """The bands chosen, on the grid ``wavelengths_nm``."""
        ...


@runtime_checkable
class Annealed(Protocol):
    """A node with a temperature schedule the gradient trainer advances at the start of every epoch."""

    temperature_min: float

    @property
    def temperature(self) -> float:
        """The current temperature."""
        ...

    def temperature_at(self, epoch: int) -> float:
        """The temperature the schedule gives ``epoch`` (pure: no state changes)."""
        ...

    def update_temperature(self, epoch: int) -> float:
        """Set and return the temperature of ``epoch``."""
        ...


@runtime_checkable
class Freezable(Protocol):
    """A node whose fitted state can be turned into trainable parameters and back (two-phase training)."""

    @property
    def is_trainable(self) -> bool:
        """Whether the state is currently trainable."""
        ...

    def unfreeze(self) -> None:
        """Make the state trainable (buffers become ``nn.Parameter`` s)."""
        ...

    def freeze(self) -> None:
        """Make the state fixed again (same ``state_dict`` keys)."""
        ...


@runtime_checkable
class WeightedSelector(Protocol):
    """A learnable selector with soft channel weights and a hard top-``n_select`` mode."""

    n_select: int
    hard: bool

    def get_selection_weights(self, hard: bool = False) -> torch.Tensor:
        """Deterministic ``(C,)`` weights (hard: the top-``n_select`` mask)."""
        ...


@runtime_checkable
class Metric(Protocol):
    """A node whose outputs are scalar metrics (the gradient trainer evaluates them on validation data)."""

    is_metric: Literal[True]


def needs_statistics(node: Node) -> bool:
    """Whether ``node`` asks for a statistical initialisation it has not had yet.

    A node asks by returning a :class:`StatisticsRequest` from ``statistics_request()``; it has had one
    when ``is_initialized``. The trainers and the flows initialise exactly these nodes.
    """
    return node.statistics_request() is not None and not node.is_initialized


def is_loss_node(node: Node) -> bool:
    """Whether ``node`` outputs a ``loss`` (summed by the gradient trainer)."""
    return LOSS_PORT in node.OUTPUT_PORTS


#: The output port every loss node (task loss, regularizer) declares.
LOSS_PORT = "loss"
