"""Integrity of a campaign store's groups: the layout checked on open, the chunks checked on read.

A store can be damaged (a disk error, a half copy, a chunk deleted by hand) or crafted (a group copied in
from another campaign, metadata edited). Neither may reach the user as a raw zarr/xarray traceback, nor as
silent bad data.

- **On open**, :func:`inspect_acquisition` checks a group against the layout of
  :mod:`bandselect.store.layout`: readable metadata (every ``zarr.json``), ``cube`` ``(y, x, band)``
  float32 with the whole band axis in one chunk, ``wavelength`` on ``band`` (one valid band centre per
  band), optional ``mask`` (integer or bool) and ``valid`` (bool) on the cube's ``(y, x)``, and a recorded
  content digest that the id's suffix repeats (a group named after another content is refused). Every
  failure is a :class:`~bandselect.errors.StoreError` naming the group, what was found and the fix.
- **On read**, :class:`CheckedArray` stands between the readers and each zarr array: a chunk that cannot be
  decoded (garbage bytes, a truncated file, a checksum mismatch: the writer stores zstd frames with their
  checksum, so one flipped byte is found) or that is missing is a :class:`StoreError` naming the
  acquisition, the variable and the chunk's key in the store. zarr reads a missing chunk as the fill value
  without complaint; the writer never stores NaN in ``cube`` (its fill value), and writes every chunk of
  ``mask`` and ``valid`` (recorded as ``all_chunks_written``), so a chunk is looked up only when all its
  values equal the fill value: ordinary data costs one comparison per chunk, no extra I/O.

Stores written before ``all_chunks_written`` existed keep only their ``mask``/``valid`` chunks that are not
all fill value (zarr's default); there a missing label chunk cannot be told from an empty one and is read
as background, as before. Their cube chunks are checked all the same.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr
import zarr.errors
from dask.base import tokenize

from bandselect import storage
from bandselect.errors import StoreError, WavelengthError
from bandselect.names import (
    ATTR_ALL_CHUNKS_WRITTEN,
    ATTR_CONTENT_SHA256,
    ATTR_SOURCE_FILE,
    COORD_WAVELENGTH,
    DIM_BAND,
    DIM_X,
    DIM_Y,
    VAR_CUBE,
    VAR_MASK,
    VAR_VALID,
)
from bandselect.spectral import validate_wavelengths
from bandselect.storage import StoreLocation
from bandselect.store.layout import ID_DIGEST_LENGTH, digest_suffix

__all__ = [
    "DECODE_ERRORS",
    "METADATA_ERRORS",
    "AcquisitionLayout",
    "CheckedArray",
    "damaged_group_fix",
    "inspect_acquisition",
    "open_checked_dataset",
]

#: What zarr and xarray raise on metadata they cannot parse (JSON errors are ValueErrors).
METADATA_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    KeyError,
    zarr.errors.BaseZarrError,
)
#: What decoding a damaged chunk raises: numcodecs (RuntimeError: zstd, blosc; a checksum mismatch),
#: zarr's bytes codec on a wrong length (ValueError), a truncated buffer (EOFError, BufferError).
#: OSError is left alone: a read that fails in the operating system or the network is the environment's
#: fault (and may succeed when retried), not the store's.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    RuntimeError,
    ValueError,
    TypeError,
    EOFError,
    BufferError,
    zarr.errors.BaseZarrError,
)
_MARKER = "zarr.json"
_SHA256_HEX = 64


@dataclass(frozen=True)
class AcquisitionLayout:
    """What :func:`inspect_acquisition` found in a valid group (its arrays are not read).

    Attributes
    ----------
    acquisition_id
        The group's name.
    shape
        ``(height, width, n_bands)`` of ``cube``.
    chunk_yx
        The cube's spatial chunk ``(rows, columns)``.
    wavelengths_nm
        The group's band centres.
    has_mask, has_valid
        Whether ``mask`` / ``valid`` are present.
    content_sha256
        The recorded content digest (the id's suffix is its first 16 hex digits).
    all_chunks_written
        Whether the writer wrote every chunk of every array (see the module).
    source_file
        The source file recorded at ingest (``""`` when none).
    """

    acquisition_id: str
    shape: tuple[int, int, int]
    chunk_yx: tuple[int, int]
    wavelengths_nm: np.ndarray
    has_mask: bool
    has_valid: bool
    content_sha256: str
    all_chunks_written: bool
    source_file: str


def damaged_group_fix(store: StoreLocation, acquisition_id: str, source_file: str = "") -> str:
    """The fix for a damaged or crafted group: remove it and ingest its source again."""
    again = f" and ingest its source again ({source_file})" if source_file else " and ingest its source again"
    return (
        f"remove the group (Campaign({str(store)!r}).retire({acquisition_id!r}), or delete "
        f"{storage.join(store, acquisition_id)}){again}"
    )


def _dimension_names(array: Any) -> tuple[str, ...]:
    if array.metadata.zarr_format == 3:
        return tuple(str(n) for n in array.metadata.dimension_names or ())
    return tuple(array.attrs.get("_ARRAY_DIMENSIONS", ()))


def _unreadable_metadata(group: StoreLocation) -> str:
    """Which ``zarr.json`` of a group does not parse (the group's own, or one of its arrays')."""
    candidates = [storage.join(group, _MARKER)]
    candidates += [storage.join(group, name, _MARKER) for name in storage.child_names(group)]
    for path in candidates:
        try:
            content = json.loads(storage.read_bytes(path).decode("utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError, ValueError) as error:
            return f"{path} unreadable ({type(error).__name__}: {error})"
        if not isinstance(content, dict) or content.get("node_type") not in ("group", "array"):
            return f"{path} is not zarr metadata"
    return "metadata zarr cannot use"


def inspect_acquisition(store: StoreLocation, acquisition_id: str) -> AcquisitionLayout:
    """Check the group ``acquisition_id`` of the campaign at ``store`` against the layout.

    Reads the group's and its arrays' metadata and the (small) wavelength array, never the cube.

    Raises
    ------
    StoreError
        Unreadable metadata; a missing ``cube`` or ``wavelength``; wrong dims, dtypes or shapes; the band
        axis split over chunks; invalid band centres; no recorded content digest, or one the id's suffix
        does not repeat. The message names the group and the fix.
    """
    group_path = storage.join(store, acquisition_id)
    what = f"acquisition {acquisition_id!r} of campaign {store}"
    try:
        group = zarr.open_group(str(group_path), mode="r")
        arrays = {name: group[name] for name in group.array_keys()}
        attrs = dict(group.attrs)
    except METADATA_ERRORS as error:
        raise StoreError(
            what,
            expected="readable zarr metadata (the zarr.json of the group and of each of its arrays)",
            found=f"{_unreadable_metadata(group_path)}",
            fix=damaged_group_fix(store, acquisition_id),
        ) from error
    source_file = str(attrs.get(ATTR_SOURCE_FILE, "") or "")
    fix = damaged_group_fix(store, acquisition_id, source_file)

    def refuse(expected: str, found: str) -> StoreError:
        return StoreError(what, expected=expected, found=found, fix=fix)

    cube = arrays.get(VAR_CUBE)
    if cube is None:
        raise refuse(f"a {VAR_CUBE!r} array (the store layout)", f"arrays {sorted(arrays)}")
    dims = _dimension_names(cube)
    if dims != (DIM_Y, DIM_X, DIM_BAND) or len(cube.shape) != 3:
        raise refuse(f"{VAR_CUBE} with dims {(DIM_Y, DIM_X, DIM_BAND)}", f"dims {dims}, shape {cube.shape}")
    if np.dtype(cube.dtype) != np.float32:
        raise refuse(f"{VAR_CUBE} of dtype float32", f"dtype {cube.dtype}")
    height, width, n_bands = (int(s) for s in cube.shape)
    if min(height, width, n_bands) < 1:
        raise refuse(f"a non-empty {VAR_CUBE}", f"shape {cube.shape}")
    if int(cube.chunks[2]) != n_bands:
        raise refuse(
            f"the band axis of {VAR_CUBE} in one chunk ({n_bands} bands: a pixel's spectrum is read whole)",
            f"chunks {tuple(cube.chunks)}",
        )
    for name, kinds, kind_text in ((VAR_MASK, "iub", "integer or bool labels"), (VAR_VALID, "b", "bool")):
        array = arrays.get(name)
        if array is None:
            continue
        if _dimension_names(array) != (DIM_Y, DIM_X) or tuple(array.shape) != (height, width):
            raise refuse(
                f"{name} with dims {(DIM_Y, DIM_X)} and the cube's shape {(height, width)}",
                f"dims {_dimension_names(array)}, shape {tuple(array.shape)}",
            )
        if np.dtype(array.dtype).kind not in kinds:
            raise refuse(f"{name} of {kind_text}", f"dtype {array.dtype}")
    wavelengths = _wavelengths(store, acquisition_id, arrays.get(COORD_WAVELENGTH), n_bands, refuse)
    digest = attrs.get(ATTR_CONTENT_SHA256)
    if not isinstance(digest, str) or len(digest) != _SHA256_HEX:
        raise refuse(
            f"the content digest recorded at ingest (attribute {ATTR_CONTENT_SHA256!r})", repr(digest)[:80]
        )
    if digest_suffix(acquisition_id) != digest[:ID_DIGEST_LENGTH]:
        raise refuse(
            f"an id ending with its content digest ({digest[:ID_DIGEST_LENGTH]})",
            f"the id ends with {digest_suffix(acquisition_id)!r}: the group is named after other content "
            "(renamed or copied in by hand)",
        )
    return AcquisitionLayout(
        acquisition_id=acquisition_id,
        shape=(height, width, n_bands),
        chunk_yx=(int(cube.chunks[0]), int(cube.chunks[1])),
        wavelengths_nm=wavelengths,
        has_mask=VAR_MASK in arrays,
        has_valid=VAR_VALID in arrays,
        content_sha256=digest,
        all_chunks_written=attrs.get(ATTR_ALL_CHUNKS_WRITTEN) is True,
        source_file=source_file,
    )


def _wavelengths(
    store: StoreLocation, acquisition_id: str, array: Any, n_bands: int, refuse: Any
) -> np.ndarray:
    if array is None:
        raise refuse(f"a {COORD_WAVELENGTH!r} coordinate on {DIM_BAND!r}", "none")
    if _dimension_names(array) != (DIM_BAND,) or tuple(array.shape) != (n_bands,):
        raise refuse(
            f"{COORD_WAVELENGTH} with dims ({DIM_BAND!r},) and {n_bands} values (one per band)",
            f"dims {_dimension_names(array)}, shape {tuple(array.shape)}",
        )
    if np.dtype(array.dtype).kind != "f":
        raise refuse(f"{COORD_WAVELENGTH} of floats (nm)", f"dtype {array.dtype}")
    checked = CheckedArray(storage.join(store, acquisition_id), COORD_WAVELENGTH, acquisition_id, array=array)
    values = np.asarray(checked[:], dtype=np.float64)
    try:
        return validate_wavelengths(values, n_bands=n_bands)
    except WavelengthError as error:
        raise refuse("valid band centres in nm", str(error.found or error)) from error


def open_checked_dataset(store: StoreLocation, layout: AcquisitionLayout) -> xr.Dataset:
    """Open an inspected acquisition lazily, its variables read through :class:`CheckedArray`.

    Dask arrays chunked as stored; the wavelength coordinate is loaded (it is tiny and used everywhere).

    Raises
    ------
    StoreError
        Metadata xarray cannot decode (the message names the group and the fix).
    """
    acquisition_id = layout.acquisition_id
    group = storage.join(store, acquisition_id)
    try:
        # decode_coords="all": the georeference (``spatial_ref``, named by ``grid_mapping``) is a coordinate.
        dataset = xr.open_zarr(
            str(store), group=acquisition_id, consolidated=False, chunks={}, decode_coords="all"
        )
        dataset = dataset.assign_coords({COORD_WAVELENGTH: dataset[COORD_WAVELENGTH].load()})
    except (*METADATA_ERRORS, *DECODE_ERRORS) as error:
        raise StoreError(
            f"acquisition {acquisition_id!r} of campaign {store}",
            expected="an acquisition group xarray can open (the store layout)",
            found=f"{type(error).__name__}: {error}",
            fix=damaged_group_fix(store, acquisition_id, layout.source_file),
        ) from error
    checked = {}
    for name in (VAR_CUBE, VAR_MASK, VAR_VALID):
        if name not in dataset.data_vars:
            continue
        variable = dataset[name]
        array = CheckedArray(
            group,
            name,
            acquisition_id,
            all_chunks_written=layout.all_chunks_written,
            source_file=layout.source_file,
        )
        if array.dtype != variable.dtype or array.shape != tuple(variable.shape):
            continue  # xarray decoded it into something else; the layout check refuses such groups
        data = da.from_array(
            array,
            chunks=variable.data.chunks,
            name=f"bandselect-{name}-{tokenize(array.location, layout.content_sha256)}",
            lock=False,
            asarray=False,
            meta=np.empty((0,) * array.ndim, dtype=array.dtype),
        )
        checked[name] = variable.copy(data=data)
    return dataset.assign(checked)


class CheckedArray:
    """A zarr array whose damaged chunks are reported, not decoded into bad data (see the module).

    Indexing (``array[key]``, slices with step 1 or integers) returns a NumPy array, as zarr does. Pickles
    without the open zarr handle (a worker process reopens it). Dask reads it with ``da.from_array``.

    Parameters
    ----------
    group
        The acquisition group's location (a local path or an object-store URL).
    name
        The array's name in the group.
    acquisition_id
        For messages.
    all_chunks_written
        Whether every chunk was written, so a chunk of fill values must exist (always checked for float
        arrays whose fill value is NaN, which the writer never stores).
    array
        The opened zarr array (opened from ``group`` and ``name`` when None).
    source_file
        The acquisition's source file, named in the fix of a damaged chunk.
    """

    def __init__(
        self,
        group: StoreLocation,
        name: str,
        acquisition_id: str,
        *,
        all_chunks_written: bool = False,
        array: Any = None,
        source_file: str = "",
    ) -> None:
        self.location = str(storage.join(group, name))
        self.store = str(_parent(str(storage.location(group))))
        self.name = name
        self.acquisition_id = acquisition_id
        self.source_file = source_file
        self._array = array if array is not None else zarr.open_array(self.location, mode="r")
        self.shape: tuple[int, ...] = tuple(int(s) for s in self._array.shape)
        self.dtype = np.dtype(self._array.dtype)
        self.chunks: tuple[int, ...] = tuple(int(c) for c in self._array.chunks)
        self.ndim = len(self.shape)
        fill = self._array.fill_value
        self._fill_is_nan = self.dtype.kind == "f" and fill is not None and bool(np.isnan(fill))
        self._fill = fill
        self._check_missing = self._fill_is_nan or all_chunks_written

    def __repr__(self) -> str:
        return f"CheckedArray({self.location!r}, shape={self.shape}, dtype={self.dtype})"

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None}

    def _zarr(self) -> Any:
        if self._array is None:
            self._array = zarr.open_array(self.location, mode="r")
        return self._array

    def __getitem__(self, key: Any) -> np.ndarray:
        bounds = _bounds(key, self.shape)
        try:
            block = np.asarray(self._zarr()[key])
        except DECODE_ERRORS as error:
            raise self._decode_error(bounds, error) from error
        if self._check_missing and bounds is not None and bounds.sliced and block.size:
            self._check_chunks_present(bounds, block)
        return block

    # -- damaged chunks ------------------------------------------------------------------------------
    def _chunk_key(self, index: tuple[int, ...]) -> str:
        return str(self._zarr().metadata.encode_chunk_key(index))

    def _chunk_indices(self, bounds: _Bounds) -> list[tuple[int, ...]]:
        ranges = [
            range(start // chunk, max(start, stop - 1) // chunk + 1)
            for (start, stop), chunk in zip(bounds.spans, self.chunks, strict=True)
        ]
        return list(itertools.product(*ranges))

    def _chunk_error(self, index: tuple[int, ...], found: str) -> StoreError:
        key = self._chunk_key(index)
        return StoreError(
            f"chunk {key} of {self.name!r} in acquisition {self.acquisition_id!r} ({self.location}/{key})",
            expected="a chunk as the writer stored it",
            found=found,
            fix=damaged_group_fix(self.store, self.acquisition_id, self.source_file),
        )

    def _decode_error(self, bounds: _Bounds | None, error: BaseException) -> StoreError:
        described = f"{type(error).__name__}: {error}"
        if bounds is not None:
            # Find the chunk that does not decode: each chunk of the region is read on its own.
            for index in self._chunk_indices(bounds):
                region = tuple(
                    slice(i * chunk, min((i + 1) * chunk, size))
                    for i, chunk, size in zip(index, self.chunks, self.shape, strict=True)
                )
                try:
                    self._zarr()[region]
                except DECODE_ERRORS as inner:
                    return self._chunk_error(
                        index, f"bytes that do not decode ({type(inner).__name__}: {inner})"
                    )
        return StoreError(
            f"{self.name!r} of acquisition {self.acquisition_id!r} ({self.location})",
            expected="chunks as the writer stored them",
            found=f"a read that fails: {described}",
            fix=damaged_group_fix(self.store, self.acquisition_id, self.source_file),
        )

    def _all_fill(self, part: np.ndarray) -> bool:
        if self._fill_is_nan:
            return bool(np.isnan(part.flat[0])) and bool(np.isnan(part).all())
        return bool(part.flat[0] == self._fill) and bool((part == self._fill).all())

    def _check_chunks_present(self, bounds: _Bounds, block: np.ndarray) -> None:
        for index in self._chunk_indices(bounds):
            local = tuple(
                slice(max(i * chunk, start) - start, min((i + 1) * chunk, stop) - start)
                for i, chunk, (start, stop) in zip(index, self.chunks, bounds.spans, strict=True)
            )
            part = block[local]
            if part.size == 0 or not self._all_fill(part):
                continue  # data, so the chunk exists
            key = self._chunk_key(index)
            if not storage.exists(storage.join(self.location, key)):
                raise self._chunk_error(
                    index, "no such chunk (deleted or never copied); zarr would read fill values"
                )


@dataclass(frozen=True)
class _Bounds:
    """The half-open span ``(start, stop)`` a key selects on each axis; ``sliced``: no axis dropped."""

    spans: tuple[tuple[int, int], ...]
    sliced: bool


def _bounds(key: Any, shape: tuple[int, ...]) -> _Bounds | None:
    """The spans of ``key`` (slices with step 1, integers, an Ellipsis), or None for other selections."""
    parts = key if isinstance(key, tuple) else (key,)
    if any(part is Ellipsis for part in parts):
        at = next(i for i, part in enumerate(parts) if part is Ellipsis)
        parts = (*parts[:at], *(slice(None),) * (len(shape) - len(parts) + 1), *parts[at + 1 :])
    if len(parts) > len(shape):
        return None
    parts = (*parts, *(slice(None),) * (len(shape) - len(parts)))
    spans: list[tuple[int, int]] = []
    sliced = True
    for part, size in zip(parts, shape, strict=True):
        if isinstance(part, slice):
            start, stop, step = part.indices(size)
            if step != 1:
                return None
            spans.append((start, max(start, stop)))
        elif isinstance(part, int | np.integer) and not isinstance(part, bool):
            index = int(part) + (size if int(part) < 0 else 0)
            spans.append((index, index + 1))
            sliced = False
        else:
            return None
    return _Bounds(tuple(spans), sliced)


def _parent(location: str) -> str:
    """The folder (or URL prefix) holding ``location``."""
    return location.rstrip("/").rsplit("/", 1)[0] if "://" in location else os.path.dirname(location)
