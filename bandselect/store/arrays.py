"""NumPy ``.npz``/``.npy`` (streamed by rows, compressed or not) and MATLAB ``.mat``: v5/v7 via SciPy,
v7.3 (HDF5) via h5py (:mod:`bandselect.store.hdf5`)."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from bandselect.errors import DTypeError, FileFormatError
from bandselect.store.hdf5 import WAVELENGTH_NAMES, is_hdf5, read_hdf5, unique_label_name
from bandselect.store.layout import AcquisitionSource, Block
from bandselect.store.sources import (
    ReaderOptions,
    array_blocks,
    check_cube_header,
    finish_source,
    read_array,
    resolve_grid,
)

_NPZ_MASK_NAMES = ("mask", "gt")


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
                    yield read_array(handle, (rows, width, n_bands), dtype, path), None, None
                handle.read()  # reaching the end makes zipfile verify the member's CRC
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise FileFormatError(
                f"archive {path}",
                expected="an intact .npz archive",
                found=str(error),
                fix="the file is corrupt: re-copy or re-export it",
            ) from error

    return read_blocks


def read_npz(path: Path, *, options: ReaderOptions) -> AcquisitionSource:
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
            height, width, n_bands = check_cube_header(shape, dtype, f"cube of {path.name}")
            found_nm = None
            if "wavelengths_nm.npy" in members:
                found_nm = _npz_member(archive, "wavelengths_nm.npy", path)
            arrays = {m.removesuffix(".npy") for m in members}
            mask_name = unique_label_name([n for n in _NPZ_MASK_NAMES if n in arrays], path.name)
            mask = _npz_member(archive, f"{mask_name}.npy", path) if mask_name else None
            cube_whole = _npz_member(archive, "cube.npy", path) if fortran else None
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise FileFormatError(
            what,
            expected="an intact .npz archive",
            found=str(error),
            fix="the file is corrupt: re-copy or re-export it",
        ) from error
    grid = resolve_grid(
        None if found_nm is None else found_nm.ravel(),
        "nm",
        options,
        n_bands,
        path.name,
        fix="save 'wavelengths_nm' in the archive or pass wavelengths= (CLI --wavelengths FILE_OR_LIST)",
        units_from="the array name 'wavelengths_nm', which means nm",
    )
    if cube_whole is not None:
        # Fortran-ordered cubes cannot be streamed by rows; they are read whole (small files in practice).
        read_blocks = array_blocks(cube_whole)
    else:
        read_blocks = _stream_blocks(
            lambda: _ZipMember(path, "cube.npy"), (height, width, n_bands), dtype, path
        )
    return finish_source(
        path, (height, width, n_bands), dtype, grid, read_blocks, source_format="npz", mask=mask
    )


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


def read_npy(path: Path, *, options: ReaderOptions) -> AcquisitionSource:
    """Open a ``.npy`` cube; ``wavelengths_nm`` is required. See :func:`open_source`."""
    with open(path, "rb") as handle:
        shape, fortran, dtype = _npy_header(handle, f"file {path}")
        data_start = handle.tell()
    height, width, n_bands = check_cube_header(shape, dtype, f"cube of {path.name}")
    needed = data_start + height * width * n_bands * dtype.itemsize
    if path.stat().st_size < needed:
        raise FileFormatError(
            f"file {path}",
            expected=f"{needed} bytes for a {shape} {dtype} array",
            found=f"{path.stat().st_size} bytes (truncated)",
            fix="re-copy or re-save it",
        )
    grid = resolve_grid(
        None,
        None,
        options,
        n_bands,
        path.name,
        fix="a .npy holds only the cube: pass wavelengths= (CLI --wavelengths FILE_OR_LIST), or use .npz",
    )
    if fortran:
        read_blocks = array_blocks(np.load(path, mmap_mode="r"))
    else:
        read_blocks = _stream_blocks(lambda: open(path, "rb"), (height, width, n_bands), dtype, path)
    return finish_source(path, (height, width, n_bands), dtype, grid, read_blocks, source_format="npy")


def read_mat(path: Path, *, options: ReaderOptions) -> AcquisitionSource:
    """Open a MATLAB ``.mat``: v5/v7 via SciPy (loaded whole), v7.3 via h5py (streamed by rows).

    The cube is the variable ``cube`` or the only 3-D numeric variable; wavelengths come from the first
    of ``wavelengths_nm, wavelength_nm, wavelengths, wavelength, wl, lambda``; labels from the one of
    ``mask, gt, labels, groundtruth, ground_truth`` present (two of them are a :class:`LabelError`).
    See :func:`open_source`.
    """
    if is_hdf5(path):
        return read_hdf5(path, options=options, matlab=True)
    import scipy.io  # imported here: only .mat ingest needs it
    from scipy.io.matlab import MatReadError  # an empty or truncated file (not a ValueError)

    try:
        variables = scipy.io.loadmat(str(path))
    except (ValueError, TypeError, OSError, NotImplementedError, zlib.error, MatReadError) as error:
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
    height, width, n_bands = check_cube_header(tuple(cube.shape), cube.dtype, f"cube of {path.name}")
    key = next((k for k in WAVELENGTH_NAMES if k in arrays), None)
    found = None if key is None else np.asarray(arrays[key], dtype=np.float64).ravel()
    units = "nm" if key is not None and key.endswith("_nm") else None
    grid = resolve_grid(
        found,
        units,
        options,
        n_bands,
        path.name,
        fix="save a variable 'wavelengths_nm' in the file or pass wavelengths= (CLI --wavelengths)",
        units_from="the variable's name (a name ending in _nm means nm)",
    )
    mask_key = unique_label_name(arrays, path.name)
    mask = arrays[mask_key] if mask_key else None
    return finish_source(
        path,
        (height, width, n_bands),
        cube.dtype,
        grid,
        array_blocks(cube),
        source_format="mat-v5",
        mask=mask,
    )
