"""Building blocks shared by the file readers: options, wavelength grids, provenance, block helpers."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import numpy as np

from bandselect.errors import ConfigError, FileFormatError, ShapeError, WavelengthError
from bandselect.names import (
    ATTR_ACQUISITION_TIME,
    ATTR_DATA_IGNORE_VALUE,
    ATTR_DROPPED_BANDS,
    ATTR_INGEST_WARNINGS,
    ATTR_SENSOR,
    ATTR_SOURCE_BAND_ORDER,
    ATTR_SOURCE_FILE,
    ATTR_SOURCE_FORMAT,
    ATTR_SOURCE_SHA256,
    ATTR_SOURCE_WAVELENGTH_UNITS,
)
from bandselect.spectral import validate_wavelengths
from bandselect.store.georef import Georeference
from bandselect.store.layout import (
    AcquisitionSource,
    AttrValue,
    Block,
    check_cube_dtype,
    check_mask_dtype,
    check_mask_shape,
)
from bandselect.store.units import convert_wavelengths, to_nanometres

__all__ = [
    "Grid",
    "ReaderOptions",
    "file_sha256",
    "finish_source",
    "resolve_grid",
    "to_nanometres",
    "with_ignore_value",
]

_HASH_CHUNK = 8 * 2**20


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def provenance_attrs(
    path: Path, source_format: str, units: str, sensor: str = "", time: str = ""
) -> dict[str, AttrValue]:
    return {
        ATTR_SOURCE_FILE: str(path.resolve()),
        ATTR_SOURCE_SHA256: file_sha256(path),
        ATTR_SOURCE_FORMAT: source_format,
        ATTR_SENSOR: sensor,
        ATTR_ACQUISITION_TIME: time,
        ATTR_SOURCE_WAVELENGTH_UNITS: units,
    }


ByteOrder = Literal["little", "big"]
ReaderChoice = Literal["auto", "gdal"]
_BYTE_ORDERS = ("little", "big")
_READERS = ("auto", "gdal")


@dataclass(frozen=True)
class ReaderOptions:
    """Per-call reader options (see :func:`bandselect.store.open_source`).

    Attributes
    ----------
    wavelengths_nm
        Band centres in nm that replace (or supply) the file's, one per band of the file.
    sort_bands
        Store the bands sorted by wavelength.
    byte_order
        Byte order of raw binary data (ENVI): overrides the header's ``byte order``; ``None`` keeps it
        (and reads a header without one as little-endian, the ENVI default, with a recorded warning).
    allow_trailing_bytes
        Accept an ENVI data file longer than its header describes (the extra bytes are ignored and
        recorded); by default that is an error, since it usually means a wrong band or line count.
    reader
        ``"auto"``: each format's own reader; ``"gdal"``: read the file through GDAL (rasterio), for ENVI
        files GDAL reads differently or any raster format GDAL opens.
    """

    wavelengths_nm: np.ndarray | None = None
    sort_bands: bool = False
    byte_order: ByteOrder | None = None
    allow_trailing_bytes: bool = False
    reader: ReaderChoice = "auto"

    def __post_init__(self) -> None:
        if self.byte_order is not None and self.byte_order not in _BYTE_ORDERS:
            raise ConfigError(
                "byte_order",
                expected="'little', 'big' or None (the header's)",
                found=repr(self.byte_order),
                fix="pass byte_order='little' or 'big' (CLI --byte-order little|big)",
            )
        if self.reader not in _READERS:
            raise ConfigError(
                "reader",
                expected="'auto' or 'gdal'",
                found=repr(self.reader),
                fix="pass reader='auto' (each format's reader) or 'gdal' (CLI --reader gdal)",
            )


@dataclass(frozen=True)
class Grid:
    """Validated wavelengths in nm of the stored bands, and how they came from the source's bands.

    Attributes
    ----------
    wavelengths_nm
        ``(C_stored,)`` strictly increasing band centres.
    units
        The units the source stated (``"nm (given)"`` for the ``wavelengths=`` option).
    order
        Source band index of each stored band when the bands are a subset (bad bands dropped) or
        re-sorted; ``None`` when every source band is stored in source order.
    dropped
        Source indices of the bands left out (the bad band list).
    notes
        Warnings to record with the acquisition (e.g. inferred units).
    """

    wavelengths_nm: np.ndarray
    units: str
    order: np.ndarray | None
    dropped: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()


def resolve_grid(
    found: np.ndarray | None,
    units: str | None,
    options: ReaderOptions,
    n_bands: int,
    what: str,
    fix: str,
    *,
    good_bands: np.ndarray | None = None,
    units_from: str = "the file's wavelength units",
) -> Grid:
    """The stored bands' wavelengths from the file's (or the given) values, units and bad band list.

    The wavelengths (one per source band) are checked for count, then the bad bands (``good_bands``
    False) are dropped, the rest converted to nm and checked for plausibility, sorted when asked, and
    validated as strictly increasing.
    """
    if options.wavelengths_nm is not None:
        values = np.asarray(options.wavelengths_nm, dtype=np.float64)
        units, stated = "nm", "nm (given)"
        units_from = "wavelengths= / --wavelengths, always in nm"
    elif found is None:
        raise WavelengthError(
            f"wavelengths of {what}", expected=f"{n_bands} band centres", found="none in the file", fix=fix
        )
    else:
        values, stated = np.asarray(found, dtype=np.float64), ""
    if values.ndim != 1 or values.size != n_bands:
        validate_wavelengths(values, n_bands=n_bands)  # raises the rank or count error
    keep = np.arange(n_bands) if good_bands is None else np.flatnonzero(good_bands)
    converted = convert_wavelengths(values[keep], units, f"wavelengths of {what}", units_from=units_from)
    values = converted.nm
    stated = stated or converted.stated
    order = None if keep.size == n_bands else keep
    if options.sort_bands:
        candidate = np.argsort(values, kind="stable")
        if not np.array_equal(candidate, np.arange(values.size)):
            order, values = keep[candidate], values[candidate]
    try:
        values = validate_wavelengths(values, n_bands=keep.size)
    except WavelengthError as error:
        if options.sort_bands or "increasing" not in str(error.expected):
            raise
        raise WavelengthError(
            f"wavelengths of {what}",
            expected=error.expected,
            found=error.found,
            fix="pass sort_bands=True (CLI --sort-bands; a flow config: ingest: {sort_bands: true}; a "
            "comparison: scene: {sort_bands: true}) to read the bands sorted by wavelength "
            "(instruments with overlapping spectrometers, e.g. AVIRIS), or repair the source",
        ) from error
    dropped = tuple(int(i) for i in np.setdiff1d(np.arange(n_bands), keep))
    notes = [converted.note] if converted.note else []
    if dropped:
        notes.append(f"{what}: {len(dropped)} bad bands left out (bad band list): {list(dropped)}")
    return Grid(values, stated, order, dropped, tuple(notes))


IgnoreValue = float | np.ndarray


def finish_source(
    path: Path,
    shape: tuple[int, int, int],
    dtype: np.dtype,
    grid: Grid,
    read_blocks: Callable[[int], Iterator[Block]],
    *,
    source_format: str,
    mask: np.ndarray | None = None,
    sensor: str = "",
    time: str = "",
    name: str | None = None,
    georeference: Georeference | None = None,
    ignore_value: IgnoreValue | None = None,
    notes: Sequence[str] = (),
    extra_attrs: Mapping[str, AttrValue] | None = None,
) -> AcquisitionSource:
    """Assemble the source: bands subset or re-ordered, no-data pixels marked, mask attached, provenance.

    Parameters
    ----------
    shape
        ``(height, width, source bands)``; the stored band count is the grid's.
    ignore_value
        The source's no-data value (one, or one per source band): pixels holding it in any stored band
        are stored as invalid (``valid`` False) with 0 in those values.
    notes
        Warnings to record (``attrs["ingest_warnings"]``) and to emit as :class:`UserWarning`.
    """
    height, width, _ = shape
    mask_dtype = mask_dtype_of(mask, height, width, path)
    attrs = provenance_attrs(path, source_format, grid.units, sensor=sensor, time=time)
    if grid.order is not None:
        read_blocks = reordered(read_blocks, grid.order)
        attrs[ATTR_SOURCE_BAND_ORDER] = [int(i) for i in grid.order]
    if grid.dropped:
        attrs[ATTR_DROPPED_BANDS] = list(grid.dropped)
    if ignore_value is not None:
        stored_value = _stored_ignore_value(ignore_value, grid.order)
        read_blocks = with_ignore_value(read_blocks, stored_value)
        attrs[ATTR_DATA_IGNORE_VALUE] = (
            float(stored_value) if np.ndim(stored_value) == 0 else [float(v) for v in stored_value]
        )
    read_blocks = with_mask(read_blocks, mask)
    all_notes = [*notes, *grid.notes]
    for note in all_notes:
        warnings.warn(note, UserWarning, stacklevel=3)
    if all_notes:
        attrs[ATTR_INGEST_WARNINGS] = list(all_notes)
    attrs.update(extra_attrs or {})
    return AcquisitionSource(
        name=name or path.stem,
        shape=(height, width, int(grid.wavelengths_nm.size)),
        dtype=dtype,
        wavelengths_nm=grid.wavelengths_nm,
        read_blocks=read_blocks,
        mask_dtype=mask_dtype,
        has_valid=ignore_value is not None,
        attrs=attrs,
        georeference=georeference,
    )


def _stored_ignore_value(value: IgnoreValue, order: np.ndarray | None) -> IgnoreValue:
    if np.ndim(value) == 0:
        return float(value)
    vector = np.asarray(value, dtype=np.float64).ravel()
    return vector if order is None else vector[order]


def with_ignore_value(
    read_blocks: Callable[[int], Iterator[Block]], value: IgnoreValue
) -> Callable[[int], Iterator[Block]]:
    """Mark pixels holding the no-data ``value`` in any band as invalid and store 0 in those values."""

    def masked(block_rows: int) -> Iterator[Block]:
        for cube, mask, valid in read_blocks(block_rows):
            hit = _equals(cube, value)
            pixel_ok = ~hit.any(axis=-1)
            if not bool(pixel_ok.all()):
                cube = np.where(hit, np.zeros((), dtype=cube.dtype), cube)
            valid = pixel_ok if valid is None else (np.asarray(valid, dtype=np.bool_) & pixel_ok)
            yield cube, mask, valid

    return masked


def _equals(cube: np.ndarray, value: IgnoreValue) -> np.ndarray:
    """Where ``cube`` holds ``value`` (NaN matches NaN), compared in the cube's dtype."""
    values = np.broadcast_to(np.asarray(value, dtype=np.float64), cube.shape[-1:])
    hit = np.zeros(cube.shape, dtype=np.bool_)
    for band in np.unique(values[np.isfinite(values)]):
        columns = values == band
        if cube.dtype.kind == "f":
            target = np.asarray(band).astype(cube.dtype)
        elif float(band).is_integer() and np.iinfo(cube.dtype).min <= band <= np.iinfo(cube.dtype).max:
            target = np.asarray(int(band), dtype=cube.dtype)
        else:
            continue  # not representable in this integer dtype: no pixel can hold it
        hit[..., columns] = cube[..., columns] == target
    not_finite = ~np.isfinite(values)
    if not_finite.any() and cube.dtype.kind == "f":
        hit[..., not_finite] = ~np.isfinite(cube[..., not_finite])
    return hit


def reordered(
    read_blocks: Callable[[int], Iterator[Block]], order: np.ndarray
) -> Callable[[int], Iterator[Block]]:
    def reordered(block_rows: int) -> Iterator[Block]:
        for cube, mask, valid in read_blocks(block_rows):
            yield np.take(cube, order, axis=-1), mask, valid

    return reordered


def read_array(handle: IO[bytes], shape: tuple[int, ...], dtype: np.dtype, path: Path) -> np.ndarray:
    array = np.empty(shape, dtype=dtype)
    read_into(handle, array, path)
    return array


def read_into(handle: IO[bytes], array: np.ndarray, path: Path) -> None:
    """Fill a contiguous array from a binary stream; a short read means a truncated file."""
    view = memoryview(array.reshape(-1).view(np.uint8))
    filled = 0
    while filled < len(view):
        count = handle.readinto(view[filled:])  # type: ignore[attr-defined]
        if not count:
            raise FileFormatError(
                f"data of {path}",
                expected=f"{len(view)} more bytes",
                found=f"end of data after {filled}",
                fix="the file is truncated: re-copy or re-export it",
            )
        filled += count


def check_cube_header(shape: tuple[int, ...], dtype: np.dtype, what: str) -> tuple[int, int, int]:
    check_cube_dtype(dtype, what)
    if len(shape) != 3 or min(shape) < 1:
        raise ShapeError(
            what,
            expected="a non-empty 3-D cube (y, x, band)",
            found=f"shape {shape}",
            fix="save the cube as an array of shape (rows, columns, bands)",
        )
    return shape[0], shape[1], shape[2]


def mask_dtype_of(mask: np.ndarray | None, height: int, width: int, path: Path) -> np.dtype | None:
    if mask is None:
        return None
    mask = np.squeeze(mask) if mask.ndim == 3 and mask.shape[-1] == 1 else mask
    check_mask_dtype(mask.dtype, f"mask of {path.name}")
    check_mask_shape(mask.shape, height, width, what=f"mask of {path.name}")
    return mask.dtype


def with_mask(
    read_cube: Callable[[int], Iterator[Block]], mask: np.ndarray | None
) -> Callable[[int], Iterator[Block]]:
    if mask is None:
        return read_cube
    mask2d = mask.reshape(mask.shape[0], mask.shape[1])

    def read_blocks(block_rows: int) -> Iterator[Block]:
        y0 = 0
        for cube, _, valid in read_cube(block_rows):
            rows = cube.shape[0]
            yield cube, mask2d[y0 : y0 + rows], valid
            y0 += rows

    return read_blocks


def array_blocks(cube: np.ndarray) -> Callable[[int], Iterator[Block]]:
    def read_cube(block_rows: int) -> Iterator[Block]:
        for y0 in range(0, cube.shape[0], block_rows):
            yield cube[y0 : y0 + block_rows], None, None

    return read_cube
