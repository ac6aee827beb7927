"""Readers that turn files into :class:`~bandselect.store.layout.AcquisitionSource` block sources.

Formats (``docs/formats.md`` has the details):

- ENVI (``.hdr`` + ``.raw``/``.img``/``.bil``/``.bsq``/``.bip``/``.dat`` or no extension), interleave BIL,
  BIP or BSQ, either byte order (:mod:`bandselect.store.envi`): header fields checked one by one, a missing
  ``byte order`` read as little-endian with a recorded warning, ``bbl`` and ``data ignore value``
  honoured, ``map info`` kept as the georeference.
- GeoTIFF / COG (``.tif``, ``.tiff``) through rasterio (:mod:`bandselect.store.gdal`), with the CRS and
  transform; wavelengths from band metadata or descriptions. ``reader="gdal"`` reads any file GDAL opens
  (an ENVI file too) the same way.
- HDF5 (``.h5``, ``.hdf5``, ``.he5``) and MATLAB v7.3 ``.mat`` through h5py (:mod:`bandselect.store.hdf5`).
- NumPy ``.npz`` with arrays ``cube`` (H, W, C), ``wavelengths_nm`` (C,), optional ``mask`` or ``gt``
  (H, W) labels, as in ``../shared/data``. Compressed or not, the cube is streamed from the archive.
- NumPy ``.npy`` holding only the cube (wavelengths must be passed).
- MATLAB v5/v7 ``.mat`` via SciPy (loaded whole).

Wavelengths end up in nm and must be physical (200–25,000 nm); units are taken from the source and
checked against the values' magnitude (:mod:`bandselect.store.units`).

Values are kept raw (no scaling); the store converts them to float32.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bandselect import storage
from bandselect.errors import BandSelectError, FileFormatError, WavelengthError
from bandselect.store.arrays import read_mat, read_npy, read_npz
from bandselect.store.envi import (
    ENVI_DATA_SUFFIXES,
    ENVI_HEADER_SUFFIX,
    data_file_of,
    find_header,
    read_envi,
)
from bandselect.store.gdal import GDAL_SUFFIXES, read_gdal
from bandselect.store.hdf5 import HDF5_SUFFIXES, read_hdf5
from bandselect.store.layout import AcquisitionSource
from bandselect.store.sources import ByteOrder, ReaderChoice, ReaderOptions, file_sha256, to_nanometres

SUPPORTED_SUFFIXES = (
    ENVI_HEADER_SUFFIX,
    *ENVI_DATA_SUFFIXES,
    *GDAL_SUFFIXES,
    *HDF5_SUFFIXES,
    ".npz",
    ".npy",
    ".mat",
)
#: A comma/space separated list of numbers (not a file name): ``--wavelengths 430,438,446``.
_NUMBER_LIST = re.compile(r"^[\s\[\]{}()]*[-+.\d][-+.\deE]*(?:[\s,;]+[-+.\d][-+.\deE]*)+[\s\[\]{}()]*$")
__all__ = [
    "SUPPORTED_SUFFIXES",
    "discover",
    "file_sha256",
    "open_source",
    "parse_wavelengths",
    "to_nanometres",
]


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
    ConfigError
        An object-store URL (source files are local; the campaign store may be a URL).
    """
    found: list[Path] = []
    for raw in paths:
        path = storage.local_path(raw, f"input {raw}", "source files are read from this machine's disk")
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
        elif path.exists() or path.is_symlink():  # a broken link is refused when opened, by name
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
        unique.setdefault(_resolved(path), path)
    return list(unique.values())


def _resolved(path: Path) -> Path:
    """``path`` resolved; a link that loops stays as it is (it is refused, by name, when opened)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: RuntimeError before Python 3.13, OSError after
        return path.absolute()


def _walk(directory: Path) -> list[Path]:
    files: list[Path] = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(root) / name
            if name.startswith(".") or path.suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            if path.suffix.lower() in ENVI_DATA_SUFFIXES and find_header(path) is not None:
                continue  # taken through its header
            files.append(path)
    return files


def _primary_file(path: Path) -> Path:
    if path.suffix.lower() in ENVI_DATA_SUFFIXES:
        header = find_header(path)
        return header if header is not None else path
    return path


def open_source(
    path: str | os.PathLike[str],
    *,
    wavelengths_nm: object = None,
    sort_bands: bool = False,
    byte_order: ByteOrder | None = None,
    allow_trailing_bytes: bool = False,
    reader: ReaderChoice = "auto",
) -> AcquisitionSource:
    """Open one file as a block source, validating everything that can be checked without reading the cube.

    Parameters
    ----------
    path
        An ENVI header or data file, GeoTIFF/COG, HDF5, ``.npz``, ``.npy`` or ``.mat`` (any raster GDAL
        opens with ``reader="gdal"``).
    wavelengths_nm
        Band centres in nm that replace (or supply) the file's, one per band of the file; required where
        the file has none (ENVI headers without ``wavelength``, GeoTIFFs without wavelength metadata,
        ``.npy``).
    sort_bands
        Re-order the bands by increasing wavelength (for instruments whose spectrometers overlap, such
        as AVIRIS); the source band index of each stored band is kept in ``attrs["source_band_order"]``.
    byte_order
        ``"little"`` or ``"big"``: how to read raw ENVI data, whatever the header says (or when it says
        nothing; then little-endian is assumed and recorded).
    allow_trailing_bytes
        Accept an ENVI data file longer than its header describes (recorded); otherwise an error.
    reader
        ``"auto"`` (each format's reader) or ``"gdal"`` (read through GDAL: an ENVI header or data file,
        or any raster GDAL opens).

    Raises
    ------
    FileFormatError, WavelengthError, DTypeError, ShapeError, LabelError, GeoreferenceError
        On an unknown type, missing header/data file, a malformed header field, truncated or corrupt
        file, bad or implausible wavelengths, unsupported dtype, ambiguous or misshapen labels, or
        unreadable map information.
    """
    path = Path(path)
    options = ReaderOptions(
        None if wavelengths_nm is None else parse_wavelengths(wavelengths_nm),
        sort_bands,
        byte_order,
        allow_trailing_bytes,
        reader,
    )
    suffix = path.suffix.lower()
    if not path.is_file():
        if path.is_symlink():
            raise FileFormatError(
                f"input {path}",
                expected="a file, or a symbolic link to one",
                found=f"a symbolic link that loops or points nowhere (-> {os.readlink(path)})",
                fix="remove the link, or point it at the file it stands for",
            )
        raise FileFormatError(
            f"input {path}", expected="an existing file", found="no such file", fix="check the path"
        )
    try:
        if options.reader == "gdal":
            return read_gdal(data_file_of(path) if suffix == ENVI_HEADER_SUFFIX else path, options=options)
        if suffix in GDAL_SUFFIXES:
            return read_gdal(path, options=options)
        if suffix in HDF5_SUFFIXES:
            return read_hdf5(path, options=options)
        if suffix == ENVI_HEADER_SUFFIX:
            return read_envi(path, options=options)
        if suffix in ENVI_DATA_SUFFIXES:
            header = find_header(path)
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
        fix="pass the ENVI header (.hdr) instead of this file, read it through GDAL with reader='gdal' "
        "(--reader gdal), or convert it to GeoTIFF or .npz",
    )


def _wavelength_file(text: str) -> Path | None:
    """The file ``text`` names, or ``None`` when it is a list of numbers or names no file.

    A list of numbers is never taken for a file name, so a long list (hundreds of bands) is not looked up
    on disk (where it would exceed the longest file name).
    """
    if _NUMBER_LIST.match(text):
        return None
    try:
        path = Path(text)
        return path if path.is_file() else None
    except (OSError, ValueError):  # a name the OS cannot look up (too long, NUL byte)
        return None


def _looks_like_file_name(text: str) -> bool:
    return "," not in text and (os.sep in text or bool(Path(text[:255]).suffix))


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
        path = _wavelength_file(text)
        if path is not None:
            try:
                if path.suffix.lower() == ".npy":
                    return np.asarray(np.load(path, allow_pickle=False), dtype=np.float64).ravel()
                text = path.read_text(encoding="utf-8")
            except (OSError, ValueError, TypeError, EOFError) as error:  # UnicodeDecodeError is a ValueError
                raise WavelengthError(
                    f"wavelengths file {path}",
                    expected="a text file of numbers (or .npy)",
                    found=f"{type(error).__name__}: {error}",
                    fix="pass a readable .txt/.csv/.npy file, or the numbers themselves",
                ) from error
        tokens = [t for t in re.split(r"[,\s;]+", text.strip().strip("[]{}()")) if t]
        try:
            return np.asarray([float(t) for t in tokens], dtype=np.float64)
        except ValueError as error:
            if path is not None:
                found = f"a file {path} whose content is not numbers ({text.strip()[:60]!r})"
            elif _looks_like_file_name(text):
                found = f"{text[:80]!r}: neither a list of numbers nor an existing file"
            else:
                found = f"{text[:80]!r}: not a list of numbers (and no file of that name)"
            raise WavelengthError(
                "wavelengths",
                expected="numbers in nm separated by commas or spaces (any count), or a file of them "
                "(.txt, .csv, .npy)",
                found=found,
                fix="pass e.g. --wavelengths 430,438,446 or --wavelengths wavelengths.txt (check the path)",
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
