"""Readers that turn files into :class:`~bandselect.store.layout.AcquisitionSource` block sources.

Formats:

- ENVI (``.hdr`` + ``.raw``/``.img``/``.bil``/``.bsq``/``.bip``/``.dat`` or no extension), interleave BIL,
  BIP or BSQ, any byte order. The header is parsed by SPy (``spectral.envi``); rows are read with plain
  file reads (not a memory map, whose touched pages would count towards the resident size of a
  multi-GB ingest).
- NumPy ``.npz`` with arrays ``cube`` (H, W, C), ``wavelengths_nm`` (C,), optional ``mask`` or ``gt``
  (H, W) labels, as in ``../shared/data``. Compressed or not, the cube is streamed from the archive.
- NumPy ``.npy`` holding only the cube (wavelengths must be passed).
- MATLAB v5/v7 ``.mat`` via SciPy (loaded whole). v7.3 files are HDF5 and need h5py, which bandselect
  does not depend on: they are detected and rejected with a clear message.

Wavelength units: µm (e.g. ENVI ``wavelength units = Micrometers``) are converted to nm. Where a source
gives no units, values below 100 are read as µm and others as nm, with a warning.

Values are kept raw (no scaling); the store converts them to float32.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from bandselect.errors import BandSelectError, DTypeError, FileFormatError, ShapeError, WavelengthError
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

ENVI_HEADER_SUFFIX = ".hdr"
ENVI_DATA_SUFFIXES = (".raw", ".img", ".bil", ".bsq", ".bip", ".dat")
SUPPORTED_SUFFIXES = (ENVI_HEADER_SUFFIX, *ENVI_DATA_SUFFIXES, ".npz", ".npy", ".mat")

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
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MAT_WAVELENGTH_KEYS = ("wavelengths_nm", "wavelength_nm", "wavelengths", "wavelength", "wl", "lambda")
_MAT_MASK_KEYS = ("mask", "gt", "labels", "groundtruth", "ground_truth")
_NPZ_MASK_MEMBERS = ("mask.npy", "gt.npy")
_HASH_CHUNK = 8 * 2**20


# -- discovery -------------------------------------------------------------------------------------------
def discover(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Expand ``paths`` into the files to ingest, one per acquisition.

    Directories are walked recursively (hidden entries skipped, sorted order). In a directory only files
    with a supported suffix are taken; ENVI data files are represented by their header. Explicit paths are
    kept as given (their type is checked when opened), duplicates removed.

    Raises
    ------
    FileFormatError
        A path that does not exist, or a directory that holds no supported file.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            in_dir = _walk(path)
            if not in_dir:
                raise FileFormatError(
                    f"directory {path}",
                    expected=f"at least one file of type {', '.join(SUPPORTED_SUFFIXES)}",
                    found="none",
                    fix="point to the folder that holds the cubes, or name the files",
                )
            found.extend(in_dir)
        elif path.exists():
            found.append(_primary_file(path))
        else:
            raise FileFormatError(
                f"input {path}",
                expected="an existing file or directory",
                found="no such path",
                fix="check the path (and the working directory)",
            )
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _walk(directory: Path) -> list[Path]:
    files: list[Path] = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(root) / name
            if name.startswith(".") or path.suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            if path.suffix.lower() in ENVI_DATA_SUFFIXES and _find_header(path) is not None:
                continue  # taken through its header
            files.append(path)
    return files


def _primary_file(path: Path) -> Path:
    if path.suffix.lower() in ENVI_DATA_SUFFIXES:
        header = _find_header(path)
        return header if header is not None else path
    return path


# -- entry point -----------------------------------------------------------------------------------------
def open_source(
    path: str | os.PathLike[str], *, wavelengths_nm: object = None, sort_bands: bool = False
) -> AcquisitionSource:
    """Open one file as a block source, validating everything that can be checked without reading the cube.

    Parameters
    ----------
    path
        An ENVI header or data file, ``.npz``, ``.npy`` or ``.mat``.
    wavelengths_nm
        Band centres in nm that replace (or supply) the file's; required for ENVI headers without
        wavelengths and for ``.npy``.
    sort_bands
        Re-order the bands by increasing wavelength (for instruments whose spectrometers overlap, such
        as AVIRIS); the source band index of each stored band is kept in ``attrs["source_band_order"]``.

    Raises
    ------
    FileFormatError, WavelengthError, DTypeError, ShapeError, LabelError
        On an unknown type, missing header/data file, truncated or corrupt file, bad wavelengths,
        unsupported dtype or a label mask of the wrong shape.
    """
    path = Path(path)
    options = _Options(None if wavelengths_nm is None else parse_wavelengths(wavelengths_nm), sort_bands)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileFormatError(
            f"input {path}", expected="an existing file", found="no such file", fix="check the path"
        )
    try:
        if suffix == ENVI_HEADER_SUFFIX:
            return read_envi(path, options=options)
        if suffix in ENVI_DATA_SUFFIXES:
            header = _find_header(path)
            if header is None:
                raise FileFormatError(
                    f"ENVI data file {path}",
                    expected=f"a header {path.with_suffix('.hdr').name} or {path.name}.hdr beside it",
                    found="no header",
                    fix="copy the .hdr file next to the data file (it holds the shape, type and wavelengths)",
                )
            return read_envi(header, data=path, options=options)
        if suffix == ".npz":
            return read_npz(path, options=options)
        if suffix == ".npy":
            return read_npy(path, options=options)
        if suffix == ".mat":
            return read_mat(path, options=options)
    except BandSelectError:
        raise
    except OSError as error:
        raise FileFormatError(
            f"file {path}",
            expected="a readable file",
            found=f"{type(error).__name__}: {error}",
            fix="check the file's permissions and that it is complete",
        ) from error
    raise FileFormatError(
        f"file {path}",
        expected=f"one of the types {', '.join(SUPPORTED_SUFFIXES)}",
        found=f"an unknown type {suffix or '(no suffix)'!r}",
        fix="convert it to ENVI, .npz or .mat, or pass the ENVI header (.hdr) instead of this file",
    )


def parse_wavelengths(value: object) -> np.ndarray:
    """Wavelengths in nm from an array, a list, a comma/space separated string, or a file.

    Files: ``.npy``, or text with numbers separated by commas, spaces or newlines.

    Raises
    ------
    WavelengthError
        When the value cannot be read as numbers.
    """
    if isinstance(value, str | os.PathLike):
        text = os.fspath(value)
        path = Path(text)
        if path.is_file():
            if path.suffix.lower() == ".npy":
                return np.asarray(np.load(path, allow_pickle=False), dtype=np.float64).ravel()
            text = path.read_text(encoding="utf-8")
        tokens = [t for t in re.split(r"[,\s;]+", text.strip().strip("[]{}()")) if t]
        try:
            return np.asarray([float(t) for t in tokens], dtype=np.float64)
        except ValueError as error:
            raise WavelengthError(
                "wavelengths",
                expected="numbers in nm separated by commas or spaces, or a file of them (.txt, .csv, .npy)",
                found=repr(text[:80]),
                fix="pass e.g. --wavelengths 430,438,446 or --wavelengths wavelengths.txt",
            ) from error
    try:
        return np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError) as error:
        raise WavelengthError(
            "wavelengths",
            expected="a sequence of numbers in nm",
            found=repr(value)[:80],
            fix="pass a list or array of band centres in nm",
        ) from error


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


def _attrs(
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
class _Options:
    """Per-call reader options."""

    wavelengths_nm: np.ndarray | None = None
    sort_bands: bool = False


@dataclass(frozen=True)
class _Grid:
    """Validated wavelengths in nm, the units the source stated, and the band order applied (or None)."""

    wavelengths_nm: np.ndarray
    units: str
    order: np.ndarray | None


def _grid(
    found: np.ndarray | None, units: str | None, options: _Options, n_bands: int, what: str, fix: str
) -> _Grid:
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
    return _Grid(values, stated, order)


def _finish(
    path: Path,
    shape: tuple[int, int, int],
    dtype: np.dtype,
    grid: _Grid,
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
    mask_dtype = _mask_dtype(mask, height, width, path)
    read_blocks = _with_mask(read_blocks, mask)
    attrs = _attrs(path, source_format, grid.units, sensor=sensor, time=time)
    if grid.order is not None:
        read_blocks = _reordered(read_blocks, grid.order)
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


def _reordered(
    read_blocks: Callable[[int], Iterator[Block]], order: np.ndarray
) -> Callable[[int], Iterator[Block]]:
    def reordered(block_rows: int) -> Iterator[Block]:
        for cube, mask, valid in read_blocks(block_rows):
            yield np.take(cube, order, axis=-1), mask, valid

    return reordered


# -- ENVI ------------------------------------------------------------------------------------------------
def _find_header(data: Path) -> Path | None:
    for candidate in (data.with_suffix(".hdr"), data.with_suffix(".HDR"), Path(f"{data}.hdr")):
        if candidate.is_file():
            return candidate
    return None


def _find_envi_data(header: Path) -> Path | None:
    stem = header.with_suffix("")
    candidates = [stem] + [stem.with_suffix(s) for s in ENVI_DATA_SUFFIXES]
    candidates += [stem.with_suffix(s.upper()) for s in ENVI_DATA_SUFFIXES]
    for candidate in candidates:
        if candidate.is_file() and candidate != header:
            return candidate
    return None


def read_envi(header: Path, data: Path | None = None, *, options: _Options) -> AcquisitionSource:
    """Open an ENVI image (BIL, BIP or BSQ) as a block source. See :func:`open_source`."""
    from spectral.io import envi  # imported here: only ENVI ingest needs SPy

    if data is None:
        data = _find_envi_data(header)
        if data is None:
            raise FileFormatError(
                f"ENVI header {header}",
                expected=f"a data file beside it ({header.with_suffix('').name} with no suffix or one of "
                f"{', '.join(ENVI_DATA_SUFFIXES)})",
                found="no data file",
                fix="copy the data file next to its header with the same name",
            )
    try:
        image = envi.open(str(header), str(data))
    except envi.EnviDataTypeError as error:
        raise DTypeError(
            f"ENVI image {header}",
            expected="a real numeric data type (1-5, 12-15)",
            found=str(error),
            fix="convert the image to a real numeric type",
        ) from error
    except (envi.EnviException, envi.SpyException, ValueError, KeyError) as error:
        raise FileFormatError(
            f"ENVI header {header}",
            expected="a readable ENVI header (lines, samples, bands, data type, interleave, byte order)",
            found=f"{type(error).__name__}: {error}",
            fix="repair the header (it must start with the line 'ENVI')",
        ) from error
    metadata: dict[str, Any] = image.metadata
    height, width, n_bands = int(image.nrows), int(image.ncols), int(image.nbands)
    dtype = check_cube_dtype(np.dtype(image.dtype), f"ENVI image {header.name}")
    interleave = str(metadata.get("interleave", "bsq")).strip().lower()
    if interleave not in ("bil", "bip", "bsq"):
        raise FileFormatError(
            f"interleave of {header}",
            expected="bil, bip or bsq",
            found=repr(interleave),
            fix="repair the header's 'interleave' field",
        )
    offset = int(image.offset)
    expected_size = offset + height * width * n_bands * dtype.itemsize
    actual_size = data.stat().st_size
    if actual_size < expected_size:
        raise FileFormatError(
            f"ENVI data file {data}",
            expected=f"{expected_size} bytes ({height}×{width}×{n_bands} {dtype}, {offset} header bytes)",
            found=f"{actual_size} bytes (truncated)",
            fix="re-copy the complete file, or repair lines/samples/bands in the header",
        )
    raw_wavelengths = metadata.get("wavelength")
    found_nm = None
    if raw_wavelengths is not None:
        try:
            found_nm = np.asarray([float(v) for v in np.ravel(raw_wavelengths)], dtype=np.float64)
        except ValueError as error:
            raise WavelengthError(
                f"wavelengths in {header}",
                expected="numbers",
                found=repr(raw_wavelengths)[:80],
                fix="repair the header's 'wavelength' field",
            ) from error
    grid = _grid(
        found_nm,
        metadata.get("wavelength units"),
        options,
        n_bands,
        f"ENVI header {header.name}",
        fix="add 'wavelength = {...}' (and 'wavelength units') to the header, or pass wavelengths= "
        "(CLI --wavelengths FILE_OR_LIST)",
    )
    read_blocks = _envi_block_reader(data, interleave, dtype, offset, (height, width, n_bands))
    return _finish(
        data,
        (height, width, n_bands),
        dtype,
        grid,
        read_blocks,
        source_format=f"envi-{interleave}",
        sensor=str(metadata.get("sensor type", "")),
        time=str(metadata.get("acquisition time", "")),
        name=header.stem,
    )


def _envi_block_reader(
    data: Path, interleave: str, dtype: np.dtype, offset: int, shape: tuple[int, int, int]
) -> Callable[[int], Iterator[Block]]:
    height, width, n_bands = shape
    item = dtype.itemsize

    def read_rows(handle: IO[bytes], y0: int, rows: int) -> np.ndarray:
        """Rows ``y0:y0+rows`` as a C-contiguous (rows, W, C) array, with only small temporaries."""
        block = np.empty((rows, width, n_bands), dtype=dtype)
        if interleave == "bip":  # file order (y, x, band): the block is one contiguous run
            handle.seek(offset + y0 * width * n_bands * item)
            _read_into(handle, block, data)
        elif interleave == "bil":  # (y, band, x): one line at a time, transposed into place
            line = np.empty((n_bands, width), dtype=dtype)
            handle.seek(offset + y0 * n_bands * width * item)
            for row in range(rows):
                _read_into(handle, line, data)
                block[row] = line.T
        else:  # bsq (band, y, x): one contiguous run of rows per band
            plane = np.empty((rows, width), dtype=dtype)
            for band in range(n_bands):
                handle.seek(offset + (band * height + y0) * width * item)
                _read_into(handle, plane, data)
                block[:, :, band] = plane
        return block

    def read_blocks(block_rows: int) -> Iterator[Block]:
        with open(data, "rb") as handle:
            for y0 in range(0, height, block_rows):
                # Yielded without keeping a reference here, so the previous block can be freed.
                yield read_rows(handle, y0, min(block_rows, height - y0)), None, None

    return read_blocks


def _read_array(handle: IO[bytes], shape: tuple[int, ...], dtype: np.dtype, path: Path) -> np.ndarray:
    array = np.empty(shape, dtype=dtype)
    _read_into(handle, array, path)
    return array


def _read_into(handle: IO[bytes], array: np.ndarray, path: Path) -> None:
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


# -- NumPy -----------------------------------------------------------------------------------------------
def _npy_header(handle: IO[bytes], what: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(handle)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except ValueError as error:
        raise FileFormatError(
            what,
            expected="a NumPy .npy array (format 1.0 or 2.0)",
            found=str(error),
            fix="re-save it with numpy.save / numpy.savez",
        ) from error
    return tuple(int(s) for s in shape), bool(fortran), np.dtype(dtype)


def _check_cube_header(shape: tuple[int, ...], dtype: np.dtype, what: str) -> tuple[int, int, int]:
    check_cube_dtype(dtype, what)
    if len(shape) != 3 or min(shape) < 1:
        raise ShapeError(
            what,
            expected="a non-empty 3-D cube (y, x, band)",
            found=f"shape {shape}",
            fix="save the cube as an array of shape (rows, columns, bands)",
        )
    return shape[0], shape[1], shape[2]


def _stream_blocks(
    open_stream: Callable[[], Any], shape: tuple[int, int, int], dtype: np.dtype, path: Path
) -> Callable[[int], Iterator[Block]]:
    """Block reader over a C-ordered .npy stream (a plain file or a member of a zip archive)."""
    height, width, n_bands = shape

    def read_blocks(block_rows: int) -> Iterator[Block]:
        try:
            with open_stream() as handle:
                _npy_header(handle, f"cube of {path}")
                for y0 in range(0, height, block_rows):
                    rows = min(block_rows, height - y0)
                    yield _read_array(handle, (rows, width, n_bands), dtype, path), None, None
                handle.read()  # reaching the end makes zipfile verify the member's CRC
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise FileFormatError(
                f"archive {path}",
                expected="an intact .npz archive",
                found=str(error),
                fix="the file is corrupt: re-copy or re-export it",
            ) from error

    return read_blocks


def read_npz(path: Path, *, options: _Options) -> AcquisitionSource:
    """Open a ``.npz`` (``cube``, ``wavelengths_nm``, optional ``mask``/``gt``). See :func:`open_source`."""
    what = f"archive {path}"
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise FileFormatError(
            what,
            expected="a NumPy .npz (zip) archive",
            found=f"not a valid zip ({error})",
            fix="the file is corrupt or truncated: re-copy or re-save it",
        ) from error
    try:
        with archive:
            members = set(archive.namelist())
            if "cube.npy" not in members:
                raise FileFormatError(
                    what,
                    expected="arrays 'cube' (H, W, C) and 'wavelengths_nm' (C,), optional 'mask'/'gt'",
                    found=f"arrays {sorted(m.removesuffix('.npy') for m in members)}",
                    fix="re-save with numpy.savez(path, cube=..., wavelengths_nm=..., mask=...)",
                )
            with archive.open("cube.npy") as handle:
                shape, fortran, dtype = _npy_header(handle, f"cube of {path}")
            height, width, n_bands = _check_cube_header(shape, dtype, f"cube of {path.name}")
            found_nm = None
            if "wavelengths_nm.npy" in members:
                found_nm = _npz_member(archive, "wavelengths_nm.npy", path)
            mask_member = next((m for m in _NPZ_MASK_MEMBERS if m in members), None)
            mask = _npz_member(archive, mask_member, path) if mask_member else None
            cube_whole = _npz_member(archive, "cube.npy", path) if fortran else None
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise FileFormatError(
            what,
            expected="an intact .npz archive",
            found=str(error),
            fix="the file is corrupt: re-copy or re-export it",
        ) from error
    grid = _grid(
        None if found_nm is None else found_nm.ravel(),
        "nm",
        options,
        n_bands,
        path.name,
        fix="save 'wavelengths_nm' in the archive or pass wavelengths= (CLI --wavelengths FILE_OR_LIST)",
    )
    if cube_whole is not None:
        # Fortran-ordered cubes cannot be streamed by rows; they are read whole (small files in practice).
        read_blocks = _array_blocks(cube_whole)
    else:
        read_blocks = _stream_blocks(
            lambda: _ZipMember(path, "cube.npy"), (height, width, n_bands), dtype, path
        )
    return _finish(path, (height, width, n_bands), dtype, grid, read_blocks, source_format="npz", mask=mask)


class _ZipMember:
    """Context manager opening one member of a zip archive (and the archive) for streaming."""

    def __init__(self, path: Path, member: str) -> None:
        self._path, self._member = path, member
        self._archive: zipfile.ZipFile | None = None

    def __enter__(self) -> IO[bytes]:
        self._archive = zipfile.ZipFile(self._path)
        self._stream = self._archive.open(self._member)
        return self._stream

    def __exit__(self, *exc: object) -> None:
        self._stream.close()
        if self._archive is not None:
            self._archive.close()


def _npz_member(archive: zipfile.ZipFile, member: str, path: Path) -> np.ndarray:
    with archive.open(member) as handle:
        try:
            return np.lib.format.read_array(handle, allow_pickle=False)
        except ValueError as error:
            raise DTypeError(
                f"array {member.removesuffix('.npy')} in {path}",
                expected="a numeric array",
                found=str(error),
                fix="store numeric arrays only (no Python objects)",
            ) from error


def _mask_dtype(mask: np.ndarray | None, height: int, width: int, path: Path) -> np.dtype | None:
    if mask is None:
        return None
    mask = np.squeeze(mask) if mask.ndim == 3 and mask.shape[-1] == 1 else mask
    check_mask_dtype(mask.dtype, f"mask of {path.name}")
    check_mask_shape(mask.shape, height, width, what=f"mask of {path.name}")
    return mask.dtype


def _with_mask(
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


def _array_blocks(cube: np.ndarray) -> Callable[[int], Iterator[Block]]:
    def read_cube(block_rows: int) -> Iterator[Block]:
        for y0 in range(0, cube.shape[0], block_rows):
            yield cube[y0 : y0 + block_rows], None, None

    return read_cube


def read_npy(path: Path, *, options: _Options) -> AcquisitionSource:
    """Open a ``.npy`` cube; ``wavelengths_nm`` is required. See :func:`open_source`."""
    with open(path, "rb") as handle:
        shape, fortran, dtype = _npy_header(handle, f"file {path}")
        data_start = handle.tell()
    height, width, n_bands = _check_cube_header(shape, dtype, f"cube of {path.name}")
    needed = data_start + height * width * n_bands * dtype.itemsize
    if path.stat().st_size < needed:
        raise FileFormatError(
            f"file {path}",
            expected=f"{needed} bytes for a {shape} {dtype} array",
            found=f"{path.stat().st_size} bytes (truncated)",
            fix="re-copy or re-save it",
        )
    grid = _grid(
        None,
        None,
        options,
        n_bands,
        path.name,
        fix="a .npy holds only the cube: pass wavelengths= (CLI --wavelengths FILE_OR_LIST), or use .npz",
    )
    if fortran:
        read_blocks = _array_blocks(np.load(path, mmap_mode="r"))
    else:
        read_blocks = _stream_blocks(lambda: open(path, "rb"), (height, width, n_bands), dtype, path)
    return _finish(path, (height, width, n_bands), dtype, grid, read_blocks, source_format="npy")


# -- MATLAB ----------------------------------------------------------------------------------------------
def read_mat(path: Path, *, options: _Options) -> AcquisitionSource:
    """Open a MATLAB v5/v7 ``.mat`` (loaded whole). See :func:`open_source`.

    The cube is the variable ``cube`` or the only 3-D numeric variable; wavelengths come from the first
    of ``wavelengths_nm, wavelength_nm, wavelengths, wavelength, wl, lambda``; labels from the first of
    ``mask, gt, labels, groundtruth, ground_truth``.
    """
    import scipy.io  # imported here: only .mat ingest needs it

    with open(path, "rb") as handle:
        head = handle.read(520)
    if head[:8] == _HDF5_SIGNATURE or head[512:520] == _HDF5_SIGNATURE:
        raise FileFormatError(
            f"MATLAB file {path}",
            expected="a MATLAB v5/v7 .mat file",
            found="a v7.3 (HDF5) file, which needs h5py (not a bandselect dependency)",
            fix="re-save it in MATLAB with save(file, ..., '-v7'), or convert it to .npz",
        )
    try:
        variables = scipy.io.loadmat(str(path))
    except (ValueError, TypeError, OSError, NotImplementedError, zlib.error) as error:
        raise FileFormatError(
            f"MATLAB file {path}",
            expected="a readable MATLAB v5/v7 .mat file",
            found=f"{type(error).__name__}: {error}",
            fix="the file is corrupt or truncated: re-copy or re-save it",
        ) from error
    arrays = {k: v for k, v in variables.items() if not k.startswith("__") and isinstance(v, np.ndarray)}
    cube = arrays.get("cube")
    if cube is None:
        three_d = [k for k, v in arrays.items() if v.ndim == 3 and v.dtype.kind in "iufc"]
        if len(three_d) != 1:
            raise FileFormatError(
                f"MATLAB file {path}",
                expected="a variable 'cube' or exactly one 3-D numeric variable",
                found=f"3-D variables {three_d or 'none'} among {sorted(arrays)}",
                fix="name the cube variable 'cube' (rows × columns × bands)",
            )
        cube = arrays[three_d[0]]
    height, width, n_bands = _check_cube_header(tuple(cube.shape), cube.dtype, f"cube of {path.name}")
    key = next((k for k in _MAT_WAVELENGTH_KEYS if k in arrays), None)
    found = None if key is None else np.asarray(arrays[key], dtype=np.float64).ravel()
    units = "nm" if key is not None and key.endswith("_nm") else None
    grid = _grid(
        found,
        units,
        options,
        n_bands,
        path.name,
        fix="save a variable 'wavelengths_nm' in the file or pass wavelengths= (CLI --wavelengths)",
    )
    mask_key = next((k for k in _MAT_MASK_KEYS if k in arrays), None)
    mask = arrays[mask_key] if mask_key else None
    return _finish(
        path,
        (height, width, n_bands),
        cube.dtype,
        grid,
        _array_blocks(cube),
        source_format="mat-v5",
        mask=mask,
    )
