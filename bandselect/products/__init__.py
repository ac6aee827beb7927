"""Products made from a band selection: RGB composites and k-band cubes, in zarr and as GeoTIFF/COG.

>>> from bandselect.products import ProductPlan, export_products
>>> plan = ProductPlan({"bands": "bands.zarr"}, geotiff="cog", geotiff_dir="geotiff")
>>> results = export_products("campaign.zarr", ids, selection, plan)  # doctest: +SKIP

- :mod:`~bandselect.products.plan`: :class:`ProductPlan` (kinds, stores, GeoTIFF mode), the band-count
  rule of each product (:func:`check_products`) and :func:`planned_band_count` (a pipeline's, before work).
- :mod:`~bandselect.products.bands`: the k-band cube (``(y, x, band)`` with the kept ``wavelength``).
- :mod:`~bandselect.products.geotiff`: one GeoTIFF or COG per acquisition and product.
- :mod:`~bandselect.products.batch`: :func:`export_products`, every product of a plan for a batch.

The composites themselves live in :mod:`bandselect.export`, which also holds the publishing machinery
(stage, atomic rename, config-hash skip) every product store shares.
"""

from __future__ import annotations

from bandselect.products.bands import bands_config_hash, export_bands, open_bands, read_bands
from bandselect.products.batch import export_products, open_product_stores, product_config_hash
from bandselect.products.geotiff import export_geotiff, geotiff_config_hash, published_geotiff_hash
from bandselect.products.plan import (
    MIN_BANDS,
    GeoTiffMode,
    ProductKind,
    ProductPlan,
    check_products,
    planned_band_count,
)

__all__ = [
    "MIN_BANDS",
    "GeoTiffMode",
    "ProductKind",
    "ProductPlan",
    "bands_config_hash",
    "check_products",
    "export_bands",
    "export_geotiff",
    "export_products",
    "geotiff_config_hash",
    "open_bands",
    "open_product_stores",
    "planned_band_count",
    "product_config_hash",
    "published_geotiff_hash",
    "read_bands",
]
