"""Windows of acquisitions: the one way statistics and training read pixels.

A :class:`Window` names rows ``y0:y1`` and columns ``x0:x1`` of acquisition number ``acquisition`` of a
source. Every source follows one reader protocol, :class:`WindowSource`: ``ids``, ``shapes``,
``wavelengths`` (float64, validated, one grid for all acquisitions by the one grid rule,
:func:`bandselect.spectral.check_same_grid`), ``labelled``/``has_mask`` and ``read(window)``, which returns
the cube ``(h, w, C)`` float32 and the labels ``(h, w)`` *as stored* (or None). Labels are never
converted here: the batching code applies the one label rule (:func:`bandselect.labels.binary_labels`).
Acquisitions with a validity flag (``flagged``: a ``valid`` variable, e.g. ingested with
``mask_nonfinite`` or from a file with a no-data value) give it with ``read_valid(window)``; their
invalid pixels hold 0 in the cube, and the batches carry the flag (``valid``) so that no trainer counts
them.

- :class:`~bandselect.store.chunk_reader.StoreSource` (the store's chunk reader): acquisitions of a
  campaign store, read with chunk-aligned zarr slices through a bounded per-process chunk cache.
- :class:`ArraySource`: in-memory cubes and label masks.
- :class:`DatasetSource`: xarray Datasets in the store layout (in memory or Dask-backed), for data that is
  not in a store.

Examples
--------
>>> import numpy as np
>>> source = ArraySource([np.arange(24, dtype=np.float32).reshape(2, 4, 3)], [np.array([[0, 1, 2, 0]] * 2)],
...                      wavelengths=[450.0, 550.0, 650.0])
>>> cube, labels = source.read(Window(0, 0, 2, 1, 3))
>>> cube.shape, labels.tolist(), source.classes()
((2, 2, 3), [[1, 2], [1, 2]], [0, 1, 2])
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import xarray as xr

from bandselect.errors import (
    BandSelectError,
    ConfigError,
    DTypeError,
    NonFiniteError,
    ShapeError,
    StoreError,
    WavelengthError,
)
from bandselect.labels import integer_labels
from bandselect.names import (
    ATTR_ACQUISITION_ID,
    COORD_WAVELENGTH,
    DIM_BAND,
    DIM_X,
    DIM_Y,
    VAR_CUBE,
    VAR_MASK,
    VAR_VALID,
)
from bandselect.spectral import check_same_grid, validate_wavelengths
from bandselect.store.integrity import DECODE_ERRORS

#: The fix named when acquisitions of one source have different wavelength grids.
GRID_FIX = "read acquisitions of one sensor configuration (one wavelength grid) together"


@dataclass(frozen=True)
class Window:
    """Rows ``y0:y1`` and columns ``x0:x1`` of acquisition number ``acquisition`` of a source."""

    acquisition: int
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the window."""
        return self.y1 - self.y0, self.x1 - self.x0


@runtime_checkable
class WindowSource(Protocol):
    """What the samplers read: acquisitions cut into windows (see the module docstring)."""

    ids: list[str]
    shapes: list[tuple[int, int]]
    wavelengths: np.ndarray
    labelled: list[bool]
    has_mask: bool

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray | None]:
        """The cube ``(h, w, C)`` float32 and the labels ``(h, w)`` as stored (None: no mask)."""
        ...

    def classes(self) -> list[int]:
        """The label values present in the masks (reads every mask once)."""
        ...

    def invalid_pixels(self) -> list[int]:
        """Per acquisition, the pixels flagged invalid (``valid`` False); 0 without a ``valid`` flag."""
        ...

    @property
    def flagged(self) -> list[bool]:
        """Per acquisition, whether it has a validity flag (a ``valid`` variable)."""
        ...

    def read_valid(self, window: Window) -> np.ndarray | None:
        """The validity ``(h, w)`` bool of a window (False: an invalid pixel); None without a flag."""
        ...


def check_acquisition_ids(wanted: Sequence[str], known: Sequence[str], what: str) -> list[str]:
    """``wanted`` without repeats, after checking that each is among ``known``.

    Raises
    ------
    StoreError
        An unknown id; the message suggests close matches.
    """
    known = list(known)
    for acquisition in wanted:
        if acquisition not in known:
            close = difflib.get_close_matches(str(acquisition), [str(k) for k in known], n=3)
            raise StoreError(
                f"unknown acquisition {acquisition!r} in {what}",
                expected=f"ids among {known[:10]}{' ...' if len(known) > 10 else ''}",
                found=repr(acquisition),
                fix=(f"did you mean {' or '.join(map(repr, close))}? " if close else "")
                + "list the ids with campaign.ids()",
            )
    return list(dict.fromkeys(wanted))


def check_window(window: Window, ids: Sequence[str], shapes: Sequence[tuple[int, int]]) -> None:
    """Raise :class:`ShapeError` unless ``window`` is a non-empty window inside one of ``shapes``."""
    if not 0 <= window.acquisition < len(shapes):
        raise ShapeError(
            f"window {window}",
            expected=f"an acquisition index in [0, {len(shapes)})",
            found=window.acquisition,
            fix="cut windows from this source's shapes",
        )
    height, width = shapes[window.acquisition]
    if not (0 <= window.y0 < window.y1 <= height and 0 <= window.x0 < window.x1 <= width):
        raise ShapeError(
            f"window {window} of acquisition {ids[window.acquisition]!r}",
            expected=f"a non-empty window inside its {height} × {width} pixels",
            found=f"rows {window.y0}:{window.y1}, columns {window.x0}:{window.x1}",
            fix="cut windows from this source's shapes",
        )


def _check_real_dtype(dtype: np.dtype, what: str) -> None:
    if np.dtype(dtype).kind not in "iuf":
        raise DTypeError(
            what,
            expected="a real numeric dtype (float32 preferred)",
            found=str(dtype),
            fix="convert the cube to float32",
        )


def _float32(cube: Any, what: str) -> np.ndarray:
    array = np.asarray(cube)
    _check_real_dtype(array.dtype, what)
    return array.astype(np.float32, copy=False)


def _check_finite(cubes: Sequence[np.ndarray], what: str) -> None:
    """Refuse NaN/Inf; the first bad value is named by ``(acquisition, y, x, band)``."""
    n_bad, first = 0, None
    for index, cube in enumerate(cubes):
        finite = np.isfinite(cube)
        if not finite.all():
            bad = np.argwhere(~finite)
            n_bad += len(bad)
            first = first or (index, *(int(i) for i in bad[0]))
    if first is not None:
        raise NonFiniteError(
            what,
            expected="finite values",
            found=f"{n_bad} NaN/Inf values, the first at index {first}",
            fix="repair or mask the bad pixels before training (ingest with mask_nonfinite=True, or give "
            "them the ignore_label class in memory)",
        )


def _zero_ignored(cube: np.ndarray, mask: Any, ignore_label: int, what: str) -> np.ndarray:
    """``cube`` with its non-finite values in ``ignore_label`` pixels set to 0 (a copy, only if there
    are any); a mask of another shape is left to the caller's shape check."""
    labels = integer_labels(mask, what=what)
    bad = ~np.isfinite(cube).all(axis=-1)
    if labels.shape != bad.shape or not bad.any():
        return cube
    ignored = bad & (labels == ignore_label)
    if not ignored.any():
        return cube
    out = cube.copy()
    out[ignored] = 0.0
    return out


def present_classes(labels: np.ndarray, what: str) -> set[int]:
    """The values present in ``labels``, bool or integer (see :func:`~bandselect.labels.integer_labels`)."""
    labels = integer_labels(labels, what=what)
    if labels.size == 0:
        return set()
    if labels.dtype != np.bool_ and int(labels.min()) >= 0 and int(labels.max()) < 2**16:
        # Counting is linear; np.unique sorts (a large mask is read once per data set here).
        return set(np.flatnonzero(np.bincount(labels.ravel().astype(np.intp))).tolist())
    return {int(v) for v in np.unique(labels)}


def stack_frames(
    cube: Any, mask: Any = None, *, cube_name: str = "cube", mask_name: str = "mask"
) -> tuple[np.ndarray, np.ndarray | None]:
    """In-memory frames as a ``(B, H, W, C)`` float32 stack and ``(B, H, W)`` labels (as given).

    ``cube`` is ``(H, W, C)`` or ``(B, H, W, C)``, real numeric (NumPy, or anything ``np.asarray`` reads);
    ``mask`` is ``(H, W)``/``(H, W, 1)`` or ``(B, H, W)``/``(B, H, W, 1)``.

    Raises
    ------
    ShapeError
        A cube that is not 3-D/4-D with every size >= 1, or a mask of another shape.
    DTypeError
        A cube that is not real numeric.
    """
    array = np.asarray(cube)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or min(array.shape) < 1:
        raise ShapeError(
            cube_name,
            expected="(H, W, C) or (B, H, W, C) with every size >= 1",
            found=str(tuple(array.shape)),
            fix="put the bands last, e.g. cube.transpose(1, 2, 0) for a (C, H, W) cube",
        )
    array = _float32(array, cube_name)
    if mask is None:
        return array, None
    labels = np.asarray(mask)
    lead = array.shape[:3]
    if labels.ndim in (3, 4) and labels.shape[-1] == 1 and labels.shape[:-1] in (lead, lead[1:]):
        labels = labels[..., 0]
    if labels.shape == lead[1:] and lead[0] == 1:
        labels = labels[None]
    if labels.shape != lead:
        raise ShapeError(
            mask_name,
            expected=f"{lead} or {(*lead, 1)} matching {cube_name}",
            found=str(tuple(labels.shape)),
            fix=f"pass one label per pixel of {cube_name}",
        )
    return array, labels


class ArraySource:
    """In-memory acquisitions: ``(H, W, C)`` cubes (sizes may differ) and optional ``(H, W)`` labels.

    Parameters
    ----------
    cubes
        One ``(H, W, C)`` real numeric, finite array per acquisition (kept as float32; float32 C-ordered
        input is not copied).
    masks
        None, or one ``(H, W)`` label mask per cube: bool or integer class ids (integral floats are
        accepted as integers).
    wavelengths
        ``(C,)`` band centres in nm (keyword).
    ids
        Names of the acquisitions in messages (default ``"0"``, ``"1"``, ...).
    cube_name, mask_name
        How the cubes and masks are named in errors.
    ignore_label
        A class of the masks whose pixels count nowhere (the batches leave them out by the same
        label): they may hold anything, NaN included, and read as 0 (as ``fit(..., ignore_label=...)``
        accepts them). Every other pixel must be finite.

    Raises
    ------
    ShapeError, DTypeError, NonFiniteError, WavelengthError
        Cubes that are not 3-D, real numeric and finite (outside ``ignore_label`` pixels) with one band
        count; masks of another shape or dtype; wavelengths that do not describe the bands.

    Examples
    --------
    >>> import numpy as np
    >>> source = ArraySource([np.zeros((4, 5, 3), np.float32)], None, wavelengths=[1.0, 2.0, 3.0])
    >>> source.shapes, source.read(Window(0, 0, 2, 1, 3))[0].shape, source.has_mask
    ([(4, 5)], (2, 2, 3), False)
    """

    def __init__(
        self,
        cubes: Sequence[Any],
        masks: Sequence[Any] | None = None,
        *,
        wavelengths: Any,
        ids: Sequence[str] | None = None,
        cube_name: str = "cube",
        mask_name: str = "mask",
        ignore_label: int | None = None,
    ) -> None:
        self.cubes = [np.ascontiguousarray(_float32(cube, cube_name)) for cube in cubes]
        if not self.cubes:
            raise ShapeError(cube_name, expected="at least one cube", found="none", fix="pass [cube]")
        for cube in self.cubes:
            if cube.ndim != 3 or min(cube.shape) < 1 or cube.shape[-1] != self.cubes[0].shape[-1]:
                raise ShapeError(
                    cube_name,
                    expected=f"(H, W, C) cubes with C = {self.cubes[0].shape[-1]} bands, every size >= 1",
                    found=f"shape {cube.shape}",
                    fix="put the bands last and pass cubes of one sensor",
                )
        if ignore_label is not None and masks is not None and len(masks) == len(self.cubes):
            self.cubes = [
                _zero_ignored(cube, mask, int(ignore_label), mask_name)
                for cube, mask in zip(self.cubes, masks, strict=True)
            ]
        _check_finite(self.cubes, cube_name)
        self.ids = [str(i) for i in range(len(self.cubes))] if ids is None else [str(i) for i in ids]
        if len(self.ids) != len(self.cubes):
            raise ConfigError(
                "ArraySource ids",
                expected=f"{len(self.cubes)} ids, one per cube",
                found=f"{len(self.ids)}",
                fix="pass one id per cube, or none",
            )
        self.shapes = [(int(c.shape[0]), int(c.shape[1])) for c in self.cubes]
        self.wavelengths = validate_wavelengths(wavelengths, n_bands=self.cubes[0].shape[-1])
        self.masks: list[np.ndarray] | None = None
        if masks is not None:
            self.masks = [integer_labels(m, what=mask_name) for m in masks]
            if [m.shape for m in self.masks] != self.shapes:
                raise ShapeError(
                    mask_name,
                    expected=f"one (H, W) mask per cube, shapes {self.shapes}",
                    found=[m.shape for m in self.masks],
                    fix="pass masks of the cubes' spatial shapes",
                )
        self.labelled = [self.masks is not None] * len(self.cubes)
        self.has_mask = self.masks is not None

    @classmethod
    def from_arrays(
        cls,
        cube: Any,
        mask: Any = None,
        *,
        wavelengths: Any,
        cube_name: str = "cube",
        mask_name: str = "mask",
        ignore_label: int | None = None,
    ) -> ArraySource:
        """A source over an ``(H, W, C)`` or ``(B, H, W, C)`` cube and labels (see :func:`stack_frames`)."""
        stack, labels = stack_frames(cube, mask, cube_name=cube_name, mask_name=mask_name)
        return cls(
            list(stack),
            None if labels is None else list(labels),
            wavelengths=wavelengths,
            cube_name=cube_name,
            mask_name=mask_name,
            ignore_label=ignore_label,
        )

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray | None]:
        """The cube ``(h, w, C)`` and labels ``(h, w)`` (or None) of a window (views, not copies)."""
        check_window(window, self.ids, self.shapes)
        rows, cols = slice(window.y0, window.y1), slice(window.x0, window.x1)
        labels = None if self.masks is None else self.masks[window.acquisition][rows, cols]
        return self.cubes[window.acquisition][rows, cols], labels

    def classes(self) -> list[int]:
        """The label values present in the masks (empty without masks)."""
        present: set[int] = set()
        for mask in self.masks or []:
            present |= present_classes(mask, "mask")
        return sorted(present)

    def invalid_pixels(self) -> list[int]:
        """In-memory cubes carry no validity flag (they are checked finite): zeros."""
        return [0] * len(self.cubes)

    @property
    def flagged(self) -> list[bool]:
        """No acquisition has a validity flag."""
        return [False] * len(self.cubes)

    def read_valid(self, window: Window) -> np.ndarray | None:
        """None: in-memory cubes carry no validity flag."""
        check_window(window, self.ids, self.shapes)
        return None


def dataset_ids(datasets: Sequence[xr.Dataset]) -> list[str]:
    """Ids of acquisition Datasets: their ``acquisition_id`` attribute, else their position as a string.

    Raises
    ------
    StoreError
        Two Datasets with one id.
    """
    ids: list[str] = []
    for index, ds in enumerate(datasets):
        label = str(ds.attrs.get(ATTR_ACQUISITION_ID, index))
        if label in ids:
            raise StoreError(
                "datasets",
                expected="distinct acquisition ids",
                found=f"{label!r} twice",
                fix="pass each once",
            )
        ids.append(label)
    return ids


def _values(array: xr.DataArray, what: str) -> np.ndarray:
    """``array.values``, a chunk that does not decode reported as a :class:`StoreError` naming ``what``.

    Acquisitions opened from a campaign store already report the chunk itself
    (:mod:`bandselect.store.integrity`); this covers Datasets opened some other way.
    """
    try:
        return np.asarray(array.values)
    except BandSelectError:
        raise
    except DECODE_ERRORS as error:
        raise StoreError(
            what,
            expected="chunks that decode",
            found=f"{type(error).__name__}: {error}",
            fix="re-create the damaged store from its sources",
        ) from error


class DatasetSource:
    """Acquisitions given as xarray Datasets in the store layout (in memory or Dask-backed).

    Each Dataset has ``cube`` with dims ``(y, x, band)`` (any order), the ``wavelength`` coordinate in nm
    and an optional ``mask`` ``(y, x)``; a window is read with ``isel`` (so a Dask-backed Dataset computes
    only the window). Their values were never checked by a store writer: reads refuse NaN/Inf, except in
    pixels a ``valid`` variable flags False (those read as 0, as a store holds them).

    Parameters
    ----------
    datasets
        The acquisitions.
    ids
        Their ids (default: :func:`dataset_ids`).

    Raises
    ------
    StoreError
        A Dataset without ``cube`` in the layout, or repeated ids.
    WavelengthError
        A Dataset without wavelengths, or Datasets with different grids.
    DTypeError
        A cube that is not real numeric.
    """

    def __init__(self, datasets: Sequence[xr.Dataset], ids: Sequence[str] | None = None) -> None:
        self.datasets = list(datasets)
        self.ids = dataset_ids(self.datasets) if ids is None else [str(i) for i in ids]
        if not self.datasets or len(self.ids) != len(self.datasets):
            raise StoreError(
                "datasets",
                expected="at least one Dataset, and one id per Dataset",
                found=f"{len(self.datasets)} Datasets, {len(self.ids)} ids",
                fix="pass the acquisitions (and their ids)",
            )
        grids = [
            self._check(acquisition, ds) for acquisition, ds in zip(self.ids, self.datasets, strict=True)
        ]
        self.wavelengths = validate_wavelengths(grids[0])
        for acquisition, grid in zip(self.ids[1:], grids[1:], strict=True):
            check_same_grid(
                self.wavelengths,
                grid,
                f"wavelengths of acquisition {acquisition!r}",
                reference=f"acquisition {self.ids[0]!r}",
                fix=GRID_FIX,
            )
        self.shapes = [(int(ds.sizes[DIM_Y]), int(ds.sizes[DIM_X])) for ds in self.datasets]
        self.labelled = [VAR_MASK in ds for ds in self.datasets]
        self.has_mask = all(self.labelled)
        # The last window's validity: read() needs it (to zero the invalid pixels), and the batch
        # reader asks for it right after; a Dask-backed Dataset would compute it twice.
        self._last_valid: tuple[Window, np.ndarray | None] | None = None

    @staticmethod
    def _check(acquisition: str, ds: xr.Dataset) -> np.ndarray:
        if VAR_CUBE not in ds or set(ds[VAR_CUBE].dims) != {DIM_Y, DIM_X, DIM_BAND}:
            raise StoreError(
                f"acquisition {acquisition!r}",
                expected=f"a variable {VAR_CUBE!r} with dims ({DIM_Y}, {DIM_X}, {DIM_BAND})",
                found=f"variables {sorted(map(str, ds.data_vars))}"
                + (f", cube dims {ds[VAR_CUBE].dims}" if VAR_CUBE in ds else ""),
                fix="open acquisitions written by bandselect.store",
            )
        if VAR_MASK in ds and set(ds[VAR_MASK].dims) != {DIM_Y, DIM_X}:
            raise StoreError(
                f"mask of acquisition {acquisition!r}",
                expected=f"dims ({DIM_Y}, {DIM_X})",
                found=str(ds[VAR_MASK].dims),
                fix="give one label per pixel",
            )
        if COORD_WAVELENGTH not in ds.coords:
            raise WavelengthError(
                f"acquisition {acquisition!r}",
                expected=f"a {COORD_WAVELENGTH!r} coordinate on {DIM_BAND!r}",
                found=f"coordinates {sorted(map(str, ds.coords))}",
                fix="ingest the acquisition with its wavelengths",
            )
        _check_real_dtype(ds[VAR_CUBE].dtype, f"cube of acquisition {acquisition!r}")
        return np.asarray(ds[COORD_WAVELENGTH].values, dtype=np.float64)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray | None]:
        """The cube ``(h, w, C)`` and labels ``(h, w)`` (or None) of a window; NaN/Inf are refused."""
        check_window(window, self.ids, self.shapes)
        ds = self.datasets[window.acquisition]
        where = {DIM_Y: slice(window.y0, window.y1), DIM_X: slice(window.x0, window.x1)}
        what = (
            f"cube of acquisition {self.ids[window.acquisition]!r} rows {window.y0}:{window.y1} "
            f"cols {window.x0}:{window.x1}"
        )
        cube = _float32(_values(ds[VAR_CUBE].isel(where).transpose(DIM_Y, DIM_X, DIM_BAND), what), what)
        valid = self.read_valid(window)
        if valid is not None and not valid.all():
            # Invalid pixels may hold anything (NaN from a no-data value): 0 there, as a store holds them.
            cube = np.where(valid[..., None], cube, np.float32(0))
        _check_finite([cube], what)
        labels = None
        if VAR_MASK in ds:
            labels = np.asarray(
                _values(ds[VAR_MASK].isel(where).transpose(DIM_Y, DIM_X), what.replace("cube", "mask", 1))
            )
        return cube, labels

    def classes(self) -> list[int]:
        """The label values present in the masks."""
        present: set[int] = set()
        for acquisition, ds in zip(self.ids, self.datasets, strict=True):
            if VAR_MASK in ds:
                present |= present_classes(ds[VAR_MASK].values, f"mask of acquisition {acquisition!r}")
        return sorted(present)

    def invalid_pixels(self) -> list[int]:
        """Per acquisition, the pixels its ``valid`` variable flags False (0 without one)."""
        return [
            int((~ds[VAR_VALID].astype(bool)).sum().values) if VAR_VALID in ds else 0 for ds in self.datasets
        ]

    @property
    def flagged(self) -> list[bool]:
        """Per acquisition, whether its Dataset has a ``valid`` variable."""
        return [VAR_VALID in ds for ds in self.datasets]

    def read_valid(self, window: Window) -> np.ndarray | None:
        """The ``valid`` variable ``(h, w)`` bool of a window, or None when the Dataset has none."""
        check_window(window, self.ids, self.shapes)
        last = self._last_valid
        if last is not None and last[0] == window:
            return last[1]
        ds = self.datasets[window.acquisition]
        valid = None
        if VAR_VALID in ds:
            where = {DIM_Y: slice(window.y0, window.y1), DIM_X: slice(window.x0, window.x1)}
            what = f"valid of acquisition {self.ids[window.acquisition]!r}"
            valid = np.asarray(_values(ds[VAR_VALID].isel(where).transpose(DIM_Y, DIM_X), what), dtype=bool)
            valid.setflags(write=False)  # shared by read() and the batch reader
        self._last_valid = (window, valid)
        return valid
