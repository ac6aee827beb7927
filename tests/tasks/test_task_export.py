"""export_products.fn: every acquisition (and product) of the batch published, then skipped when unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bandselect.export import published_ids, read_composite
from bandselect.products import ProductPlan, read_bands
from bandselect.selection import BandSelection
from bandselect.store import Campaign
from bandselect.tasks import batches, export_products


def test_export_products_publishes_composites_then_skips(campaign: Campaign, tmp_path: Path) -> None:
    selection = BandSelection.create([20, 12, 4], campaign.wavelengths, selector_type="Manual")
    output = str(tmp_path / "out.zarr")
    ids = campaign.ids()
    assert batches(ids, 1) == [[ids[0]], [ids[1]]]
    plan = ProductPlan({"composite": output})
    results = export_products.fn(str(campaign.path), ids, selection, plan, str(tmp_path / "png"))
    assert [r.status for r in results] == ["published", "published"] and published_ids(output) == ids
    values = read_composite(output, ids[0])["composite"].values
    np.testing.assert_array_equal(values, campaign.open(ids[0])["cube"].values[..., [20, 12, 4]])
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == [f"{i}.png" for i in ids]
    again = export_products.fn(str(campaign.path), ids, selection, plan)
    assert [r.status for r in again] == ["skipped", "skipped"]


def test_export_products_writes_every_product_of_the_plan(campaign: Campaign, tmp_path: Path) -> None:
    selection = BandSelection.create([20, 12, 4, 23, 2], campaign.wavelengths, selector_type="Manual")
    plan = ProductPlan(
        {"bands": str(tmp_path / "bands.zarr"), "composite": str(tmp_path / "rgb.zarr")},
        geotiff="tiff",
        geotiff_dir=str(tmp_path / "tif"),
    )
    ids = campaign.ids()
    results = export_products.fn(str(campaign.path), ids, selection, plan)
    assert [(r.acquisition_id, r.product) for r in results] == [
        (i, kind) for i in ids for kind in ("bands", "bands-geotiff", "composite", "composite-geotiff")
    ]
    assert {r.status for r in results} == {"published"}
    bands = read_bands(tmp_path / "bands.zarr", ids[0])["cube"].values
    np.testing.assert_array_equal(bands, campaign.open(ids[0])["cube"].values[..., [2, 4, 12, 20, 23]])
    assert sorted(p.name for p in (tmp_path / "tif" / "bands").iterdir()) == [f"{i}.tif" for i in ids]
    again = export_products.fn(str(campaign.path), ids, selection, plan)
    assert {r.status for r in again} == {"skipped"}
