"""Writing one acquisition under a staging directory, block by block, hashing as it goes.

A staged acquisition is a complete zarr group in ``<store>/.staging/<unique name>``; the campaign publishes
it by renaming the directory to its id, or on an object store by copying it with the group's marker last
(see :mod:`bandselect.store.campaign`). Staging on the same filesystem as the store is what makes that
rename atomic.

While the blocks stream by, the writer also records each band's minimum and maximum over the valid
pixels (:data:`~bandselect.names.ATTR_BAND_MINIMUM`, :data:`~bandselect.names.ATTR_BAND_MAXIMUM`), and
per label of the mask (:data:`~bandselect.names.ATTR_CLASS_LABELS` and the class ranges): the statistics
engine takes its histogram edges from them (those of the pixels that count under an ``ignore_label``
from the class ranges), so a statistics job reads the store once.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from zarr.codecs import ZstdCodec

from bandselect import storage
from bandselect.errors import FileFormatError, NonFiniteError, ResourceError
from bandselect.names import (
    ATTR_ACQUISITION_ID,
    ATTR_ALL_CHUNKS_WRITTEN,
    ATTR_BAND_MAXIMUM,
    ATTR_BAND_MINIMUM,
    ATTR_CLASS_BAND_MAXIMUM,
    ATTR_CLASS_BAND_MINIMUM,
    ATTR_CLASS_LABELS,
    ATTR_CONTENT_SHA256,
    ATTR_SOURCE_DTYPE,
    CLASS_RANGE_ATTRS,
    COORD_WAVELENGTH,
    DIM_BAND,
    DIM_X,
    DIM_Y,
    MAX_RECORDED_CLASSES,
    VAR_CUBE,
    VAR_MASK,
    VAR_VALID,
    WAVELENGTH_UNITS,
)
from bandselect.storage import StoreLocation
from bandselect.store.georef import with_georeference
from bandselect.store.layout import (
    AcquisitionSource,
    ContentHasher,
    block_rows_for,
    check_chunk_yx,
    check_mask_shape,
    check_mask_values,
    make_acquisition_id,
)

#: errno values of a full disk or an exhausted quota: the environment is at fault, not the input.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: The writer's compressor: zarr's default (zstd) with the frame checksum, so a chunk whose bytes changed
#: after writing fails to decode instead of decoding into other values (see bandselect.store.integrity).
CHUNK_COMPRESSOR = ZstdCodec(level=0, checksum=True)


def disk_full(error: BaseException, what: str, where: object) -> ResourceError | None:
    """A :class:`ResourceError` for an ``OSError`` of a full disk or quota (else None) while writing."""
    if not isinstance(error, OSError) or error.errno not in DISK_FULL_ERRNOS:
        return None
    return ResourceError(
        what,
        expected=f"free space in {where}",
        found=f"{error.strerror or error} [{errno.errorcode.get(error.errno or 0, '?')}]"
        + (f" writing {error.filename}" if error.filename else ""),
        fix="free disk space (or raise the quota), or write to another location; nothing was published",
    )


@dataclass(frozen=True)
class StagedAcquisition:
    """A fully written acquisition waiting to be published (or discarded)."""

    path: StoreLocation
    acquisition_id: str
    digest: str
    source_name: str


def host_tag() -> str:
    """This host's name reduced to ASCII letters and digits (part of staging directory names)."""
    return re.sub(r"[^A-Za-z0-9]+", "", socket.gethostname())[:32] or "host"


def staging_name() -> str:
    """A unique staging directory name that records which process owns it (host and pid)."""
    return f"{host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


class BandRange:
    """Running per-band minimum and maximum of the valid pixels of the blocks seen so far, overall and
    per label of the mask (while there are at most :data:`~bandselect.names.MAX_RECORDED_CLASSES`)."""

    def __init__(self, n_bands: int, labelled: bool = False) -> None:
        self.low = np.full(n_bands, np.inf, dtype=np.float64)
        self.high = np.full(n_bands, -np.inf, dtype=np.float64)
        # label -> (low, high); None: no mask, or too many labels to record.
        self.classes: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if labelled else None

    def update(self, cube32: np.ndarray, valid: np.ndarray | None, mask: np.ndarray | None = None) -> None:
        """Add a block ``(rows, W, C)`` float32 (``valid`` ``(rows, W)`` bool or None: every pixel;
        ``mask`` its labels, needed while per-class ranges are recorded)."""
        pixels = cube32.reshape(-1, cube32.shape[-1])
        labels = None if mask is None or self.classes is None else np.asarray(mask).reshape(-1)
        if valid is not None and not bool(valid.all()):
            keep = np.asarray(valid, dtype=np.bool_).reshape(-1)
            pixels = pixels[keep]
            labels = None if labels is None else labels[keep]
        if pixels.shape[0] == 0:
            return
        if labels is not None and self._update_classes(pixels, labels):
            return
        # NumPy reduces axis 0 one row (C values) at a time: 16 rows viewed as one row of 16·C values
        # make the inner loop 16 times longer (3× faster for 61 bands); the 16 partials are reduced last.
        whole = (pixels.shape[0] // 16) * 16
        parts = [pixels[whole:]] if whole < pixels.shape[0] else []
        if whole:
            grouped = pixels[:whole].reshape(whole // 16, 16 * pixels.shape[1])
            parts += [grouped.min(axis=0).reshape(16, -1), grouped.max(axis=0).reshape(16, -1)]
        for part in parts:
            np.minimum(self.low, part.min(axis=0), out=self.low)
            np.maximum(self.high, part.max(axis=0), out=self.high)

    def _update_classes(self, pixels: np.ndarray, labels: np.ndarray) -> bool:
        """Per-label min/max of the block in one compiled read (the overall range from them); False
        once the labels outnumber what is recorded (per-class recording stops, the caller goes on)."""
        from bandselect.stats import native  # numba: loaded when an acquisition has labels
        from bandselect.stats.kernels import class_layout, kernel_input

        assert self.classes is not None
        present, index = class_layout(np.asarray(labels, dtype=np.int64))
        if len(set(self.classes) | set(present.tolist())) > MAX_RECORDED_CLASSES:
            self.classes = None
            return False
        low = np.full((present.size, pixels.shape[1]), np.inf)
        high = np.full((present.size, pixels.shape[1]), -np.inf)
        positions = np.zeros(pixels.shape[0], np.int64) if index is None else index
        native.class_column_range(kernel_input(pixels), positions, low, high)
        for k, label in enumerate(present.tolist()):
            if label in self.classes:
                old_low, old_high = self.classes[label]
                np.minimum(old_low, low[k], out=old_low)
                np.maximum(old_high, high[k], out=old_high)
            else:
                self.classes[label] = (low[k].copy(), high[k].copy())
        np.minimum(self.low, low.min(axis=0), out=self.low)
        np.maximum(self.high, high.max(axis=0), out=self.high)
        return True

    def attrs(self) -> dict[str, list[Any]]:
        """The recorded ranges as attributes (empty band lists when no pixel was valid; the per-class
        ones only while they were recorded)."""
        if not np.all(np.isfinite(self.low)):
            empty: dict[str, list[Any]] = {ATTR_BAND_MINIMUM: [], ATTR_BAND_MAXIMUM: []}
            if self.classes is not None:  # recorded, and no label has a valid pixel
                empty.update({name: [] for name in CLASS_RANGE_ATTRS})
            return empty
        # float32 values held as float64: Python floats round-trip through JSON exactly.
        out: dict[str, list[Any]] = {
            ATTR_BAND_MINIMUM: self.low.tolist(),
            ATTR_BAND_MAXIMUM: self.high.tolist(),
        }
        if self.classes is not None:
            labels = sorted(self.classes)
            out[ATTR_CLASS_LABELS] = labels
            out[ATTR_CLASS_BAND_MINIMUM] = [self.classes[label][0].tolist() for label in labels]
            out[ATTR_CLASS_BAND_MAXIMUM] = [self.classes[label][1].tolist() for label in labels]
        return out


def stage_acquisition(
    staging_root: StoreLocation,
    source: AcquisitionSource,
    *,
    chunk_yx: object,
    mask_nonfinite: bool = False,
    on_rows: Callable[[int], None] | None = None,
) -> StagedAcquisition:
    """Write ``source`` as a complete acquisition group under ``staging_root``.

    The cube is read, checked, hashed and written one block of rows at a time, so memory stays bounded
    by a block whatever the cube's size. On any error the staging directory is removed before the error
    propagates.

    Raises
    ------
    NonFiniteError
        NaN/Inf in the cube (after the float32 cast) unless ``mask_nonfinite``.
    FileFormatError
        When the source delivers fewer or differently shaped rows than it announced (e.g. truncated).
    LabelError
        Negative labels in the mask.
    """
    chunk_yx = check_chunk_yx(chunk_yx)
    height, width, n_bands = source.shape
    chunks = (min(chunk_yx[0], height), min(chunk_yx[1], width))
    block_rows = block_rows_for(chunks, width, n_bands)
    if isinstance(staging_root, Path):
        staging_root.mkdir(parents=True, exist_ok=True)
    path = storage.join(staging_root, staging_name())
    try:
        _write_template(path, source, chunks, with_valid=mask_nonfinite or source.has_valid)
        # Every chunk is written, even one of fill values (zarr skips those by default): a chunk missing
        # later is damage, which the readers can then tell from an empty label chunk.
        with zarr.config.set({"array.write_empty_chunks": True}):
            group = zarr.open_group(str(path), mode="r+", zarr_format=3)
            cube_array = group[VAR_CUBE]
            mask_array = group[VAR_MASK] if source.mask_dtype is not None else None
            valid_array = group[VAR_VALID] if VAR_VALID in group else None
        hasher = ContentHasher(source.shape, source.wavelengths_nm, source.georeference)
        band_range = BandRange(n_bands, labelled=mask_array is not None)
        any_invalid = False
        y = 0
        for cube, mask, valid in source.read_blocks(block_rows):
            rows = _check_block(source, cube, y)
            cube32, valid = _finite_or_masked(source, cube, valid, y, mask_nonfinite, chunks[1])
            if valid is None and valid_array is not None:
                valid = np.ones((rows, width), dtype=np.bool_)
            if mask_array is not None:
                if mask is None:
                    raise FileFormatError(
                        f"mask of {source.name}",
                        expected=f"rows {y}..{y + rows}",
                        found="no mask block",
                        fix="report this as a reader bug",
                    )
                check_mask_shape(mask.shape, rows, width, what=f"mask block of {source.name}")
                check_mask_values(mask, what=f"mask of {source.name}")
                mask = np.asarray(mask, dtype=source.mask_dtype)
            if valid is not None and not bool(valid.all()):
                any_invalid = True
            hasher.update(cube32, mask if mask_array is not None else None, valid)
            band_range.update(cube32, valid, mask if mask_array is not None else None)
            for x0 in range(0, width, chunks[1]):
                # One chunk column at a time: zarr then holds one chunk's buffers, not a block's worth
                # (measured: less memory and faster than one block-wide assignment).
                cube_array[y : y + rows, x0 : x0 + chunks[1]] = cube32[:, x0 : x0 + chunks[1]]
            if mask_array is not None:
                mask_array[y : y + rows] = mask
            if valid_array is not None and valid is not None:
                valid_array[y : y + rows] = valid
            y += rows
            if on_rows is not None:
                on_rows(rows)
            # Drop this block before the source reads the next one: one block in memory at a time.
            del cube, cube32, mask, valid
        if y != height:
            raise FileFormatError(
                f"cube of {source.name}",
                expected=f"{height} rows",
                found=f"{y} rows (the source ended early; truncated file?)",
                fix="re-export or re-copy the source file",
            )
        keep_valid = source.has_valid or any_invalid
        if valid_array is not None and not keep_valid:
            # No pixel was masked: drop the all-True array so the content (and id) equals a plain ingest.
            storage.remove_tree(storage.join(path, VAR_VALID))
        digest = hasher.hexdigest(source.mask_dtype, keep_valid)
        acquisition_id = make_acquisition_id(source.name, digest)
        group.attrs.update(
            {
                ATTR_ACQUISITION_ID: acquisition_id,
                ATTR_CONTENT_SHA256: digest,
                ATTR_ALL_CHUNKS_WRITTEN: True,
                **band_range.attrs(),
            }
        )
    except BaseException as error:
        storage.remove_tree(path)
        full = disk_full(error, f"staging {source.name} in {staging_root}", staging_root)
        if full is not None:
            raise full from error
        raise
    return StagedAcquisition(path=path, acquisition_id=acquisition_id, digest=digest, source_name=source.name)


def _write_template(
    path: StoreLocation, source: AcquisitionSource, chunks: tuple[int, int], *, with_valid: bool
) -> None:
    """Write the group's metadata (and the small wavelength coordinate) without any cube data."""
    height, width, n_bands = source.shape
    data_vars: dict[str, tuple[tuple[str, ...], da.Array]] = {
        VAR_CUBE: (
            (DIM_Y, DIM_X, DIM_BAND),
            da.zeros(source.shape, dtype=np.float32, chunks=(*chunks, n_bands)),
        )
    }
    if source.mask_dtype is not None:
        mask = da.zeros((height, width), dtype=source.mask_dtype, chunks=chunks)
        data_vars[VAR_MASK] = ((DIM_Y, DIM_X), mask)
    if with_valid:
        data_vars[VAR_VALID] = ((DIM_Y, DIM_X), da.zeros((height, width), dtype=np.bool_, chunks=chunks))
    attrs = dict(source.attrs)
    attrs.setdefault(ATTR_SOURCE_DTYPE, str(source.dtype))
    template = xr.Dataset(
        data_vars,
        coords={COORD_WAVELENGTH: (DIM_BAND, source.wavelengths_nm, {"units": WAVELENGTH_UNITS})},
        attrs=attrs,
    )
    template = with_georeference(template, source.georeference)
    encoding = {name: {"compressors": [CHUNK_COMPRESSOR]} for name in (*data_vars, COORD_WAVELENGTH)}
    # compute=False writes metadata and the in-memory coordinate only; the blocks are written by zarr.
    template.to_zarr(
        str(path), mode="w-", compute=False, consolidated=False, zarr_format=3, encoding=encoding
    )


def _check_block(source: AcquisitionSource, cube: np.ndarray, y: int) -> int:
    height, width, n_bands = source.shape
    rows = int(cube.shape[0]) if cube.ndim == 3 else -1
    if cube.ndim != 3 or cube.shape[1:] != (width, n_bands) or rows < 1 or y + rows > height:
        raise FileFormatError(
            f"cube of {source.name}",
            expected=f"blocks of (rows, {width}, {n_bands}) covering {height} rows",
            found=f"a block of shape {cube.shape} at row {y}",
            fix="check that the file is complete and its header matches the data",
        )
    return rows


def _finite_or_masked(
    source: AcquisitionSource,
    cube: np.ndarray,
    valid: np.ndarray | None,
    y: int,
    mask_nonfinite: bool,
    columns: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Cast to float32 and deal with NaN/Inf: raise, or zero them and mark the pixels invalid."""
    cube32 = np.asarray(cube, dtype=np.float32)
    width = cube32.shape[1]
    # Checked by column slabs so the boolean temporary stays small; the full mask only on failure.
    if all(bool(np.isfinite(cube32[:, x0 : x0 + columns]).all()) for x0 in range(0, width, columns)):
        return cube32, valid
    finite = np.isfinite(cube32)
    bad = np.argwhere(~finite)
    first_y, first_x, first_band = (int(v) for v in bad[0])
    if not mask_nonfinite:
        raise NonFiniteError(
            f"cube of {source.name}",
            expected="finite values (after the cast to float32)",
            found=(
                f"{len(bad)} NaN/Inf values in rows {y}..{y + cube32.shape[0] - 1}, the first at "
                f"(y={y + first_y}, x={first_x}, band={first_band})"
            ),
            fix="repair the source, or pass mask_nonfinite=True (CLI --mask-nonfinite; a flow config: "
            "ingest: {mask_nonfinite: true}) to store 0 there "
            "and record the pixels in the 'valid' variable",
        )
    if not cube32.flags.writeable or np.shares_memory(cube32, cube):
        cube32 = cube32.copy()
    cube32[~finite] = 0.0
    pixel_ok = finite.all(axis=-1)
    valid = pixel_ok if valid is None else (np.asarray(valid, dtype=np.bool_) & pixel_ok)
    return cube32, valid
