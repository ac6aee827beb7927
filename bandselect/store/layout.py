"""The layout of one acquisition: validation, content-derived ids, chunking, block sources.

An acquisition is a zarr group with ``cube`` ``(y, x, band)`` float32, the ``wavelength`` coordinate in nm,
an optional label ``mask`` ``(y, x)``, an optional ``valid`` ``(y, x)`` bool and provenance attributes.
This module knows nothing of files or stores: readers turn files into :class:`AcquisitionSource` objects,
the campaign writes them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from bandselect.errors import ConfigError, DTypeError, LabelError, ShapeError, StoreError
from bandselect.names import (
    ATTR_SOURCE_DTYPE,
    COORD_WAVELENGTH,
    DIM_BAND,
    DIM_X,
    DIM_Y,
    VAR_CUBE,
    VAR_MASK,
    VAR_VALID,
    WAVELENGTH_UNITS,
)
from bandselect.spectral import validate_wavelengths
from bandselect.store.georef import Georeference, georeference_of, with_georeference

#: Default spatial chunk (rows, columns); the whole band axis is always one chunk.
DEFAULT_CHUNK_YX: tuple[int, int] = (256, 256)

#: Upper bound on the float32 bytes of one block of rows held in memory while writing.
BLOCK_BUDGET_BYTES = 128 * 2**20

#: Hex digits of the content digest kept in an acquisition id.
ID_DIGEST_LENGTH = 16

_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_STEM_MAX_LENGTH = 48
_HASH_DOMAIN = b"bandselect-acquisition-v1"

#: One block of rows: cube ``(rows, W, C)`` in the source dtype, optional mask ``(rows, W)``,
#: optional valid ``(rows, W)`` bool.
Block = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]

AttrValue = str | int | float | list[int] | list[float] | list[str]


def sanitize_stem(name: str) -> str:
    """Turn a source name into the readable prefix of an acquisition id.

    Only letters, digits, ``_`` and ``-`` survive (so no ``/``, no ``..``); runs of anything else become
    one ``_``. An empty result becomes ``"acquisition"``.
    """
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_-")[:_STEM_MAX_LENGTH].strip("_-")
    return stem or "acquisition"


def make_acquisition_id(stem: str, digest_hex: str) -> str:
    """``<sanitised stem>-<first 16 hex digits of the content digest>``."""
    return f"{sanitize_stem(stem)}-{digest_hex[:ID_DIGEST_LENGTH]}"


def validate_acquisition_id(acquisition_id: object) -> str:
    """Check that ``acquisition_id`` is a well-formed id (safe to use as a directory name).

    Raises
    ------
    StoreError
        When the id is not a string of letters, digits, ``_`` and ``-`` starting with a letter or digit.
    """
    if not isinstance(acquisition_id, str) or not _ID_PATTERN.match(acquisition_id):
        raise StoreError(
            "acquisition id",
            expected="letters, digits, '_' and '-', starting with a letter or digit (no '/', no '..')",
            found=repr(acquisition_id),
            fix="use an id listed by Campaign.ids() or `bandselect info STORE`",
        )
    return acquisition_id


def digest_suffix(acquisition_id: str) -> str:
    """The content-digest part of an id (what identifies the content)."""
    return acquisition_id.rsplit("-", 1)[-1]


def check_chunk_yx(chunk_yx: object) -> tuple[int, int]:
    """Validate a spatial chunk size: one positive int (square) or a pair ``(rows, columns)``."""
    values: tuple[object, ...]
    if isinstance(chunk_yx, int | np.integer) and not isinstance(chunk_yx, bool):
        values = (chunk_yx, chunk_yx)
    elif isinstance(chunk_yx, tuple | list):
        values = tuple(chunk_yx)
    else:
        values = ()
    if len(values) != 2 or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) and int(v) > 0 for v in values
    ):
        raise ConfigError(
            "chunk_yx",
            expected="a positive int or a pair of positive ints (rows, columns)",
            found=repr(chunk_yx),
            fix="pass e.g. chunk_yx=(256, 256) or --chunk 256",
        )
    return int(values[0]), int(values[1])  # type: ignore[arg-type]


def block_rows_for(chunk_yx: tuple[int, int], width: int, n_bands: int) -> int:
    """Rows per write block: one chunk row, fewer when a chunk row of float32 exceeds the budget.

    Writing whole chunk rows avoids rewriting chunks; only very wide, deep cubes fall back to partial
    chunk rows (still correct, zarr merges partial chunk writes).
    """
    row_bytes = max(1, width * n_bands * 4)
    return max(1, min(chunk_yx[0], BLOCK_BUDGET_BYTES // row_bytes))


def check_cube_dtype(dtype: np.dtype, what: str = "cube") -> np.dtype:
    """Accept real numeric dtypes (bool excluded); raise :class:`DTypeError` otherwise."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iuf":
        raise DTypeError(
            f"{what} dtype",
            expected="a real numeric dtype (int, uint or float; stored as float32)",
            found=f"{dtype} ({_dtype_kind_name(dtype)})",
            fix="convert the cube to a real numeric type (e.g. the magnitude of complex data) before ingest",
        )
    return dtype


def check_mask_dtype(dtype: np.dtype, what: str = "mask") -> np.dtype:
    """Labels are integers (0 = negative) or booleans."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iub":
        raise DTypeError(
            f"{what} dtype",
            expected="integer labels (0 = negative, >0 = class id) or bool",
            found=f"{dtype} ({_dtype_kind_name(dtype)})",
            fix="store labels as integers, e.g. mask.astype('int32')",
        )
    return dtype


def check_mask_shape(mask_shape: tuple[int, ...], height: int, width: int, what: str = "mask") -> None:
    """The mask covers the cube's (y, x) grid exactly."""
    if tuple(mask_shape) != (height, width):
        raise LabelError(
            f"{what} shape",
            expected=f"({height}, {width}), the cube's (y, x) shape",
            found=str(tuple(mask_shape)),
            fix="pass a label mask with one value per pixel of the cube",
        )


def check_mask_values(block: np.ndarray, what: str = "mask") -> None:
    """Negative labels have no meaning in the data model (0 = negative, >0 = class)."""
    if block.dtype.kind == "i" and block.size and int(block.min()) < 0:
        raise LabelError(
            f"{what} values",
            expected="labels >= 0 (0 = negative, >0 = class id)",
            found=f"negative labels (minimum {int(block.min())})",
            fix="map ignore/unknown labels to 0 or to a class id of their own before ingest",
        )


def _dtype_kind_name(dtype: np.dtype) -> str:
    names = {
        "c": "complex",
        "O": "object",
        "U": "string",
        "S": "bytes",
        "V": "structured/void",
        "M": "datetime",
        "m": "timedelta",
        "b": "bool",
    }
    return names.get(dtype.kind, "numeric")


@dataclass(frozen=True)
class AcquisitionSource:
    """A cube that can be read block by block, with everything the store needs to write it.

    Parameters
    ----------
    name
        Readable name (e.g. the source file's stem); it becomes the id's prefix after sanitising.
    shape
        ``(height, width, n_bands)``.
    dtype
        The cube's dtype in the source (converted to float32 on write).
    wavelengths_nm
        ``(n_bands,)`` band centres in nm.
    read_blocks
        ``read_blocks(block_rows)`` yields :data:`Block` tuples covering the rows in order, each with
        ``block_rows`` rows (the last may be shorter). It may be called more than once.
    mask_dtype
        The label mask's dtype when the blocks carry a mask, else ``None``.
    has_valid
        Whether the blocks carry a ``valid`` array.
    attrs
        Provenance attributes (strings or numbers).
    georeference
        CRS and affine transform of the pixel grid, stored as the ``spatial_ref`` coordinate; ``None``
        when the source has no map information.
    """

    name: str
    shape: tuple[int, int, int]
    dtype: np.dtype
    wavelengths_nm: np.ndarray
    read_blocks: Callable[[int], Iterator[Block]]
    mask_dtype: np.dtype | None = None
    has_valid: bool = False
    attrs: Mapping[str, AttrValue] = field(default_factory=dict)
    georeference: Georeference | None = None

    def __post_init__(self) -> None:
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ShapeError(
                f"cube of {self.name}",
                expected="a non-empty 3-D array (y, x, band)",
                found=f"shape {tuple(self.shape)}",
                fix="pass a cube with rows, columns and bands",
            )
        object.__setattr__(self, "dtype", check_cube_dtype(self.dtype, f"cube of {self.name}"))
        object.__setattr__(
            self, "wavelengths_nm", validate_wavelengths(self.wavelengths_nm, n_bands=self.shape[2])
        )
        if self.mask_dtype is not None:
            object.__setattr__(self, "mask_dtype", check_mask_dtype(self.mask_dtype, f"mask of {self.name}"))

    @property
    def nbytes_float32(self) -> int:
        """Size of the cube once stored as float32."""
        height, width, n_bands = self.shape
        return height * width * n_bands * 4


class ContentHasher:
    """Streaming digest of an acquisition's stored content, independent of the block size.

    The cube (float32, little-endian, C order), the mask and ``valid`` are each hashed row by row in
    order; the final digest also covers the shape, the wavelengths, the mask dtype and the georeference
    (when there is one, so ids of acquisitions without one are unchanged), so the same content always
    yields the same id and any difference yields another.
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        wavelengths_nm: np.ndarray,
        georeference: Georeference | None = None,
    ) -> None:
        self._shape = shape
        self._wavelengths = np.ascontiguousarray(wavelengths_nm, dtype="<f8")
        self._georeference = georeference
        self._cube = hashlib.sha256()
        self._mask = hashlib.sha256()
        self._valid = hashlib.sha256()

    def update(self, cube: np.ndarray, mask: np.ndarray | None, valid: np.ndarray | None) -> None:
        """Add one block (cube already float32)."""
        self._cube.update(np.ascontiguousarray(cube, dtype="<f4").data)
        if mask is not None:
            self._mask.update(np.ascontiguousarray(mask).data)
        if valid is not None:
            self._valid.update(np.ascontiguousarray(valid, dtype=np.bool_).data)

    def hexdigest(self, mask_dtype: np.dtype | None, has_valid: bool) -> str:
        """The digest of everything added so far."""
        final = hashlib.sha256(_HASH_DOMAIN)
        final.update(repr(tuple(int(s) for s in self._shape)).encode())
        final.update(self._wavelengths.data)
        final.update(self._cube.digest())
        if mask_dtype is not None:
            final.update(np.dtype(mask_dtype).newbyteorder("<").str.encode())
            final.update(self._mask.digest())
        if has_valid:
            final.update(b"valid")
            final.update(self._valid.digest())
        if self._georeference is not None:
            final.update(b"georeference")
            final.update(self._georeference.digest_text().encode())
        return final.hexdigest()


def make_acquisition(
    cube: np.ndarray,
    wavelengths_nm: object,
    mask: np.ndarray | None = None,
    *,
    valid: np.ndarray | None = None,
    attrs: Mapping[str, AttrValue] | None = None,
    georeference: Georeference | None = None,
) -> xr.Dataset:
    """Build an in-memory acquisition Dataset in the store's layout (ready for ``Campaign.append``).

    Parameters
    ----------
    cube
        ``(y, x, band)`` real numeric array; stored as float32 (raw values, no scaling).
    wavelengths_nm
        ``(band,)`` strictly increasing band centres in nm.
    mask
        Optional ``(y, x)`` integer (0 = negative) or bool labels.
    valid
        Optional ``(y, x)`` bool, False where a pixel has no valid data.
    attrs
        Provenance attributes.
    georeference
        CRS and transform of the pixel grid (the ``spatial_ref`` coordinate), or ``None``.

    Returns
    -------
    xarray.Dataset
        Variables ``cube`` (and ``mask``, ``valid`` when given), coordinate ``wavelength`` in nm (and
        ``spatial_ref`` when georeferenced).

    Raises
    ------
    ShapeError, DTypeError, WavelengthError, LabelError
        On a cube that is not 3-D, an unsupported dtype, bad wavelengths or a mask of another shape.
    """
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise ShapeError(
            "cube",
            expected="a 3-D array (y, x, band)",
            found=f"shape {cube.shape}",
            fix="reshape the cube to (rows, columns, bands)",
        )
    source_dtype = check_cube_dtype(cube.dtype)
    height, width, n_bands = cube.shape
    wavelengths = validate_wavelengths(wavelengths_nm, n_bands=n_bands)
    data_vars: dict[str, tuple[tuple[str, ...], np.ndarray]] = {
        VAR_CUBE: ((DIM_Y, DIM_X, DIM_BAND), cube.astype(np.float32, copy=False))
    }
    if mask is not None:
        mask = np.asarray(mask)
        check_mask_dtype(mask.dtype)
        check_mask_shape(mask.shape, height, width)
        check_mask_values(mask)
        data_vars[VAR_MASK] = ((DIM_Y, DIM_X), mask)
    if valid is not None:
        valid = np.asarray(valid)
        check_mask_shape(valid.shape, height, width, what="valid")
        data_vars[VAR_VALID] = ((DIM_Y, DIM_X), valid.astype(np.bool_, copy=False))
    all_attrs: dict[str, AttrValue] = {ATTR_SOURCE_DTYPE: str(source_dtype)}
    all_attrs.update(attrs or {})
    dataset = xr.Dataset(
        data_vars,
        coords={COORD_WAVELENGTH: (DIM_BAND, wavelengths, {"units": WAVELENGTH_UNITS})},
        attrs=all_attrs,
    )
    return with_georeference(dataset, georeference)


def source_from_dataset(dataset: xr.Dataset, name: str | None = None) -> AcquisitionSource:
    """Wrap an acquisition Dataset (in memory or Dask-backed) as a block source.

    Blocks are read with ``isel(y=...)``, so a Dask-backed Dataset is computed one block at a time.

    Raises
    ------
    ShapeError, WavelengthError, DTypeError, LabelError
        When the Dataset does not follow the layout.
    """
    if VAR_CUBE not in dataset.data_vars:
        raise ShapeError(
            "acquisition dataset",
            expected=f"a data variable {VAR_CUBE!r} with dims ({DIM_Y}, {DIM_X}, {DIM_BAND})",
            found=f"variables {sorted(map(str, dataset.data_vars))}",
            fix="build the dataset with bandselect.store.make_acquisition(cube, wavelengths_nm, mask)",
        )
    cube = dataset[VAR_CUBE]
    if cube.dims != (DIM_Y, DIM_X, DIM_BAND):
        raise ShapeError(
            f"{VAR_CUBE} dims",
            expected=f"({DIM_Y}, {DIM_X}, {DIM_BAND})",
            found=str(cube.dims),
            fix=f"transpose with dataset.transpose({DIM_Y!r}, {DIM_X!r}, {DIM_BAND!r})",
        )
    if COORD_WAVELENGTH not in dataset.coords:
        raise ShapeError(
            "acquisition dataset",
            expected=f"a coordinate {COORD_WAVELENGTH!r} on {DIM_BAND!r} in nm",
            found=f"coordinates {sorted(map(str, dataset.coords))}",
            fix="build the dataset with bandselect.store.make_acquisition(cube, wavelengths_nm, mask)",
        )
    units = dataset[COORD_WAVELENGTH].attrs.get("units", WAVELENGTH_UNITS)
    if units != WAVELENGTH_UNITS:
        raise ShapeError(
            f"{COORD_WAVELENGTH} units",
            expected=f"{WAVELENGTH_UNITS!r}",
            found=repr(units),
            fix="convert the wavelengths to nm and set attrs['units'] = 'nm'",
        )
    height, width, n_bands = (int(s) for s in cube.shape)
    mask_dtype: np.dtype | None = None
    if VAR_MASK in dataset.data_vars:
        mask_var = dataset[VAR_MASK]
        mask_dtype = check_mask_dtype(mask_var.dtype)
        check_mask_shape(tuple(int(s) for s in mask_var.shape), height, width)
        if mask_var.dims != (DIM_Y, DIM_X):
            raise LabelError(
                f"{VAR_MASK} dims",
                expected=f"({DIM_Y}, {DIM_X})",
                found=str(mask_var.dims),
                fix=f"transpose the mask to ({DIM_Y}, {DIM_X})",
            )
    has_valid = VAR_VALID in dataset.data_vars
    if has_valid:
        check_mask_shape(tuple(int(s) for s in dataset[VAR_VALID].shape), height, width, what="valid")

    def read_blocks(block_rows: int) -> Iterator[Block]:
        for y0 in range(0, height, block_rows):
            rows = slice(y0, min(height, y0 + block_rows))
            part = dataset.isel({DIM_Y: rows})
            yield (
                np.asarray(part[VAR_CUBE].values),
                np.asarray(part[VAR_MASK].values) if mask_dtype is not None else None,
                np.asarray(part[VAR_VALID].values, dtype=np.bool_) if has_valid else None,
            )

    attrs = {str(k): v for k, v in dataset.attrs.items() if isinstance(v, str | int | float | list)}
    return AcquisitionSource(
        name=name or str(dataset.attrs.get("name", "acquisition")),
        shape=(height, width, n_bands),
        dtype=cube.dtype,
        wavelengths_nm=np.asarray(dataset[COORD_WAVELENGTH].values),
        read_blocks=read_blocks,
        mask_dtype=mask_dtype,
        has_valid=has_valid,
        attrs=attrs,
        georeference=georeference_of(dataset),
    )
