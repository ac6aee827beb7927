"""ENVI headers: parsed by SPy, then every field the reader relies on checked on its own.

A bad header gets a message about *that* field (what was found, the line to write), never a generic
"repair the header". See :mod:`bandselect.store.envi` for the fields' rules and defaults.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bandselect.errors import DTypeError, FileFormatError, WavelengthError
from bandselect.store.layout import check_cube_dtype
from bandselect.store.sources import ReaderOptions

__all__ = ["EnviHeader", "parse_header", "read_header"]

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
