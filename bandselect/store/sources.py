"""Building blocks shared by the file readers: wavelength units and grids, provenance, block helpers."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from bandselect.errors import FileFormatError, ShapeError, WavelengthError
from bandselect.names import (
    ATTR_ACQUISITION_TIME,
    ATTR_SENSOR,
    ATTR_SOURCE_BAND_ORDER,
    ATTR_SOURCE_FILE,
    ATTR_SOURCE_FORMAT,
    ATTR_SOURCE_SHA256,
    ATTR_SOURCE_WAVELENGTH_UNITS,
)
from bandselect.spectral import validate_wavelengths
from bandselect.store.layout import (
    AcquisitionSource,
    AttrValue,
    Block,
    check_cube_dtype,
    check_mask_dtype,
    check_mask_shape,
)

_MICROMETRE_UNITS = {
    "micrometers",
    "micrometer",
    "micrometres",
    "micrometre",
    "microns",
    "micron",
    "um",
    "µm",
    "μm",
}
_NANOMETRE_UNITS = {"nanometers", "nanometer", "nanometres", "nanometre", "nm"}
_HASH_CHUNK = 8 * 2**20


def to_nanometres(values: np.ndarray, units: str | None, what: str) -> tuple[np.ndarray, str]:
    """Convert wavelengths to nm; return them and the units as the source stated (or inferred) them."""
    values = np.asarray(values, dtype=np.float64)
    key = (units or "").strip().lower()
    if key in _MICROMETRE_UNITS:
        # Rounded to 1e-6 nm so that 0.43 µm is 430.0 nm and not 430.00000000000006.
        return np.round(values * 1000.0, 6), units or "um"
    if key in _NANOMETRE_UNITS:
        return values, units or "nm"
    if key in ("", "unknown"):
        inferred = "um" if values.size and float(np.nanmax(values)) < 100.0 else "nm"
        largest = float(np.nanmax(values)) if values.size else float("nan")
        warnings.warn(
            f"{what}: no wavelength units given; values up to {largest:g} read as {inferred}",
            UserWarning,
            stacklevel=3,
        )
        return to_nanometres(values, inferred, what)[0], f"{inferred} (inferred)"
    raise WavelengthError(
        f"wavelength units of {what}",
        expected="nanometers or micrometers",
        found=repr(units),
        fix="convert the wavelengths to nm and pass them with wavelengths= (CLI --wavelengths)",
    )


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


@dataclass(frozen=True)
class ReaderOptions:
    """Per-call reader options."""

    wavelengths_nm: np.ndarray | None = None
    sort_bands: bool = False


@dataclass(frozen=True)
class Grid:
    """Validated wavelengths in nm, the units the source stated, and the band order applied (or None)."""

    wavelengths_nm: np.ndarray
    units: str
    order: np.ndarray | None


def resolve_grid(
    found: np.ndarray | None, units: str | None, options: ReaderOptions, n_bands: int, what: str, fix: str
) -> Grid:
    if options.wavelengths_nm is not None:
        values, stated = np.asarray(options.wavelengths_nm, dtype=np.float64), "nm (given)"
    elif found is None:
        raise WavelengthError(
            f"wavelengths of {what}", expected=f"{n_bands} band centres", found="none in the file", fix=fix
        )
    else:
        values, stated = to_nanometres(found, units, what)
    order = None
    if options.sort_bands and values.ndim == 1 and values.size == n_bands:
        candidate = np.argsort(values, kind="stable")
        if not np.array_equal(candidate, np.arange(n_bands)):
            order, values = candidate, values[candidate]
    try:
        values = validate_wavelengths(values, n_bands=n_bands)
    except WavelengthError as error:
        if options.sort_bands or "increasing" not in str(error.expected):
            raise
        raise WavelengthError(
            f"wavelengths of {what}",
            expected=error.expected,
            found=error.found,
            fix="pass sort_bands=True (CLI --sort-bands) to store the bands sorted by wavelength "
            "(instruments with overlapping spectrometers, e.g. AVIRIS), or repair the source",
        ) from error
    return Grid(values, stated, order)


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
) -> AcquisitionSource:
    """Assemble the source: mask attached, bands re-ordered when asked, provenance attributes."""
    height, width, _ = shape
    mask_dtype = mask_dtype_of(mask, height, width, path)
    read_blocks = with_mask(read_blocks, mask)
    attrs = provenance_attrs(path, source_format, grid.units, sensor=sensor, time=time)
    if grid.order is not None:
        read_blocks = reordered(read_blocks, grid.order)
        attrs[ATTR_SOURCE_BAND_ORDER] = [int(i) for i in grid.order]
    return AcquisitionSource(
        name=name or path.stem,
        shape=shape,
        dtype=dtype,
        wavelengths_nm=grid.wavelengths_nm,
        read_blocks=read_blocks,
        mask_dtype=mask_dtype,
        attrs=attrs,
    )


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
