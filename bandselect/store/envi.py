"""ENVI images (BIL, BIP, BSQ): header parsed by SPy, checked field by field, rows read with plain reads.

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

import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from bandselect.errors import DTypeError, FileFormatError, WavelengthError
from bandselect.names import ATTR_SOURCE_BYTE_ORDER
from bandselect.store.layout import AcquisitionSource, Block, check_cube_dtype
from bandselect.store.sources import ReaderOptions, finish_source, read_into, resolve_grid

ENVI_HEADER_SUFFIX = ".hdr"
ENVI_DATA_SUFFIXES = (".raw", ".img", ".bil", ".bsq", ".bip", ".dat")

#: ENVI ``data type`` codes of real numbers (6 and 9 are complex).
_ENVI_DTYPES = {
    1: "u1",
    2: "i2",
    3: "i4",
    4: "f4",
    5: "f8",
    12: "u2",
    13: "u4",
    14: "i8",
    15: "u8",
}
_COMPLEX_CODES = {6: "complex64", 9: "complex128"}
_GEOREFERENCE_FIELDS = ("map info", "coordinate system string", "projection info")


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


# -- the header ------------------------------------------------------------------------------------------
def read_header(header: Path) -> dict[str, Any]:
    """The header's fields (lower-case keys; ``{...}`` lists as lists of strings), parsed by SPy.

    Raises
    ------
    FileFormatError
        Not an ENVI header (no ``ENVI`` first line, binary content) or an unclosed ``{`` list, naming
        the field.
    """
    from spectral.io import envi  # imported here: only ENVI ingest needs SPy

    what = f"ENVI header {header}"
    try:
        with warnings.catch_warnings():
            # SPy warns about capitalised field names; we read every name in lower case anyway.
            warnings.simplefilter("ignore", UserWarning)
            return dict(envi.read_envi_header(str(header)))
    except envi.FileNotAnEnviHeader as error:
        raise FileFormatError(
            what,
            expected="a readable ENVI header (a text file whose first line is 'ENVI')",
            found=_first_line(header),
            fix="pass the ENVI .hdr text file (not the data file); if it is one, make 'ENVI' its first line",
        ) from error
    except envi.EnviHeaderParsingError as error:
        raise FileFormatError(
            what,
            expected="a readable ENVI header ('name = value' lines, '{' lists closed by '}')",
            found=_unclosed_list(header),
            fix="close the '{' list with '}' in the header",
        ) from error


def _first_line(header: Path) -> str:
    try:
        with open(header, "rb") as handle:
            line = handle.readline(80)
    except OSError as error:
        return f"an unreadable file ({error})"
    try:
        return f"first line {line.decode('utf-8').strip()!r}"
    except UnicodeDecodeError:
        return "binary content (a data file?)"


def _unclosed_list(header: Path) -> str:
    text = header.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        key, _, value = line.partition("=")
        if value.strip().startswith("{") and "}" not in text[text.index(line) :]:
            return f"field {key.strip()!r} (line {number}) opens a '{{' list that is never closed"
    return "a header SPy cannot parse"


@dataclass(frozen=True)
class EnviHeader:
    """The fields of an ENVI header that the reader uses, checked."""

    path: Path
    lines: int
    samples: int
    bands: int
    dtype: np.dtype  # with the byte order applied
    offset: int
    interleave: str
    byte_order: str  # "little" or "big"
    notes: tuple[str, ...]
    wavelengths: np.ndarray | None
    wavelength_units: str | None
    good_bands: np.ndarray | None
    ignore_value: float | None
    georeferenced: bool
    sensor: str
    time: str


def parse_header(header: Path, fields: dict[str, Any], options: ReaderOptions) -> EnviHeader:
    """Check the fields one by one.

    Raises
    ------
    FileFormatError
        A missing or malformed field (named, with what was found and the line to write).
    DTypeError
        A complex or unknown ``data type``.
    WavelengthError
        ``wavelength`` values that are not numbers.
    """
    lines = _positive_int(header, fields, "lines", "the number of rows")
    samples = _positive_int(header, fields, "samples", "the number of columns")
    bands = _positive_int(header, fields, "bands", "the number of bands")
    offset = _header_offset(header, fields)
    notes: list[str] = []
    byte_order = _byte_order(header, fields, options, notes)
    dtype = _dtype(header, fields).newbyteorder("<" if byte_order == "little" else ">")
    interleave = _interleave(header, fields, bands, notes)
    _check_supported(header, fields)
    return EnviHeader(
        path=header,
        lines=lines,
        samples=samples,
        bands=bands,
        dtype=dtype,
        offset=offset,
        interleave=interleave,
        byte_order=byte_order,
        notes=tuple(notes),
        wavelengths=_wavelengths(header, fields),
        wavelength_units=_text(fields.get("wavelength units")) or None,
        good_bands=_bad_band_list(header, fields, bands),
        ignore_value=_ignore_value(header, fields),
        georeferenced=any(field in fields for field in _GEOREFERENCE_FIELDS),
        sensor=_text(fields.get("sensor type")),
        time=_text(fields.get("acquisition time")),
    )


def _text(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value).strip()


def _header_error(header: Path, field: str, expected: str, found: str, fix: str) -> FileFormatError:
    return FileFormatError(
        f"field {field!r} of ENVI header {header}", expected=expected, found=found, fix=fix
    )


def _positive_int(header: Path, fields: dict[str, Any], field: str, meaning: str) -> int:
    if field not in fields:
        raise _header_error(
            header, field, f"{meaning} as '{field} = N'", "no such line", f"add the line '{field} = N'"
        )
    text = _text(fields[field])
    if not re.fullmatch(r"\+?\d+", text) or int(text) < 1:
        raise _header_error(
            header,
            field,
            f"{meaning}, a positive integer",
            f"{field} = {text!r}",
            f"write '{field} = N' with N >= 1 ({meaning})",
        )
    return int(text)


def _header_offset(header: Path, fields: dict[str, Any]) -> int:
    text = _text(fields.get("header offset", "0"))
    if not re.fullmatch(r"\+?\d+", text):
        raise _header_error(
            header,
            "header offset",
            "the bytes before the image data, an integer >= 0",
            f"header offset = {text!r}",
            "write 'header offset = N' (0 when the data starts at the first byte)",
        )
    return int(text)


def _byte_order(header: Path, fields: dict[str, Any], options: ReaderOptions, notes: list[str]) -> str:
    if "byte order" not in fields:
        if options.byte_order is not None:
            notes.append(
                f"{header.name}: no 'byte order' in the header; read as {options.byte_order}-endian "
                "as given (byte_order= / --byte-order)"
            )
            return options.byte_order
        notes.append(
            f"{header.name}: no 'byte order' in the header; read as little-endian (the ENVI default). If "
            "the values look wrong, ingest again with byte_order='big' (--byte-order big)"
        )
        return "little"
    text = _text(fields["byte order"])
    if options.byte_order is not None:
        if text not in ("0", "1") or ("little" if text == "0" else "big") != options.byte_order:
            notes.append(
                f"{header.name}: header says 'byte order = {text}'; read as "
                f"{options.byte_order}-endian as given (byte_order= / --byte-order)"
            )
        return options.byte_order
    if text not in ("0", "1"):
        raise _header_error(
            header,
            "byte order",
            "0 (little-endian, e.g. x86) or 1 (big-endian)",
            f"byte order = {text!r}",
            "write 'byte order = 0' or 'byte order = 1' in the header, or pass byte_order='little'/'big' "
            "(--byte-order little|big)",
        )
    return "little" if text == "0" else "big"


def _dtype(header: Path, fields: dict[str, Any]) -> np.dtype:
    if "data type" not in fields:
        raise _header_error(
            header,
            "data type",
            "the ENVI data type code, e.g. 'data type = 12' (uint16) or 4 (float32)",
            "no such line",
            "add the line 'data type = N' (1 uint8, 2 int16, 3 int32, 4 float32, 5 float64, 12 uint16, "
            "13 uint32, 14 int64, 15 uint64)",
        )
    text = _text(fields["data type"])
    code = int(text) if re.fullmatch(r"\d+", text) else None
    if code in _COMPLEX_CODES:
        raise DTypeError(
            f"ENVI image {header}",
            expected="a real numeric data type (1-5, 12-15)",
            found=f"data type = {code} ({_COMPLEX_CODES[code]}, complex)",
            fix="convert the image to a real numeric type (e.g. its magnitude) before ingest",
        )
    if code not in _ENVI_DTYPES:
        raise DTypeError(
            f"field 'data type' of ENVI header {header}",
            expected="an ENVI data type code (1-5, 12-15)",
            found=f"data type = {text!r}",
            fix="repair 'data type' (1 uint8, 2 int16, 3 int32, 4 float32, 5 float64, 12 uint16, 13 uint32, "
            "14 int64, 15 uint64)",
        )
    return check_cube_dtype(np.dtype(_ENVI_DTYPES[code]), f"ENVI image {header.name}")


def _interleave(header: Path, fields: dict[str, Any], bands: int, notes: list[str]) -> str:
    if "interleave" not in fields:
        if bands == 1:  # a single band is laid out the same in every interleave
            return "bsq"
        raise _header_error(
            header,
            "interleave",
            "how bands are laid out: 'interleave = bil', 'bip' or 'bsq'",
            "no such line",
            "add the line 'interleave = bsq' (or bil / bip, as the writing software says)",
        )
    interleave = _text(fields["interleave"]).lower()
    if interleave not in ("bil", "bip", "bsq"):
        raise _header_error(
            header,
            "interleave",
            "bil, bip or bsq",
            f"interleave = {interleave!r}",
            "repair the header's 'interleave' field",
        )
    return interleave


def _check_supported(header: Path, fields: dict[str, Any]) -> None:
    compression = _text(fields.get("file compression", "0"))
    if compression not in ("", "0"):
        raise _header_error(
            header,
            "file compression",
            "an uncompressed data file ('file compression = 0')",
            f"file compression = {compression!r}",
            "save the image uncompressed (ENVI: File > Save As without compression) before ingest",
        )
    for field in ("major frame offsets", "minor frame offsets"):
        values = fields.get(field)
        items = values if isinstance(values, list) else [] if values is None else [values]
        if any(_text(item) not in ("", "0") for item in items):
            raise _header_error(
                header,
                field,
                "no frame offsets (0)",
                f"{field} = {_text(values)!r}",
                "convert the image to plain BIL/BIP/BSQ without frame offsets (e.g. gdal_translate -of ENVI)",
            )


def _wavelengths(header: Path, fields: dict[str, Any]) -> np.ndarray | None:
    raw = fields.get("wavelength")
    if raw is None:
        return None
    try:
        return np.asarray([float(v) for v in np.ravel(raw) if str(v).strip()], dtype=np.float64)
    except ValueError as error:
        raise WavelengthError(
            f"wavelengths in {header}",
            expected="numbers",
            found=repr(raw)[:80],
            fix="repair the header's 'wavelength' field",
        ) from error


def _bad_band_list(header: Path, fields: dict[str, Any], bands: int) -> np.ndarray | None:
    raw = fields.get("bbl")
    if raw is None:
        return None
    items = [str(v).strip() for v in (raw if isinstance(raw, list) else [raw]) if str(v).strip()]
    try:
        values = [float(v) for v in items]
    except ValueError:
        values = []
    if len(values) != bands or any(v not in (0.0, 1.0) for v in values):
        raise _header_error(
            header,
            "bbl",
            f"a bad band list of {bands} values, 1 (good) or 0 (bad)",
            f"{len(items)} values: {', '.join(items[:6])}{', ...' if len(items) > 6 else ''}",
            "repair 'bbl = {1, 1, 0, ...}' (one value per band) or remove it",
        )
    good = np.asarray(values) == 1.0
    if not good.any():
        raise _header_error(
            header,
            "bbl",
            "at least one good band (1)",
            "every band marked bad (0)",
            "repair the bad band list",
        )
    return good


def _ignore_value(header: Path, fields: dict[str, Any]) -> float | None:
    if "data ignore value" not in fields:
        return None
    text = _text(fields["data ignore value"])
    try:
        return float(text)
    except ValueError as error:
        raise _header_error(
            header,
            "data ignore value",
            "a number (the value of pixels without data)",
            f"data ignore value = {text!r}",
            "repair 'data ignore value' or remove it",
        ) from error


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
