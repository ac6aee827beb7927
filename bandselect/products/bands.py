"""The k-band product: each acquisition reduced to the selected bands, as a zarr store.

Layout: ``<output>`` is a zarr v3 group whose attributes carry :data:`BANDS_FORMAT_KEY`; each exported
acquisition is a child group named by its source acquisition id, holding

- ``cube`` ``(y, x, band)`` float32: the selected bands' raw values, in increasing wavelength (the order of
  the sensor, as scikit-learn's ``SelectorMixin.transform`` keeps columns), chunked like the campaign;
- coordinates ``wavelength`` (nm) and ``source_band`` (the band's index in the campaign's grid) on
  ``band``, and ``spatial_ref`` when the acquisition is georeferenced;
- the acquisition's ``mask`` and ``valid`` when it has them (labels and invalid pixels travel with the
  pixels they describe, for a downstream model);
- the provenance attributes of every product (source acquisition, selection, config hash, export time),
  plus the pick order and output order of the bands.

Publishing is atomic and idempotent exactly as for the composites (:func:`bandselect.export.publish_group`):
an acquisition already published with the same config hash is skipped without reading its cube.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from bandselect.export import (
    ExportResult,
    carry_pixel_variables,
    open_product,
    open_product_store,
    product_provenance,
    publish_group,
    selected_cube_bands,
    write_product_group,
)
from bandselect.names import (
    COORD_WAVELENGTH,
    DIM_BAND,
    DIM_X,
    DIM_Y,
    VAR_CUBE,
    VAR_MASK,
    VAR_VALID,
    WAVELENGTH_UNITS,
)
from bandselect.selection import BandSelection
from bandselect.storage import StoreLocation
from bandselect.store.campaign import Campaign
from bandselect.store.layout import validate_acquisition_id

__all__ = [
    "ATTR_OUTPUT_INDICES",
    "BANDS_FORMAT_KEY",
    "COORD_SOURCE_BAND",
    "bands_config_hash",
    "export_bands",
    "open_bands",
    "read_bands",
    "stored_band_indices",
]

BANDS_FORMAT_KEY = "bandselect_bands"
BANDS_FORMAT_VERSION = 1
COORD_SOURCE_BAND = "source_band"
ATTR_OUTPUT_INDICES = "output_band_indices"  # the selection's output order (its channels), for reference
ATTR_BAND_ORDER = "band_order"
_BAND_ORDER = "increasing wavelength (the sensor's order)"
_ZARR_JSON = "zarr.json"


def bands_config_hash(selection: BandSelection) -> str:
    """Digest (16 hex digits) of what determines a k-band product: the selection and the product format."""
    text = json.dumps(
        {"product": "bands", "format": BANDS_FORMAT_VERSION, "selection": selection.digest}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stored_band_indices(selection: BandSelection) -> list[int]:
    """The selected bands in the order the product stores them: increasing wavelength."""
    return [int(i) for i in np.flatnonzero(selection.support)]


def open_bands(path: str | os.PathLike[str], create: bool = True) -> StoreLocation:
    """Open (or create) a k-band store; return its path.

    Raises
    ------
    StoreError
        The path exists and is not a k-band store.
    """
    return open_product_store(path, BANDS_FORMAT_KEY, BANDS_FORMAT_VERSION, "k-band store", create=create)


def export_bands(
    campaign: Campaign,
    acquisition_id: str,
    output: str | os.PathLike[str],
    selection: BandSelection,
    *,
    attrs: Mapping[str, Any] | None = None,
) -> ExportResult:
    """Export the selected bands of one acquisition atomically; skip it when already published.

    Parameters
    ----------
    campaign
        The campaign store holding ``acquisition_id`` (read only).
    acquisition_id
        The acquisition to export.
    output
        The k-band store (created when missing).
    selection
        The bands to keep (any number ≥ 1).
    attrs
        Extra provenance attributes (campaign name, flow run id, ...).

    Raises
    ------
    StoreError
        The output is not a k-band store, or publishing failed (the previous product is kept).
    WavelengthError
        The acquisition's wavelength grid differs from the selection's.
    """
    started = time.perf_counter()
    validate_acquisition_id(acquisition_id)
    config_hash = bands_config_hash(selection)
    store = open_bands(output)

    def write(staged_path: StoreLocation) -> None:
        dataset = campaign.open(acquisition_id)
        campaign.check_wavelengths(
            np.asarray(selection.sensor_wavelengths_nm), f"wavelengths of {acquisition_id}"
        )
        _write_bands(dataset, staged_path, acquisition_id, selection, config_hash, campaign, attrs)

    status = publish_group(store, acquisition_id, config_hash, write, what="k-band cube")
    return ExportResult(
        acquisition_id, status, config_hash, None, time.perf_counter() - started, product="bands"
    )


def _write_bands(
    dataset: xr.Dataset,
    path: StoreLocation,
    acquisition_id: str,
    selection: BandSelection,
    config_hash: str,
    campaign: Campaign,
    attrs: Mapping[str, Any] | None,
) -> None:
    kept = stored_band_indices(selection)
    bands, chunks = selected_cube_bands(dataset, kept)
    grid = np.asarray(selection.sensor_wavelengths_nm, dtype=np.float64)
    data_vars: dict[str, Any] = {VAR_CUBE: ((DIM_Y, DIM_X, DIM_BAND), bands.astype(np.float32))}
    encoding: dict[str, dict[str, Any]] = {}
    if chunks:
        encoding[VAR_CUBE] = {"chunks": (*chunks, len(kept))}
    provenance = product_provenance(
        acquisition_id,
        campaign,
        selection,
        config_hash,
        attrs,
        {ATTR_OUTPUT_INDICES: list(selection.output_indices), ATTR_BAND_ORDER: _BAND_ORDER},
    )
    product = xr.Dataset(
        data_vars,
        coords={
            COORD_WAVELENGTH: (DIM_BAND, grid[kept], {"units": WAVELENGTH_UNITS}),
            COORD_SOURCE_BAND: (DIM_BAND, np.asarray(kept, dtype=np.int64)),
        },
        attrs=provenance,
    )
    carry_pixel_variables(product, encoding, dataset, (VAR_MASK, VAR_VALID), chunks)
    write_product_group(product, dataset, path, encoding)


def read_bands(output: str | os.PathLike[str], acquisition_id: str) -> xr.Dataset:
    """Open one published k-band product lazily (``spatial_ref`` as a coordinate when georeferenced).

    Raises
    ------
    ConfigError
        No product of that acquisition is published.
    """
    product = open_product(output, acquisition_id, "k-band product")
    # The band coordinates are tiny and used everywhere: loaded instead of left as Dask arrays.
    return product.assign_coords(
        {name: product[name].load() for name in (COORD_WAVELENGTH, COORD_SOURCE_BAND)}
    )
