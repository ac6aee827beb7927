"""ENVI images (BIL, BIP, BSQ): header parsed by SPy and checked field by field
(:mod:`bandselect.store.envi_header`), rows read with plain reads.

Every field the reader relies on is checked on its own, so a bad header gets a message about *that*
field: ``lines``, ``samples``, ``bands`` (positive integers), ``data type`` (a real ENVI type), ``header
offset`` (default 0), ``interleave``, ``byte order`` (0 or 1; a header without it is read as
little-endian, the ENVI default, and the assumption is recorded in the acquisition's
``ingest_warnings``; ``byte_order=`` / ``--byte-order`` overrides it), ``file compression`` (must be
off), ``bbl`` (bad bands are left out and recorded), ``data ignore value`` (those pixels are stored as
invalid), ``wavelength`` / ``wavelength units``. ``map info`` (or a ``coordinate system string``) is read
through GDAL, which knows ENVI's projections, into the acquisition's georeference.

The data file's size must match the header exactly (``header offset`` + lines × samples × bands × item
size): shorter is a truncated file; longer is an error too, because it usually means a wrong band or line
count, unless ``allow_trailing_bytes`` says the file carries a trailer.

Plain reads rather than a memory map: the pages a memory map touches count towards the resident size,
which would grow to the whole file during a multi-GB ingest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np

from bandselect.errors import FileFormatError
from bandselect.names import ATTR_SOURCE_BYTE_ORDER
from bandselect.store.envi_header import EnviHeader, parse_header, read_header
from bandselect.store.layout import AcquisitionSource, Block
from bandselect.store.sources import ReaderOptions, finish_source, read_into, resolve_grid

ENVI_HEADER_SUFFIX = ".hdr"
ENVI_DATA_SUFFIXES = (".raw", ".img", ".bil", ".bsq", ".bip", ".dat")


def find_header(data: Path) -> Path | None:
    for candidate in (data.with_suffix(".hdr"), data.with_suffix(".HDR"), Path(f"{data}.hdr")):
        if candidate.is_file():
            return candidate
    return None


def find_envi_data(header: Path) -> Path | None:
    """The data file beside an ENVI header (same name without suffix, or with a known data suffix)."""
    stem = header.with_suffix("")
    candidates = [stem] + [stem.with_suffix(s) for s in ENVI_DATA_SUFFIXES]
    candidates += [stem.with_suffix(s.upper()) for s in ENVI_DATA_SUFFIXES]
    for candidate in candidates:
        if candidate.is_file() and candidate != header:
            return candidate
    return None


def data_file_of(header: Path) -> Path:
    """:func:`find_envi_data`, or a :class:`FileFormatError` saying where the data file should be."""
    data = find_envi_data(header)
    if data is None:
        raise FileFormatError(
            f"ENVI header {header}",
            expected=f"a data file beside it ({header.with_suffix('').name} with no suffix or one of "
            f"{', '.join(ENVI_DATA_SUFFIXES)})",
            found="no data file",
            fix="copy the data file next to its header with the same name",
        )
    return data


# -- the data file ---------------------------------------------------------------------------------------
def check_data_size(parsed: EnviHeader, data: Path, options: ReaderOptions) -> list[str]:
    """Check the data file's size against the header; return a note when trailing bytes are accepted.

    Raises
    ------
    FileFormatError
        The file is shorter than the header says (truncated), or longer without ``allow_trailing_bytes``;
        both sizes are named, with the band count the size would imply.
    """
    item = parsed.dtype.itemsize
    plane = parsed.lines * parsed.samples * item
    expected = parsed.offset + plane * parsed.bands
    actual = data.stat().st_size
    if actual == expected:
        return []
    described = (
        f"{expected} bytes ({parsed.lines} lines × {parsed.samples} samples × {parsed.bands} bands of "
        f"{parsed.dtype.name}, {parsed.offset} header bytes)"
    )
    payload = actual - parsed.offset
    implied = f", the size of {payload // plane} bands" if payload > 0 and payload % plane == 0 else ""
    if actual < expected:
        raise FileFormatError(
            f"ENVI data file {data}",
            expected=described,
            found=f"{actual} bytes (truncated{implied})",
            fix="re-copy the complete file, or repair lines/samples/bands in the header",
        )
    if not options.allow_trailing_bytes:
        raise FileFormatError(
            f"ENVI data file {data}",
            expected=described,
            found=f"{actual} bytes, {actual - expected} more than the header describes{implied}",
            fix="repair lines/samples/bands/data type in the header; if the file really carries a trailer, "
            "pass allow_trailing_bytes=True (--allow-trailing-bytes)",
        )
    return [
        f"{data.name}: {actual - expected} bytes after the image data were ignored (allow_trailing_bytes)"
    ]


def read_envi(header: Path, data: Path | None = None, *, options: ReaderOptions) -> AcquisitionSource:
    """Open an ENVI image (BIL, BIP or BSQ) as a block source. See :func:`open_source`."""
    if data is None:
        data = data_file_of(header)
    parsed = parse_header(header, read_header(header), options)
    notes = [*parsed.notes, *check_data_size(parsed, data, options)]
    grid = resolve_grid(
        parsed.wavelengths,
        parsed.wavelength_units,
        options,
        parsed.bands,
        f"ENVI header {header.name}",
        fix="add 'wavelength = {...}' (and 'wavelength units') to the header, or pass wavelengths= "
        "(CLI --wavelengths FILE_OR_LIST)",
        good_bands=parsed.good_bands,
        units_from="the header's 'wavelength units'",
    )
    georeference = None
    if parsed.georeferenced:
        from bandselect.store.gdal import gdal_georeference  # imported here: rasterio only when needed

        georeference = gdal_georeference(data, f"map info of ENVI header {header}")
    shape = (parsed.lines, parsed.samples, parsed.bands)
    read_blocks = _envi_block_reader(data, parsed.interleave, parsed.dtype, parsed.offset, shape)
    return finish_source(
        data,
        shape,
        parsed.dtype,
        grid,
        read_blocks,
        source_format=f"envi-{parsed.interleave}",
        sensor=parsed.sensor,
        time=parsed.time,
        name=header.stem,
        georeference=georeference,
        ignore_value=parsed.ignore_value,
        notes=notes,
        extra_attrs={ATTR_SOURCE_BYTE_ORDER: parsed.byte_order},
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
            read_into(handle, block, data)
        elif interleave == "bil":  # (y, band, x): one line at a time, transposed into place
            line = np.empty((n_bands, width), dtype=dtype)
            handle.seek(offset + y0 * n_bands * width * item)
            for row in range(rows):
                read_into(handle, line, data)
                block[row] = line.T
        else:  # bsq (band, y, x): one contiguous run of rows per band
            plane = np.empty((rows, width), dtype=dtype)
            for band in range(n_bands):
                handle.seek(offset + (band * height + y0) * width * item)
                read_into(handle, plane, data)
                block[:, :, band] = plane
        return block

    def read_blocks(block_rows: int) -> Iterator[Block]:
        with open(data, "rb") as handle:
            for y0 in range(0, height, block_rows):
                # Yielded without keeping a reference here, so the previous block can be freed.
                yield read_rows(handle, y0, min(block_rows, height - y0)), None, None

    return read_blocks
