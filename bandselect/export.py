"""Export RGB composites of a campaign: a zarr store of ``(y, x, rgb)`` groups plus PNG previews.

This module also holds the publishing machinery every product store shares (:func:`open_product_store`,
:func:`publish_group`, :func:`published_config_hash`): the k-band cubes and GeoTIFFs of
:mod:`bandselect.products` use it as the composites do.

Layout: ``<output>`` is a zarr v3 group whose attributes carry :data:`COMPOSITES_FORMAT_KEY`; each
exported acquisition is a child group named by its source acquisition id, holding ``composite``
``(y, x, rgb)`` float32 (the three selected bands' raw values, channels R, G, B along ``rgb``) with
coordinates ``band`` (source band index of each channel) and ``wavelength`` (nm) on ``rgb``, and
provenance attributes:
source acquisition id, selected band indices and wavelengths, selector, config hash, export time.
A georeferenced acquisition's composite carries its ``spatial_ref`` coordinate (same CRS and transform).

Publishing reuses the campaign store's machinery (:meth:`bandselect.store.Campaign.publish`): a group is
written completely under ``<output>/.staging/<host>-<pid>-<random>`` and made visible by one atomic
rename (on an object store such as ``s3://bucket/composites.zarr``: server-side copies with the group's
``zarr.json`` written last, see :mod:`bandselect.storage`), so a reader (or a crash) never sees half a
composite. Re-exporting an acquisition with another
config hash first moves the old group into the staging area (one rename), then publishes the new one: a
crash between the two leaves the acquisition *absent*, never mixed, and the next export writes it.
Staging leftovers of dead processes are removed by the next export.

Idempotency is the real guarantee of "finished work is not redone": an acquisition already published
with the same config hash is skipped without reading its cube.

This module imports neither Prefect nor MLflow.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr
import zarr

from bandselect import storage
from bandselect.errors import ConfigError, StoreError
from bandselect.names import (
    COORD_WAVELENGTH,
    DIM_BAND,
    DIM_RGB,
    DIM_X,
    DIM_Y,
    VAR_COMPOSITE,
    VAR_CUBE,
    VAR_VALID,
    WAVELENGTH_UNITS,
)
from bandselect.render import mask_invalid, save_png, to_uint8_image
from bandselect.selection import BandSelection
from bandselect.storage import StoreLocation
from bandselect.store.campaign import STAGING_DIR, Campaign
from bandselect.store.georef import georeference_of, with_georeference
from bandselect.store.layout import validate_acquisition_id
from bandselect.store.writer import StagedAcquisition, staging_name

__all__ = [
    "ATTR_CONFIG_HASH",
    "ATTR_EXPORTED_AT",
    "ATTR_SELECTED_INDICES",
    "ATTR_SELECTED_WAVELENGTHS",
    "ATTR_SELECTOR",
    "ATTR_SOURCE_ACQUISITION",
    "COMPOSITES_FORMAT_KEY",
    "VAR_COMPOSITE",
    "ExportResult",
    "ExportStatus",
    "composite_config_hash",
    "export_composite",
    "open_composites",
    "open_product",
    "open_product_store",
    "product_provenance",
    "publish_group",
    "published_config_hash",
    "published_ids",
    "read_composite",
    "selected_cube_bands",
    "status_counts",
    "write_product_group",
]

COMPOSITES_FORMAT_KEY = "bandselect_composites"
COMPOSITES_FORMAT_VERSION = 1
ATTR_SOURCE_ACQUISITION = "source_acquisition_id"
ATTR_SELECTED_INDICES = "selected_band_indices"
ATTR_SELECTED_WAVELENGTHS = "selected_wavelengths_nm"
ATTR_RGB_INDICES = "rgb_band_indices"
ATTR_RGB_WAVELENGTHS = "rgb_wavelengths_nm"
ATTR_SELECTOR = "selector"
ATTR_SELECTION = "selection"  # the whole BandSelection (BandSelection.to_dict())
ATTR_CONFIG_HASH = "config_hash"
ATTR_EXPORTED_AT = "exported_at"
ATTR_CAMPAIGN_STORE = "campaign_store"
ATTR_CHANNELS = "channels"
RGB_CHANNELS = ("R", "G", "B")
#: Longest side of a PNG preview in pixels (larger composites are subsampled by a whole stride).
PREVIEW_MAX_SIDE = 1024
_ZARR_JSON = "zarr.json"


ExportStatus = Literal["published", "replaced", "skipped"]


@dataclass(frozen=True)
class ExportResult:
    """Outcome of one acquisition's export of one product.

    ``status`` is ``"published"`` (new), ``"replaced"`` (published before under another config hash) or
    ``"skipped"`` (already published with this config hash; nothing read or written). ``product`` names
    what was exported (``"composite"``, ``"bands"``, ``"composite-geotiff"``, ``"bands-geotiff"``) and
    ``path`` where it is (``None``: the group of that id in the product store).
    """

    acquisition_id: str
    status: ExportStatus
    config_hash: str
    preview: str | None
    seconds: float
    product: str = "composite"
    path: str | None = None


def composite_config_hash(selection: BandSelection) -> str:
    """Digest (16 hex digits) of what determines a composite: the selection and the composite format."""
    text = json.dumps({"format": COMPOSITES_FORMAT_VERSION, "selection": selection.digest}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def open_composites(path: str | os.PathLike[str], create: bool = True) -> StoreLocation:
    """Open (or create) a composites store; return its location (a path, or an object-store URL).

    Raises
    ------
    StoreError
        The path exists and is not a composites store (e.g. a campaign store or another folder).
    """
    return open_product_store(
        path, COMPOSITES_FORMAT_KEY, COMPOSITES_FORMAT_VERSION, "composites store", create=create
    )


def open_product_store(
    path: str | os.PathLike[str], format_key: str, version: int, label: str, *, create: bool = True
) -> StoreLocation:
    """Open (or create) a product store: a zarr group whose attributes carry ``format_key: version``.

    Raises
    ------
    StoreError
        The path exists and is not that kind of store (another product, a campaign store, a folder).
    """
    store = storage.location(path)
    try:
        content: bytes | None = storage.read_bytes(storage.join(store, _ZARR_JSON))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        content = None
    except storage.connection_errors() as error:  # no permission, no endpoint, no credentials
        if isinstance(store, Path):
            raise  # a local OSError as it is (the flows make a full disk a ResourceError)
        raise storage.unreachable(f"{label} {store}", error, writable=True) from error
    if content is not None:
        try:
            attributes = json.loads(content.decode("utf-8")).get("attributes", {})
        except (UnicodeDecodeError, ValueError) as error:
            raise _not_a_product_store(
                store, label, format_key, f"an unreadable {_ZARR_JSON} ({error})"
            ) from error
        if attributes.get(format_key) != version:
            found = f"a zarr group without {format_key}={version}"
            raise _not_a_product_store(store, label, format_key, found)
        return store
    if isinstance(store, Path):
        if store.exists() and (not store.is_dir() or any(store.iterdir())):
            found = "a non-empty folder that is not a zarr group"
            raise _not_a_product_store(store, label, format_key, found)
    elif storage.exists(store):
        raise _not_a_product_store(store, label, format_key, "a non-empty prefix that is not a zarr group")
    if not create:
        raise StoreError(
            f"{label} {store}",
            expected=f"an existing {label}",
            found="no such path",
            fix="export first (bandselect run CONFIG.yaml) or check the path",
        )
    if isinstance(store, Path):
        store.mkdir(parents=True, exist_ok=True)
    try:
        zarr.open_group(str(store), mode="w-", zarr_format=3, attributes={format_key: version})
    except FileExistsError:  # another process created it first
        pass
    except storage.connection_errors() as error:  # no such bucket, no permission
        if isinstance(store, Path):
            raise  # a local OSError as it is (the flows make a full disk a ResourceError)
        raise storage.unreachable(f"{label} {store}", error, writable=True) from error
    return store


def preview_folder(path: str | os.PathLike[str]) -> Path:
    """The local folder of the PNG previews (written with the local atomic rename).

    Raises
    ------
    ConfigError
        ``path`` is an object-store URL.
    """
    return storage.local_path(path, "preview folder", "PNG previews are written to local files")


def _not_a_product_store(store: StoreLocation, label: str, format_key: str, found: str) -> StoreError:
    return StoreError(
        f"{label} {store}",
        expected=f"a {label} (a zarr group whose attributes carry {format_key!r})",
        found=found,
        fix="choose a new output path for each product (e.g. composites.zarr, bands.zarr); never point an "
        "output at a campaign store or at another product's store",
    )


def _publisher(store: StoreLocation) -> Campaign:
    # The campaign store's publisher (stage → atomic rename → fsync, idempotent under a concurrent
    # writer, stale-staging cleanup) only needs the directory; the composites store is not a campaign.
    return Campaign(store)


def published_ids(output: str | os.PathLike[str]) -> list[str]:
    """Sorted ids of the acquisitions with a published composite."""
    store = storage.location(output)
    if isinstance(store, Path) and not store.is_dir():
        return []
    return _publisher(store).ids()


def published_config_hash(output: str | os.PathLike[str], acquisition_id: str) -> str | None:
    """Config hash of the published composite of ``acquisition_id``; ``None`` when not published."""
    validate_acquisition_id(acquisition_id)
    marker = storage.join(output, acquisition_id, _ZARR_JSON)
    try:
        metadata = json.loads(storage.read_bytes(marker).decode("utf-8"))
    except FileNotFoundError:
        return None
    value = metadata.get("attributes", {}).get(ATTR_CONFIG_HASH)
    return None if value is None else str(value)


def export_composite(
    campaign: Campaign,
    acquisition_id: str,
    output: str | os.PathLike[str],
    selection: BandSelection,
    *,
    preview_dir: str | os.PathLike[str] | None = None,
    percentiles: Sequence[float] = (1.0, 99.0),
    attrs: Mapping[str, Any] | None = None,
) -> ExportResult:
    """Export the RGB composite of one acquisition atomically; skip it when already published.

    Parameters
    ----------
    campaign
        The campaign store holding ``acquisition_id`` (opened read-only: only its cube is read).
    acquisition_id
        The acquisition to export.
    output
        The composites store (created when missing).
    selection
        The bands to export: the composite shows ``selection.rgb_indices`` as R, G, B.
    preview_dir
        Folder of PNG previews (``<id>.png``, stretched per channel); ``None``: no preview.
    percentiles
        Contrast stretch of the previews.
    attrs
        Extra provenance attributes (campaign name, flow run id, ...).

    Returns
    -------
    ExportResult

    Raises
    ------
    StoreError
        The output is not a composites store, or publishing failed (the previous composite is kept).
    WavelengthError
        The acquisition's wavelength grid differs from the selection's.
    ShapeError
        The selection holds fewer than three bands.
    ConfigError
        ``preview_dir`` is an object-store URL (checked before anything is written).
    """
    started = time.perf_counter()
    validate_acquisition_id(acquisition_id)
    selection.rgb_indices  # noqa: B018 - fewer than three bands cannot make a composite: fail before any I/O
    config_hash = composite_config_hash(selection)
    preview = None if preview_dir is None else preview_folder(preview_dir) / f"{acquisition_id}.png"
    store = open_composites(output)

    def write(staged_path: StoreLocation) -> None:
        dataset = campaign.open(acquisition_id)
        campaign.check_wavelengths(
            np.asarray(selection.sensor_wavelengths_nm), f"wavelengths of {acquisition_id}"
        )
        _write_composite(dataset, staged_path, acquisition_id, selection, config_hash, campaign, attrs)

    status = publish_group(store, acquisition_id, config_hash, write, what="composite")
    if preview is not None and (status != "skipped" or not preview.is_file()):
        _write_preview(storage.join(store, acquisition_id), preview, percentiles)
    return ExportResult(
        acquisition_id,
        status,
        config_hash,
        None if preview is None else str(preview),
        time.perf_counter() - started,
    )


def publish_group(
    store: StoreLocation,
    acquisition_id: str,
    config_hash: str,
    write: Callable[[StoreLocation], None],
    *,
    what: str,
) -> ExportStatus:
    """Publish one product group atomically: skipped when published with ``config_hash``, else written by
    ``write(staging_path)`` (a complete zarr group) and made visible by one rename.

    A group published under another config hash is first moved into the staging area (one rename), so a
    crash between the two renames leaves the acquisition absent, never mixed.

    Raises
    ------
    StoreError
        Publishing failed, or another writer published another config hash concurrently.
    """
    previous = published_config_hash(store, acquisition_id)
    if previous == config_hash:
        return "skipped"
    publisher = _publisher(store)
    publisher.clean_staging()
    staged_path = storage.join(store, STAGING_DIR, staging_name())
    if isinstance(staged_path, Path):
        staged_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write(staged_path)
    except BaseException:
        storage.remove_tree(staged_path)
        raise
    staged = StagedAcquisition(staged_path, acquisition_id, config_hash, acquisition_id)
    status: ExportStatus = "published"
    if previous is not None:
        publisher.retire(acquisition_id)
        status = "replaced"
    outcome = publisher.publish(staged)
    if not outcome.created and published_config_hash(store, acquisition_id) != config_hash:
        raise StoreError(
            f"publishing the {what} of {acquisition_id} in {store}",
            expected=f"config hash {config_hash}",
            found=f"another writer published {published_config_hash(store, acquisition_id)} concurrently",
            fix="run one export per output at a time (the flows hold a lock on the output)",
        )
    return status


def status_counts(results: Sequence[ExportResult]) -> dict[str, int]:
    """How many exports ended with each status (``published``, ``replaced``, ``skipped``; zeros kept)."""
    counts = {"published": 0, "replaced": 0, "skipped": 0}
    for result in results:
        counts[result.status] += 1
    return counts


def product_provenance(
    acquisition_id: str,
    campaign: Campaign,
    selection: BandSelection,
    config_hash: str,
    attrs: Mapping[str, Any] | None,
    specific: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance attributes of a product group: source, selection, config hash, export time."""
    return {
        ATTR_SOURCE_ACQUISITION: acquisition_id,
        ATTR_CAMPAIGN_STORE: str(
            campaign.path.resolve() if isinstance(campaign.path, Path) else campaign.path
        ),
        ATTR_SELECTED_INDICES: list(selection.indices),
        ATTR_SELECTED_WAVELENGTHS: list(selection.wavelengths_nm),
        **dict(specific or {}),
        ATTR_SELECTOR: selection.selector_type,
        ATTR_SELECTION: selection.to_dict(),
        ATTR_CONFIG_HASH: config_hash,
        ATTR_EXPORTED_AT: datetime.now(UTC).isoformat(timespec="microseconds"),
        **{str(k): _jsonable(v) for k, v in (attrs or {}).items()},
    }


def _write_composite(
    dataset: xr.Dataset,
    path: StoreLocation,
    acquisition_id: str,
    selection: BandSelection,
    config_hash: str,
    campaign: Campaign,
    attrs: Mapping[str, Any] | None,
) -> None:
    rgb = list(selection.rgb_indices)
    bands, chunks = selected_cube_bands(dataset, rgb)
    provenance = product_provenance(
        acquisition_id,
        campaign,
        selection,
        config_hash,
        attrs,
        {
            ATTR_RGB_INDICES: rgb,
            ATTR_RGB_WAVELENGTHS: list(selection.rgb_wavelengths_nm),
            ATTR_CHANNELS: list(RGB_CHANNELS),
        },
    )
    composite = xr.Dataset(
        {VAR_COMPOSITE: ((DIM_Y, DIM_X, DIM_RGB), bands.astype(np.float32))},
        coords={
            DIM_BAND: (DIM_RGB, np.asarray(rgb, dtype=np.int64)),
            COORD_WAVELENGTH: (
                DIM_RGB,
                np.asarray(selection.rgb_wavelengths_nm, dtype=np.float64),
                {"units": WAVELENGTH_UNITS},
            ),
        },
        attrs=provenance,
    )
    encoding: dict[str, dict[str, Any]] = {VAR_COMPOSITE: {"chunks": (*chunks, 3)}} if chunks else {}
    carry_pixel_variables(composite, encoding, dataset, (VAR_VALID,), chunks)  # its no-data pixels
    write_product_group(composite, dataset, path, encoding)


def carry_pixel_variables(
    product: xr.Dataset,
    encoding: dict[str, dict[str, Any]],
    dataset: xr.Dataset,
    names: Sequence[str],
    chunks: tuple[int, int] | None,
) -> None:
    """Add the acquisition's per-pixel variables ``names`` (``mask``, ``valid``) that it has to
    ``product``, in place: their data only (the georeference is the product's own), in its chunks."""
    for name in names:
        if name in dataset.data_vars:
            product[name] = ((DIM_Y, DIM_X), dataset[name].data)
            if chunks:
                encoding[name] = {"chunks": chunks}


def _write_preview(group_path: StoreLocation, preview: Path, percentiles: Sequence[float]) -> None:
    group = zarr.open_group(str(group_path), mode="r")
    valid = group[VAR_VALID] if VAR_VALID in group else None
    image = composite_image(group[VAR_COMPOSITE], valid, PREVIEW_MAX_SIDE)
    save_png(to_uint8_image(image, percentiles), preview)  # no-data pixels transparent


def composite_image(composite: Any, valid: Any, max_side: int) -> np.ndarray:
    """A composite ``(H, W, 3)`` (a zarr array or a DataArray) subsampled to at most ``max_side``
    pixels on its longest side, as float32, NaN where ``valid`` (the same kind, or None) is False: the
    stretch of a preview leaves those pixels out, and they are drawn as no data."""
    stride = max(1, -(-max(int(composite.shape[0]), int(composite.shape[1])) // max_side))
    image = np.asarray(composite[::stride, ::stride, :], dtype=np.float32)
    return image if valid is None else mask_invalid(image, np.asarray(valid[::stride, ::stride]))


def read_composite(output: str | os.PathLike[str], acquisition_id: str) -> xr.Dataset:
    """Open one published composite lazily.

    Raises
    ------
    ConfigError
        No composite of that acquisition is published.
    """
    return open_product(output, acquisition_id, "composite")


def open_product(output: str | os.PathLike[str], acquisition_id: str, what: str) -> xr.Dataset:
    """Open the published product group ``acquisition_id`` of the product store ``output`` lazily.

    Parameters
    ----------
    output
        The product store (local folder or URL).
    acquisition_id
        The acquisition whose product to open.
    what
        The product's name for the error message (``"composite"``, ``"k-band product"``).

    Raises
    ------
    ConfigError
        No product of that acquisition is published (the message says how many are).
    """
    validate_acquisition_id(acquisition_id)
    store = storage.location(output)
    if not storage.has_marker(storage.join(store, acquisition_id)):
        raise ConfigError(
            f"{what} of {acquisition_id}",
            expected=f"a published {what}",
            found=f"none in {store} ({len(published_ids(store))} published)",
            fix="list them with bandselect.export.published_ids(output)",
        )
    return xr.open_zarr(str(store), group=acquisition_id, consolidated=False, decode_coords="all")


def selected_cube_bands(dataset: xr.Dataset, indices: Sequence[int]) -> tuple[Any, tuple[int, int] | None]:
    """The ``indices`` bands of an acquisition's cube, ``(y, x, k)``, lazy, and its spatial chunk shape.

    Reading stays lazy: the store's whole-spectrum chunks are read once each and ``k`` bands kept.
    """
    cube = dataset[VAR_CUBE].transpose(DIM_Y, DIM_X, DIM_BAND)
    bands = cube.isel({DIM_BAND: list(indices)}).data
    chunks = cube.chunks  # None unless Dask-backed
    return bands, None if chunks is None else (int(chunks[0][0]), int(chunks[1][0]))


def write_product_group(
    product: xr.Dataset,
    source: xr.Dataset,
    path: StoreLocation,
    encoding: Mapping[str, Mapping[str, Any]] | None,
) -> None:
    """Write a product group (zarr v3, not consolidated) with the georeference of its ``source``."""
    product = with_georeference(product, georeference_of(source))
    product.to_zarr(str(path), mode="w-", consolidated=False, zarr_format=3, encoding=encoding or None)
