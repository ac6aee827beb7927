"""HDF5 files (``.h5``, ``.hdf5``, ``.he5``) and MATLAB v7.3 ``.mat`` files (which are HDF5), through h5py.

The cube is the dataset named ``cube`` or else the only 3-D numeric dataset in the file; wavelengths come
from the first dataset (beside the cube, then at the root) or attribute of the cube named
``wavelengths_nm, wavelength_nm, wavelengths, wavelength, wl, lambda``; names ending in ``_nm`` are nm,
other units come from a ``units`` attribute or the values' magnitude (see :mod:`bandselect.store.units`).
Labels come from one of ``mask, gt, labels, groundtruth, ground_truth`` (two of them are an error: which
one holds the labels would be a guess).

Axis order: MATLAB writes arrays column-major, so a MATLAB ``rows × columns × bands`` array reads in h5py
as ``(bands, columns, rows)`` and is transposed back. A plain HDF5 cube is ``(y, x, band)``; a cube whose
*first* axis alone has one entry per wavelength is read as ``(band, y, x)``. The order read is recorded in
``attrs["source_axis_order"]``. Rows are read in blocks (h5py hyperslabs), never the whole cube.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bandselect.errors import FileFormatError, LabelError
from bandselect.names import ATTR_SOURCE_AXIS_ORDER
from bandselect.store.layout import AcquisitionSource, Block, check_cube_dtype
from bandselect.store.sources import ReaderOptions, finish_source, resolve_grid

if TYPE_CHECKING:
    import h5py

__all__ = ["HDF5_SIGNATURE", "HDF5_SUFFIXES", "LABEL_NAMES", "WAVELENGTH_NAMES", "is_hdf5", "read_hdf5"]

HDF5_SUFFIXES = (".h5", ".hdf5", ".he5")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
WAVELENGTH_NAMES = ("wavelengths_nm", "wavelength_nm", "wavelengths", "wavelength", "wl", "lambda")
LABEL_NAMES = ("mask", "gt", "labels", "groundtruth", "ground_truth")
_UNIT_ATTRIBUTES = ("units", "unit", "wavelength_units")
_MATLAB_INTERNAL = ("#refs#", "#subsystem#")


def is_hdf5(path: Path) -> bool:
    """Whether the file starts with the HDF5 signature (at byte 0, or 512 after MATLAB's header)."""
    with open(path, "rb") as handle:
        head = handle.read(520)
    return head[:8] == HDF5_SIGNATURE or head[512:520] == HDF5_SIGNATURE


def unique_label_name(names: Any, where: str) -> str | None:
    """The one label array among ``names`` (``None`` when there is none).

    Raises
    ------
    LabelError
        More than one of ``mask, gt, labels, groundtruth, ground_truth`` is present.
    """
    present = [name for name in LABEL_NAMES if name in names]
    if len(present) > 1:
        raise LabelError(
            f"labels of {where}",
            expected=f"one label array (one of {', '.join(LABEL_NAMES)})",
            found=f"{len(present)}: {', '.join(present)}",
            fix=f"keep only the one that holds the labels (e.g. remove {present[1]!r}) and ingest again",
        )
    return present[0] if present else None


@dataclass(frozen=True)
class _Layout:
    """How a stored array maps to (y, x, band): which axes, and the label for provenance."""

    name: str  # e.g. "y,x,band"
    band_axis: int
    row_axis: int

    def rows(self, dataset: h5py.Dataset, y0: int, y1: int) -> np.ndarray:
        index: list[slice] = [slice(None)] * 3
        index[self.row_axis] = slice(y0, y1)
        block = np.asarray(dataset[tuple(index)])
        if self.name == "band,x,y":  # MATLAB: (C, W, rows) → (rows, W, C)
            return np.ascontiguousarray(block.transpose(2, 1, 0))
        if self.name == "band,y,x":
            return np.ascontiguousarray(np.moveaxis(block, 0, -1))
        return block

    def shape(self, stored: tuple[int, ...]) -> tuple[int, int, int]:
        if self.name == "band,x,y":
            return stored[2], stored[1], stored[0]
        if self.name == "band,y,x":
            return stored[1], stored[2], stored[0]
        return stored[0], stored[1], stored[2]


_BAND_LAST = _Layout("y,x,band", band_axis=2, row_axis=0)
_BAND_FIRST = _Layout("band,y,x", band_axis=0, row_axis=1)
_MATLAB = _Layout("band,x,y", band_axis=0, row_axis=2)


def _datasets(group: h5py.Group) -> dict[str, h5py.Dataset]:
    import h5py

    found: dict[str, h5py.Dataset] = {}

    def visit(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset) and not name.startswith(_MATLAB_INTERNAL):
            found[name] = item

    group.visititems(visit)
    return found


def _find_cube(datasets: dict[str, h5py.Dataset], path: Path) -> tuple[str, h5py.Dataset]:
    named = [name for name in datasets if name.rsplit("/", 1)[-1] == "cube"]
    if len(named) == 1:
        return named[0], datasets[named[0]]
    three_d = [n for n, d in datasets.items() if d.ndim == 3 and d.dtype.kind in "iufcb"]
    if len(three_d) != 1:
        raise FileFormatError(
            f"HDF5 file {path}",
            expected="a dataset 'cube' or exactly one 3-D numeric dataset",
            found=f"3-D datasets {three_d or 'none'} among {sorted(datasets)[:12]}",
            fix="name the cube dataset 'cube' (rows × columns × bands)",
        )
    return three_d[0], datasets[three_d[0]]


def _beside(cube_name: str, datasets: dict[str, h5py.Dataset], names: tuple[str, ...]) -> dict[str, Any]:
    """The datasets with one of ``names`` in the cube's group, else at the root (name → dataset)."""
    parent = cube_name.rsplit("/", 1)[0] + "/" if "/" in cube_name else ""
    for prefix in dict.fromkeys((parent, "")):
        hits = {n: datasets[prefix + n] for n in names if prefix + n in datasets}
        if hits:
            return hits
    return {}


def _text_attribute(item: Any, names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in item.attrs:
            value = item.attrs[name]
            value = value.decode() if isinstance(value, bytes) else value
            if isinstance(value, str):
                return value
    return None


def _wavelengths(cube_name: str, cube: Any, datasets: dict[str, Any]) -> tuple[np.ndarray | None, str | None]:
    hits = _beside(cube_name, datasets, WAVELENGTH_NAMES)
    for name in WAVELENGTH_NAMES:
        if name in hits:
            values = np.asarray(hits[name][()], dtype=np.float64).ravel()
            units = "nm" if name.endswith("_nm") else _text_attribute(hits[name], _UNIT_ATTRIBUTES)
            return values, units
    for name in WAVELENGTH_NAMES:
        if name in cube.attrs:
            values = np.asarray(cube.attrs[name], dtype=np.float64).ravel()
            units = "nm" if name.endswith("_nm") else _text_attribute(cube, ("wavelength_units",))
            return values, units
    return None, None


def _layout(shape: tuple[int, ...], n_wavelengths: int | None, matlab: bool) -> _Layout:
    if matlab:
        return _MATLAB
    if n_wavelengths is not None and shape[0] == n_wavelengths != shape[2]:
        return _BAND_FIRST
    return _BAND_LAST


def read_hdf5(path: Path, *, options: ReaderOptions, matlab: bool = False) -> AcquisitionSource:
    """Open an HDF5 file or a MATLAB v7.3 ``.mat`` as a block source. See :func:`open_source`."""
    import h5py

    kind = "MATLAB v7.3 file" if matlab else "HDF5 file"
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise FileFormatError(
            f"{kind} {path}",
            expected=f"a readable {kind}",
            found=f"{type(error).__name__}: {error}",
            fix="the file is corrupt or truncated: re-copy or re-save it",
        ) from error
    with handle:
        datasets = _datasets(handle)
        cube_name, cube = _find_cube(datasets, path)
        stored = tuple(int(s) for s in cube.shape)
        dtype = check_cube_dtype(np.dtype(cube.dtype), f"cube {cube_name!r} of {path.name}")
        found, units = _wavelengths(cube_name, cube, datasets)
        given = options.wavelengths_nm
        n_wavelengths = len(given) if given is not None else (None if found is None else found.size)
        layout = _layout(stored, n_wavelengths, matlab)
        height, width, n_bands = layout.shape(stored)
        label_hits = _beside(cube_name, datasets, LABEL_NAMES)
        label = unique_label_name(label_hits, path.name)
        mask = None
        if label is not None:
            mask = np.asarray(label_hits[label][()])
            mask = mask.T if matlab and mask.ndim == 2 else mask
    grid = resolve_grid(
        found,
        units,
        options,
        n_bands,
        path.name,
        fix="save a dataset 'wavelengths_nm' beside the cube or pass wavelengths= (CLI --wavelengths)",
        units_from="the dataset's name (*_nm) or its 'units' attribute",
    )
    return finish_source(
        path,
        (height, width, n_bands),
        dtype,
        grid,
        _row_blocks(path, cube_name, layout, height),
        source_format="mat-v7.3" if matlab else "hdf5",
        mask=mask,
        extra_attrs={ATTR_SOURCE_AXIS_ORDER: layout.name},
    )


def _row_blocks(path: Path, cube_name: str, layout: _Layout, height: int) -> Callable[[int], Iterator[Block]]:
    def read_blocks(block_rows: int) -> Iterator[Block]:
        import h5py

        with h5py.File(path, "r") as handle:
            dataset = handle[cube_name]
            for y0 in range(0, height, block_rows):
                yield layout.rows(dataset, y0, min(height, y0 + block_rows)), None, None

    return read_blocks
