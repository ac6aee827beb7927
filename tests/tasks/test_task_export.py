"""export_composites.fn: every acquisition of the batch published, then skipped when unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bandselect.export import published_ids, read_composite
from bandselect.selection import BandSelection
from bandselect.store import Campaign
from bandselect.tasks import batches, export_composites


def test_export_composites_publishes_then_skips(campaign: Campaign, tmp_path: Path) -> None:
    selection = BandSelection.create([20, 12, 4], campaign.wavelengths, selector_type="Manual")
    output = str(tmp_path / "out.zarr")
    ids = campaign.ids()
    assert batches(ids, 1) == [[ids[0]], [ids[1]]]
    results = export_composites.fn(str(campaign.path), ids, output, selection, str(tmp_path / "png"))
    assert [r.status for r in results] == ["published", "published"] and published_ids(output) == ids
    values = read_composite(output, ids[0])["composite"].values
    np.testing.assert_array_equal(values, campaign.open(ids[0])["cube"].values[..., [20, 12, 4]])
    again = export_composites.fn(str(campaign.path), ids, output, selection)
    assert [r.status for r in again] == ["skipped", "skipped"]
