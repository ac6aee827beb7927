"""What a selector chose, as one frozen value: :class:`BandSelection`.

Every selector node returns one from ``selection(wavelengths_nm)`` (the
:class:`~bandselect.pipeline.node.BandSelector` protocol); everything downstream (evaluation, export,
tracking, reports, plots, MLflow models) consumes it and never re-derives bands from a node's internals.
As with scikit-learn's ``SelectorMixin`` there is one source of truth, the picked band indices; the support
mask, the wavelengths, the composite bands and the digest are derived from it.

This module sits at the bottom of the package (NumPy only): torch, Prefect and MLflow are not imported.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from bandselect.errors import ConfigError, ShapeError
from bandselect.spectral import check_same_grid, validate_wavelengths

__all__ = ["SELECTION_FORMAT_VERSION", "BandSelection", "false_colour_order"]

#: Version of :meth:`BandSelection.to_dict`'s layout (part of the digest).
SELECTION_FORMAT_VERSION = 1


def _plain(value: Any) -> Any:
    """JSON-able plain Python (tuples → lists, NumPy scalars → Python scalars)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _frozen(value: Any) -> Any:
    """Read-only nested copy: mappings become ``MappingProxyType``, sequences tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def false_colour_order(indices: Sequence[int], wavelengths_nm: Sequence[float]) -> tuple[int, ...]:
    """``indices`` by decreasing wavelength: the false-colour convention (longest wavelength on red)."""
    wl = np.asarray(wavelengths_nm, dtype=np.float64)
    return tuple(sorted((int(i) for i in indices), key=lambda i: (-wl[i], i)))


@dataclass(frozen=True, eq=False)
class BandSelection:
    """The bands a selector chose, on one sensor's wavelength grid.

    Attributes
    ----------
    indices
        Band indices in pick order (window order for windowed selectors, most important first otherwise).
    output_indices
        The same bands in the order of the selector's output channels: R, G, B for a composite selector,
        the ``selected`` channels of a reduction; a permutation of ``indices``.
    sensor_wavelengths_nm
        The ``(C,)`` grid the indices refer to, in nm.
    selector_type
        Class name of the selector (its registered node type).
    selector_config
        The selector's constructor arguments (read-only, JSON-able).
    channel_names
        Names of the output channels (``("R", "G", "B")``), or empty when the output has no colour meaning.
    channel_mapping
        What each output channel shows, e.g. ``{"R": "NIR", "G": "Red", "B": "Green"}`` (CIR), or empty.
    windows_nm
        The wavelength window of each pick, in pick order, for windowed selectors; empty otherwise.
    scores
        Per-band score vectors over the whole grid (each ``(C,)``), e.g. ``fisher``, ``auc``, ``mi``,
        ``combined`` (mRMR relevance), ``weight`` (learnable selectors), ``contrast``.
    objective
        The criterion's value for the chosen subset, when the selector optimises one.
    strategy
        The seed's ``band_info["strategy"]`` name.

    Notes
    -----
    Equality compares the bands, their order, the grid and the selector (type and config), not the scores:
    two computations of the same selection on the same data (in memory, over a Dask store, in a flow) agree
    on those exactly and on the scores to rounding.

    Examples
    --------
    >>> from bandselect.selection import BandSelection
    >>> selection = BandSelection.create(
    ...     [5, 2, 9], range(400, 1000, 50), selector_type="Manual", output_indices=[9, 5, 2])
    >>> selection.wavelengths_nm, selection.rgb_wavelengths_nm
    ((650.0, 500.0, 850.0), (850.0, 650.0, 500.0))
    >>> selection.support.nonzero()[0].tolist()
    [2, 5, 9]
    >>> BandSelection.from_dict(selection.to_dict()) == selection
    True
    """

    indices: tuple[int, ...]
    output_indices: tuple[int, ...]
    sensor_wavelengths_nm: tuple[float, ...]
    selector_type: str
    selector_config: Mapping[str, Any] = field(default_factory=dict)
    channel_names: tuple[str, ...] = ()
    channel_mapping: Mapping[str, str] = field(default_factory=dict)
    windows_nm: tuple[tuple[float, float], ...] = ()
    scores: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    objective: float | None = None
    strategy: str = ""

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        indices: Sequence[int] | np.ndarray,
        wavelengths_nm: Sequence[float] | np.ndarray,
        *,
        selector_type: str,
        selector_config: Mapping[str, Any] | None = None,
        output_indices: Sequence[int] | np.ndarray | None = None,
        channel_names: Sequence[str] = (),
        channel_mapping: Mapping[str, str] | None = None,
        windows_nm: Sequence[Sequence[float]] | None = None,
        scores: Mapping[str, Any] | None = None,
        objective: float | None = None,
        strategy: str = "",
    ) -> BandSelection:
        """Validate and build a selection (``output_indices`` default: pick order).

        Raises
        ------
        ShapeError
            No band, an index outside the grid, a band picked twice, ``output_indices`` that is not a
            permutation of ``indices``, channel names or windows of the wrong length, a score vector that
            is not one value per band.
        WavelengthError
            A grid that is not finite and strictly increasing.
        """
        grid = validate_wavelengths(wavelengths_nm)
        n_bands = grid.size
        picks = tuple(int(i) for i in np.asarray(indices).reshape(-1))
        if not picks:
            raise ShapeError(
                "selection", expected="at least one band", found="none", fix="select one band or more"
            )
        outside = [i for i in picks if not 0 <= i < n_bands]
        if outside:
            raise ShapeError(
                "selection",
                expected=f"band indices in [0, {n_bands})",
                found=outside,
                fix="select bands of this sensor",
            )
        if len(set(picks)) != len(picks):
            raise ShapeError(
                "selection",
                expected="distinct bands",
                found=list(picks),
                fix="a band can be selected once; resolve duplicates in the selector",
            )
        order = picks if output_indices is None else tuple(int(i) for i in np.asarray(output_indices))
        if sorted(order) != sorted(picks):
            raise ShapeError(
                "selection output order",
                expected=f"a permutation of the picks {list(picks)}",
                found=list(order),
                fix="list every picked band exactly once in output_indices",
            )
        names = tuple(str(n) for n in channel_names)
        windows = tuple((float(w[0]), float(w[1])) for w in (windows_nm or ()))
        for what, values, count, per in (
            ("channel names", names, len(order), "output channel"),
            ("windows", windows, len(picks), "pick"),
        ):
            if values and len(values) != count:
                raise ShapeError(
                    f"selection {what}",
                    expected=f"{count} {what} (one per {per})",
                    found=list(values),
                    fix=f"give one per {per}, or none",
                )
        vectors: dict[str, tuple[float, ...]] = {}
        for name, values in (scores or {}).items():
            vector = np.asarray(values, dtype=np.float64).reshape(-1)
            if vector.size != n_bands:
                raise ShapeError(
                    f"selection score {name!r}",
                    expected=f"{n_bands} values (one per band)",
                    found=f"{vector.size} values",
                    fix="pass per-band scores over the whole grid",
                )
            vectors[str(name)] = tuple(float(v) for v in vector)
        return cls(
            indices=picks,
            output_indices=order,
            sensor_wavelengths_nm=tuple(float(w) for w in grid),
            selector_type=str(selector_type),
            selector_config=_frozen(_plain(dict(selector_config or {}))),
            channel_names=names,
            channel_mapping=_frozen({str(k): str(v) for k, v in (channel_mapping or {}).items()}),
            windows_nm=windows,
            scores=_frozen(vectors),
            objective=None if objective is None or not math.isfinite(objective) else float(objective),
            strategy=str(strategy),
        )

    # -- derived ------------------------------------------------------------------------------------
    @property
    def k(self) -> int:
        """Number of selected bands."""
        return len(self.indices)

    @property
    def n_bands(self) -> int:
        """Number of bands ``C`` of the sensor."""
        return len(self.sensor_wavelengths_nm)

    @property
    def support(self) -> np.ndarray:
        """``(C,)`` bool, True on the selected bands (scikit-learn's ``get_support()``)."""
        mask = np.zeros(self.n_bands, dtype=bool)
        mask[list(self.indices)] = True
        return mask

    @property
    def wavelengths_nm(self) -> tuple[float, ...]:
        """Wavelength of each pick, in pick order."""
        return tuple(self.sensor_wavelengths_nm[i] for i in self.indices)

    @property
    def output_wavelengths_nm(self) -> tuple[float, ...]:
        """Wavelength of each output channel."""
        return tuple(self.sensor_wavelengths_nm[i] for i in self.output_indices)

    @property
    def rgb_indices(self) -> tuple[int, int, int]:
        """The three bands of the selection's RGB composite: its first three output channels.

        Raises
        ------
        ShapeError
            The selection holds fewer than three bands (export a k-band product instead).
        """
        if len(self.output_indices) < 3:
            raise ShapeError(
                f"RGB composite of a {self.selector_type} selection",
                expected="at least three selected bands",
                found=f"{len(self.output_indices)} band(s) {list(self.output_indices)}",
                fix="select three bands or more, or export the selected bands as a k-band cube",
            )
        return self.output_indices[0], self.output_indices[1], self.output_indices[2]

    @property
    def rgb_wavelengths_nm(self) -> tuple[float, float, float]:
        """Wavelength of the red, green and blue channel of the composite."""
        r, g, b = self.rgb_indices
        grid = self.sensor_wavelengths_nm
        return grid[r], grid[g], grid[b]

    def score(self, name: str) -> np.ndarray:
        """One per-band score vector as a ``(C,)`` float64 array.

        Raises
        ------
        ConfigError
            The selector did not record that score.
        """
        if name not in self.scores:
            raise ConfigError(
                f"score {name!r} of a {self.selector_type} selection",
                expected=f"one of {sorted(self.scores)}",
                found=repr(name),
                fix="use a score the selector records",
            )
        return np.asarray(self.scores[name], dtype=np.float64)

    def band_info(self, **extra: Any) -> dict[str, Any]:
        """The seed's ``band_info`` dict: strategy, output bands and their wavelengths (R, G, B order),
        then ``extra`` keys, then ``channel_mapping`` when the channels have one."""
        info: dict[str, Any] = {
            "strategy": self.strategy,
            "band_indices": list(self.output_indices),
            "band_wavelengths_nm": list(self.output_wavelengths_nm),
            **extra,
        }
        if self.channel_mapping:
            info["channel_mapping"] = dict(self.channel_mapping)
        return info

    # -- use ------------------------------------------------------------------------------------------
    def check_grid(self, wavelengths_nm: Sequence[float] | np.ndarray, what: str = "cube") -> None:
        """Raise :class:`~bandselect.errors.WavelengthError` unless ``wavelengths_nm`` is this grid."""
        check_same_grid(
            np.asarray(self.sensor_wavelengths_nm),
            np.asarray(wavelengths_nm, dtype=np.float64),
            f"wavelengths of the {what}",
            reference=f"the {self.selector_type} selection",
            fix="apply a selection to cubes of the sensor it was made for",
        )

    def take(self, cube: Any, *, order: str = "output") -> Any:
        """The selected bands of a ``(..., C)`` array (NumPy, torch or dask), in output or pick order.

        Raises
        ------
        ShapeError
            The last axis does not have ``C`` bands.
        """
        shape = tuple(cube.shape)
        if not shape or shape[-1] != self.n_bands:
            raise ShapeError(
                "cube",
                expected=f"(..., {self.n_bands}) bands last",
                found=f"shape {shape}",
                fix="pass a cube of the sensor this selection was made for, bands on the last axis",
            )
        if order not in ("output", "pick"):
            raise ConfigError("order", expected="'output' or 'pick'", found=repr(order), fix="use 'output'")
        chosen = list(self.output_indices if order == "output" else self.indices)
        return cube[..., chosen]

    # -- identity and persistence --------------------------------------------------------------------
    def _identity(self) -> dict[str, Any]:
        return {
            "format": SELECTION_FORMAT_VERSION,
            "indices": list(self.indices),
            "output_indices": list(self.output_indices),
            "sensor_wavelengths_nm": [round(w, 6) for w in self.sensor_wavelengths_nm],
            "selector_type": self.selector_type,
            "selector_config": _plain(self.selector_config),
            "channel_names": list(self.channel_names),
            "channel_mapping": dict(self.channel_mapping),
            "windows_nm": [list(w) for w in self.windows_nm],
        }

    @property
    def digest(self) -> str:
        """16 hex digits identifying the selection (bands, order, grid, selector); not the scores."""
        text = json.dumps(self._identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BandSelection):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self.digest)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able content (``selection.json``): everything, with the derived wavelengths for readers."""
        return {
            **self._identity(),
            "wavelengths_nm": list(self.wavelengths_nm),
            "output_wavelengths_nm": list(self.output_wavelengths_nm),
            "scores": {name: list(values) for name, values in self.scores.items()},
            "objective": self.objective,
            "strategy": self.strategy,
            "digest": self.digest,
        }

    @classmethod
    def from_dict(cls, content: Mapping[str, Any]) -> BandSelection:
        """Rebuild a selection from :meth:`to_dict` output.

        Raises
        ------
        ConfigError
            Missing keys or another format version.
        """
        required = ("indices", "output_indices", "sensor_wavelengths_nm", "selector_type")
        missing = [key for key in required if key not in content]
        version = content.get("format", SELECTION_FORMAT_VERSION)
        if missing or version != SELECTION_FORMAT_VERSION:
            raise ConfigError(
                "band selection",
                expected=f"a selection.json of format {SELECTION_FORMAT_VERSION} with {list(required)}",
                found=f"format {version}, missing {missing}" if missing else f"format {version}",
                fix="write it with BandSelection.to_dict()",
            )
        return cls.create(
            content["indices"],
            content["sensor_wavelengths_nm"],
            selector_type=content["selector_type"],
            selector_config=content.get("selector_config") or {},
            output_indices=content["output_indices"],
            channel_names=content.get("channel_names") or (),
            channel_mapping=content.get("channel_mapping") or {},
            windows_nm=content.get("windows_nm") or None,
            scores=content.get("scores") or {},
            objective=content.get("objective"),
            strategy=content.get("strategy", ""),
        )

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> BandSelection:
        """Rebuild a selection from :meth:`to_json` text."""
        return cls.from_dict(json.loads(text))

    def __repr__(self) -> str:
        bands = ", ".join(f"{i} ({w:.1f} nm)" for i, w in zip(self.indices, self.wavelengths_nm, strict=True))
        return f"BandSelection({self.selector_type}: {bands})"
