"""One read per statistics job: edges from the ranges recorded at ingest, every chunk read once.

A campaign reader that counts the chunks it hands to Dask proves the reads; the scores of the one-pass job
equal those of the old two-pass job (moments, then histograms on the binning rule's edges of pass 1's
min/max) on the same data.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from bandselect.errors import StoreError
from bandselect.names import ATTR_BAND_MAXIMUM, ATTR_BAND_MINIMUM, VAR_CUBE
from bandselect.stats import compute_histograms, compute_statistics, statistics_of, update_campaign_statistics
from bandselect.stats.binning import data_edges
from bandselect.stats.compute import recorded_ranges
from bandselect.store import make_acquisition, open_campaign

WAVELENGTHS = np.linspace(450.0, 900.0, 6)


class CountingCampaign:
    """A campaign whose acquisitions' cubes count each chunk read, by acquisition."""

    def __init__(self, campaign: Any, drop_ranges: frozenset[str] = frozenset()) -> None:
        self.campaign = campaign
        self.path = campaign.path
        self.reads: Counter[str] = Counter()
        self.drop_ranges = drop_ranges

    def ids(self) -> list[str]:
        return self.campaign.ids()

    def open(self, acquisition_id: str) -> xr.Dataset:
        dataset = self.campaign.open(acquisition_id)
        cube = dataset[VAR_CUBE].data
        reads = self.reads

        def counted(block: np.ndarray) -> np.ndarray:
            reads[acquisition_id] += block.size > 0  # map_blocks also probes an empty meta block
            return block

        dataset[VAR_CUBE] = (dataset[VAR_CUBE].dims, da.map_blocks(counted, cube, dtype=cube.dtype))
        if acquisition_id in self.drop_ranges:  # as a store written before ranges were recorded
            dataset.attrs = {
                k: v for k, v in dataset.attrs.items() if k not in (ATTR_BAND_MINIMUM, ATTR_BAND_MAXIMUM)
            }
        return dataset


def _campaign(tmp_path, n: int = 3, scale: float = 1.0, seed0: int = 0) -> Any:
    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    for seed in range(seed0, seed0 + n):
        rng = np.random.default_rng(seed)
        mask = rng.random((30, 26)) < 0.2
        cube = (scale * rng.normal(size=(30, 26, 6)) + 2.0 * mask[..., None] * (np.arange(6) == 4)).astype(
            np.float32
        )
        campaign.append(make_acquisition(cube, WAVELENGTHS, mask), chunk_yx=(8, 8))
    return campaign


def _chunks_per_acquisition() -> int:
    return 4 * 4  # 30 x 26 in 8 x 8 chunks


def test_one_pass_reads_each_chunk_once_and_scores_like_two_passes(tmp_path) -> None:
    campaign = _campaign(tmp_path)
    counting = CountingCampaign(campaign)
    one = compute_statistics(counting, n_bins=256)
    assert set(counting.reads.values()) == {_chunks_per_acquisition()}  # every chunk exactly once

    # The old job: moments first, then histograms on the rule's edges of pass 1's min/max.
    first = compute_statistics(campaign, n_bins=None)
    edges = data_edges(first.minimum, first.maximum, 256)
    two = first.with_histograms(edges, *compute_histograms(campaign, edges))
    np.testing.assert_array_equal(one.hist_edges, two.hist_edges)
    np.testing.assert_array_equal(one.histograms, two.histograms)
    for name in ("fisher", "auc", "mi"):
        np.testing.assert_allclose(getattr(one, name), getattr(two, name), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(one.correlation, two.correlation, rtol=0, atol=1e-12)
    # ... and what fit() computes from the same pixels in memory.
    cubes = [campaign.open(i) for i in campaign.ids()]
    memory = statistics_of(
        np.concatenate([d["cube"].values.reshape(-1, 6) for d in cubes]),
        np.concatenate([d["mask"].values.reshape(-1) for d in cubes]),
        n_bins=256,
    )
    np.testing.assert_array_equal(one.histograms, memory.histograms)
    np.testing.assert_allclose(one.auc, memory.auc, rtol=1e-12)
    np.testing.assert_allclose(one.correlation, memory.correlation, rtol=0, atol=1e-12)


def test_contrast_terms_share_the_moments_reads(tmp_path) -> None:
    # The halo blocks of the contrast terms read the same chunks as the moments: one read each, not two
    # (each graph optimised on its own read every interior chunk again under keys of its own).
    campaign = _campaign(tmp_path)
    counting = CountingCampaign(campaign)
    one = compute_statistics(counting, n_bins=64, contrast=True)
    assert set(counting.reads.values()) == {_chunks_per_acquisition()}
    cubes = [campaign.open(i) for i in campaign.ids()]
    memory = statistics_of(
        np.stack([d["cube"].values for d in cubes]), np.stack([d["mask"].values for d in cubes]),
        n_bins=64, contrast=True,
    )  # fmt: skip
    np.testing.assert_allclose(one.laplacian_abs_sum, memory.laplacian_abs_sum, rtol=1e-12)


def test_acquisitions_without_recorded_ranges_cost_a_range_pass_of_their_own(tmp_path) -> None:
    campaign = _campaign(tmp_path)
    legacy = frozenset(campaign.ids()[:1])
    counting = CountingCampaign(campaign, drop_ranges=legacy)
    stats = compute_statistics(counting, n_bins=64)
    per_chunk = _chunks_per_acquisition()
    assert counting.reads == {i: (2 if i in legacy else 1) * per_chunk for i in campaign.ids()}
    np.testing.assert_array_equal(stats.histograms, compute_statistics(campaign, n_bins=64).histograms)
    scanned = CountingCampaign(campaign)
    compute_statistics(scanned, n_bins=64, use_recorded_ranges=False)  # asked for: two reads of everything
    assert set(scanned.reads.values()) == {2 * per_chunk}


def test_recorded_ranges_merge_and_disagreeing_ranges_are_refused(tmp_path) -> None:
    campaign = _campaign(tmp_path, n=2)
    datasets = [campaign.open(i) for i in campaign.ids()]
    (low, high), missing = recorded_ranges(datasets)
    values = np.concatenate([d["cube"].values.reshape(-1, 6) for d in datasets])
    assert missing == []
    np.testing.assert_array_equal(low, values.min(0))
    np.testing.assert_array_equal(high, values.max(0))
    # A range that does not describe the pixels (here: too wide) would give other edges than fit():
    # the pixels are binned on their own range (a second read), as fit() bins them.
    tampered = datasets[0].copy()
    tampered.attrs[ATTR_BAND_MAXIMUM] = (high + 1.0).tolist()
    own = statistics_of(tampered["cube"].values, tampered["mask"].values, n_bins=32)
    np.testing.assert_array_equal(compute_statistics(tampered, n_bins=32).hist_edges, own.hist_edges)
    # A subsample cannot fall outside its acquisition's recorded range: there the store is wrong.
    tampered.attrs[ATTR_BAND_MAXIMUM] = (high - 0.5).tolist()
    with pytest.raises(StoreError, match="recorded band ranges"):
        compute_statistics(tampered, n_bins=32, max_pixels=300)
    tampered.attrs[ATTR_BAND_MAXIMUM] = [*high[:5].tolist(), float("inf")]
    with pytest.raises(StoreError, match="6 finite minima"):
        recorded_ranges([tampered])
    tampered.attrs[ATTR_BAND_MINIMUM] = [1.0]
    with pytest.raises(StoreError, match="6 finite minima"):
        recorded_ranges([tampered])


def test_a_part_of_an_acquisition_is_binned_on_its_own_range(tmp_path) -> None:
    # ds.isel keeps the attributes, so the recorded range is the whole acquisition's: the part's scores
    # must still equal fit()'s on the same pixels, with or without a pixel budget above its size.
    campaign = _campaign(tmp_path, n=1, scale=1.0)
    part = campaign.open(campaign.ids()[0]).isel(y=slice(0, 8))
    memory = statistics_of(part["cube"].values, part["mask"].values, n_bins=64)
    for budget in (None, 10**9):
        stats = compute_statistics(part, n_bins=64, max_pixels=budget)
        np.testing.assert_array_equal(stats.hist_edges, memory.hist_edges)
        np.testing.assert_array_equal(stats.histograms, memory.histograms)
        np.testing.assert_allclose(stats.auc, memory.auc, rtol=1e-12)
        np.testing.assert_allclose(stats.mi, memory.mi, rtol=1e-12, atol=1e-15)


def test_incremental_update_reads_each_new_chunk_once_even_when_edges_move(tmp_path) -> None:
    campaign = _campaign(tmp_path, n=2)
    update_campaign_statistics(campaign, n_bins=128)
    stored = set(campaign.ids())
    wider = _campaign(tmp_path, n=1, scale=6.0, seed0=10)  # same store, a much wider range
    (new,) = set(wider.ids()) - stored
    counting = CountingCampaign(wider)
    result = update_campaign_statistics(counting, n_bins=128)
    assert result.histograms_rebuilt and result.computed_ids == (new,)
    per_chunk = _chunks_per_acquisition()
    # The new acquisition once (moments and histograms), the stored ones once (histograms on the new
    # edges) - in the same compute.
    assert counting.reads == {i: per_chunk for i in wider.ids()}
    full = compute_statistics(wider, n_bins=128)
    np.testing.assert_array_equal(result.stats.hist_edges, full.hist_edges)
    np.testing.assert_array_equal(result.stats.histograms, full.histograms)
    np.testing.assert_allclose(result.stats.auc, full.auc, rtol=1e-12)
    np.testing.assert_allclose(result.stats.class_comoments, full.class_comoments, rtol=1e-10)
