"""ENVI images (BIL, BIP, BSQ; any byte order): header parsed by SPy, rows read with plain file reads.

Plain reads rather than a memory map: the pages a memory map touches count towards the resident size,
which would grow to the whole file during a multi-GB ingest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from bandselect.errors import DTypeError, FileFormatError, WavelengthError
from bandselect.store.layout import AcquisitionSource, Block, check_cube_dtype
from bandselect.store.sources import ReaderOptions, finish_source, read_into, resolve_grid

ENVI_HEADER_SUFFIX = ".hdr"
ENVI_DATA_SUFFIXES = (".raw", ".img", ".bil", ".bsq", ".bip", ".dat")


def find_header(data: Path) -> Path | None:
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


def read_envi(header: Path, data: Path | None = None, *, options: ReaderOptions) -> AcquisitionSource:
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
    grid = resolve_grid(
        found_nm,
        metadata.get("wavelength units"),
        options,
        n_bands,
        f"ENVI header {header.name}",
        fix="add 'wavelength = {...}' (and 'wavelength units') to the header, or pass wavelengths= "
        "(CLI --wavelengths FILE_OR_LIST)",
    )
    read_blocks = _envi_block_reader(data, interleave, dtype, offset, (height, width, n_bands))
    return finish_source(
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
