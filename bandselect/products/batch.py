"""Export every product a plan asks for, acquisition by acquisition (the flows' export step)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from bandselect.export import (
    ExportResult,
    composite_config_hash,
    export_composite,
    open_composites,
    preview_folder,
)
from bandselect.names import VAR_COMPOSITE, VAR_CUBE
from bandselect.products.bands import bands_config_hash, export_bands, open_bands
from bandselect.products.geotiff import export_geotiff
from bandselect.products.plan import ProductPlan, check_products
from bandselect.progress import EXPORT_STEP, report
from bandselect.selection import BandSelection
from bandselect.storage import StoreLocation
from bandselect.store.campaign import Campaign, open_campaign

__all__ = ["export_products", "open_product_stores", "product_config_hash", "retire_products"]

_VARIABLE = {"composite": VAR_COMPOSITE, "bands": VAR_CUBE}


def product_config_hash(kind: str, selection: BandSelection) -> str:
    """The config hash a product of ``kind`` gets for ``selection`` (what its groups are tagged with)."""
    return composite_config_hash(selection) if kind == "composite" else bands_config_hash(selection)


def open_product_stores(plan: ProductPlan) -> dict[str, StoreLocation]:
    """Open (or create) the zarr store of every product of ``plan``, failing early on a wrong path.

    Raises
    ------
    StoreError
        A product's path is another kind of store or a non-empty folder.
    """
    opener = {"composite": open_composites, "bands": open_bands}
    return {kind: opener[kind](path) for kind, path in plan.outputs.items()}


def export_products(
    store: str | os.PathLike[str] | Campaign,
    acquisition_ids: Sequence[str],
    selection: BandSelection,
    plan: ProductPlan,
    *,
    preview_dir: str | os.PathLike[str] | None = None,
    percentiles: Sequence[float] = (1.0, 99.0),
    attrs: Mapping[str, Any] | None = None,
) -> list[ExportResult]:
    """Export every product of ``plan`` (and its GeoTIFFs) for each acquisition, atomically and idempotently.

    Parameters
    ----------
    store
        The campaign store (or an open :class:`~bandselect.store.Campaign`).
    acquisition_ids
        The acquisitions to export.
    selection
        The bands: composites show ``selection.rgb_indices``; k-band cubes keep every selected band.
    plan
        Which products, where, and whether GeoTIFFs (``"tiff"``/``"cog"``) are written beside them.
    preview_dir, percentiles
        PNG previews of the composites (``None``: none).
    attrs
        Extra provenance attributes of every product.

    Returns
    -------
    list of ExportResult
        One per acquisition and product, then one per GeoTIFF, in acquisition order.

    Raises
    ------
    ConfigError
        A product needs more bands than the selection has, or ``preview_dir`` is an object-store URL
        (checked before anything is read or written).
    StoreError, WavelengthError
        As :func:`bandselect.export.export_composite`.
    """
    check_products(selection.k, plan.kinds, what=f"the {selection.selector_type} selection")
    if preview_dir is not None:
        preview_folder(preview_dir)  # a URL is refused before the first product is written
    campaign = store if isinstance(store, Campaign) else open_campaign(store)
    results: list[ExportResult] = []
    for done, acquisition_id in enumerate(acquisition_ids, start=1):
        first = len(results)
        for kind, output in plan.outputs.items():
            if kind == "composite":
                results.append(
                    export_composite(
                        campaign,
                        acquisition_id,
                        output,
                        selection,
                        preview_dir=preview_dir,
                        percentiles=percentiles,
                        attrs=attrs,
                    )
                )
            else:
                results.append(export_bands(campaign, acquisition_id, output, selection, attrs=attrs))
            path = plan.geotiff_path(kind, acquisition_id)
            if path is not None:
                mode = "cog" if plan.geotiff == "cog" else "tiff"
                results.append(
                    export_geotiff(output, acquisition_id, _VARIABLE[kind], path, mode=mode, product=kind)
                )
        statuses = ", ".join(f"{r.product} {r.status}" for r in results[first:])
        report(EXPORT_STEP, done, len(acquisition_ids), f"{acquisition_id}: {statuses}")
    return results


def retire_products(
    plan: ProductPlan, acquisition_ids: Sequence[str], previews_dir: str | os.PathLike[str] | None = None
) -> int:
    """Remove every product of ``acquisition_ids``: groups of each product store, GeoTIFFs, PNG previews.

    The flows call it for the acquisitions an archive run *replaced* (a changed source file,
    ``docs/archive.md``): their products show data that is no longer in the campaign. Each group is
    unpublished atomically (:meth:`~bandselect.store.Campaign.retire`).

    Returns
    -------
    int
        How many product groups were removed (GeoTIFFs and previews not counted).

    Raises
    ------
    ConfigError
        ``previews_dir`` is an object-store URL (checked before anything is removed).
    """
    previews = None if previews_dir is None else preview_folder(previews_dir)  # refused before any removal
    removed = 0
    for kind, output in plan.outputs.items():
        publisher = Campaign(output)
        for acquisition_id in acquisition_ids:
            removed += int(publisher.retire(acquisition_id))
            tif = plan.geotiff_path(kind, acquisition_id)
            if tif is not None:
                tif.unlink(missing_ok=True)
    if previews is not None:
        for acquisition_id in acquisition_ids:
            (previews / f"{acquisition_id}.png").unlink(missing_ok=True)
    return removed
