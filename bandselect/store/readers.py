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

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bandselect.errors import BandSelectError, FileFormatError, WavelengthError
from bandselect.store.arrays import read_mat, read_npy, read_npz
from bandselect.store.envi import ENVI_DATA_SUFFIXES, ENVI_HEADER_SUFFIX, find_header, read_envi
from bandselect.store.layout import AcquisitionSource
from bandselect.store.sources import ReaderOptions, file_sha256, to_nanometres

SUPPORTED_SUFFIXES = (ENVI_HEADER_SUFFIX, *ENVI_DATA_SUFFIXES, ".npz", ".npy", ".mat")
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
    options = ReaderOptions(None if wavelengths_nm is None else parse_wavelengths(wavelengths_nm), sort_bands)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileFormatError(
            f"input {path}", expected="an existing file", found="no such file", fix="check the path"
        )
    try:
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
