"""One read per statistics job: edges from the ranges recorded at ingest, every chunk read once.

A campaign reader that counts the chunks it hands to Dask proves the reads; the scores of the one-pass job
equal those of the old two-pass job (moments, then histograms on the binning rule's edges of pass 1's
min/max) on the same data.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from bandselect import storage
from bandselect.errors import StoreError
from bandselect.names import (
    ATTR_BAND_MAXIMUM,
    ATTR_BAND_MINIMUM,
    ATTR_CLASS_BAND_MAXIMUM,
    ATTR_CLASS_BAND_MINIMUM,
    ATTR_CLASS_LABELS,
    CLASS_RANGE_ATTRS,
    VAR_CUBE,
)
from bandselect.stats import (
    compute_histograms,
    compute_statistics,
    load_campaign_statistics,
    statistics_of,
    statistics_without,
    update_campaign_statistics,
)
from bandselect.stats.binning import data_edges
from bandselect.stats.compute import recorded_ranges
from bandselect.stats.graph import recorded_kept_ranges
from bandselect.stats.incremental import statistics_dir
from bandselect.store import make_acquisition, open_campaign
from bandselect.store import writer as store_writer

WAVELENGTHS = np.linspace(450.0, 900.0, 6)


class CountingCampaign:
    """A campaign whose acquisitions' cubes count each chunk read, by acquisition."""

    def __init__(
        self,
        campaign: Any,
        drop_ranges: frozenset[str] = frozenset(),
        drop_class_ranges: frozenset[str] = frozenset(),
    ) -> None:
        self.campaign = campaign
        self.path = campaign.path
        self.reads: Counter[str] = Counter()
        self.drop_ranges = drop_ranges
        self.drop_class_ranges = drop_class_ranges

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
        if acquisition_id in self.drop_class_ranges:  # as a store written before class ranges were
            dataset.attrs = {k: v for k, v in dataset.attrs.items() if k not in CLASS_RANGE_ATTRS}
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


# ---------------------------------------------------------------- ignore_label: one read as well


def _labelled_campaign(tmp_path, n: int = 3, seed0: int = 0, spread: float = 1.0) -> Any:
    """Acquisitions with an unlabelled background (label 0) far from the labelled classes 1 and 2 (the
    kept pixels' edges are not the whole campaign's), class 1 well inside class 2's range."""
    campaign = open_campaign(tmp_path / "labelled.zarr", create=True)
    for seed in range(seed0, seed0 + n):
        rng = np.random.default_rng(seed)
        mask = rng.integers(0, 3, (30, 26)).astype(np.uint8)
        cube = spread * rng.normal(size=(30, 26, 6)) + 2.0 * (mask == 2)[..., None] * (np.arange(6) == 4)
        cube[mask == 0] += 25.0
        # Class 1 inside class 2's range on every band: leaving out label 1 keeps the edges.
        inner = mask == 1
        cube[inner] = 0.3 * cube[inner] + 2.0 * (np.arange(6) == 4)
        campaign.append(make_acquisition(cube.astype(np.float32), WAVELENGTHS, mask), chunk_yx=(8, 8))
    return campaign


def _kept_in_memory(campaign: Any, n_bins: int, contrast: bool = False) -> Any:
    """What fit() computes from the campaign's pixels without label 0 (the binning rule on their range)."""
    datasets = [campaign.open(i) for i in campaign.ids()]
    cube = np.stack([d["cube"].values for d in datasets])
    mask = np.stack([d["mask"].values for d in datasets])
    return statistics_of(cube, mask, valid=mask != 0, n_bins=n_bins, contrast=contrast)


def _own_pass(campaign: Any, contrast: bool = False) -> Any:
    """statistics_without's result from its own pass over the store (the derived results dropped)."""
    directory = statistics_dir(campaign)
    for folder in storage.child_names(directory):
        if folder.endswith(".derived"):
            storage.remove_tree(storage.join(directory, folder))
    return statistics_without(campaign, load_campaign_statistics(campaign), 0, contrast=contrast)


def _assert_same_statistics(got: Any, expected: Any) -> None:
    """Every field equal: counts, edges and histograms exactly, sums to rounding."""
    for field in dataclasses.fields(got):
        a, b = getattr(got, field.name), getattr(expected, field.name)
        if a is None or b is None:
            assert a is None and b is None, field.name
        elif np.asarray(a).dtype.kind == "f" and field.name != "hist_edges":
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-9, err_msg=field.name)
        else:
            np.testing.assert_array_equal(a, b, err_msg=field.name)


def _assert_same_kept(kept: Any, expected: Any) -> None:
    assert kept.count == expected.count and 0 not in kept.classes.tolist()
    np.testing.assert_array_equal(kept.hist_edges, expected.hist_edges)
    present = np.isin(expected.classes, kept.classes)
    np.testing.assert_array_equal(kept.histograms, expected.histograms[present])
    np.testing.assert_allclose(kept.one_vs_rest(2).auc, expected.one_vs_rest(2).auc, rtol=1e-12)
    np.testing.assert_allclose(kept.one_vs_rest(2).mi, expected.one_vs_rest(2).mi, rtol=1e-12, atol=1e-15)


def test_ingest_records_each_labels_range(tmp_path, monkeypatch) -> None:
    campaign = _labelled_campaign(tmp_path, n=1)
    dataset = campaign.open(campaign.ids()[0])
    cube, mask = dataset["cube"].values, dataset["mask"].values
    assert dataset.attrs[ATTR_CLASS_LABELS] == [0, 1, 2]
    for row, label in enumerate((0, 1, 2)):
        np.testing.assert_array_equal(dataset.attrs[ATTR_CLASS_BAND_MINIMUM][row], cube[mask == label].min(0))
        np.testing.assert_array_equal(dataset.attrs[ATTR_CLASS_BAND_MAXIMUM][row], cube[mask == label].max(0))
    np.testing.assert_array_equal(dataset.attrs[ATTR_BAND_MINIMUM], cube.reshape(-1, 6).min(0))
    (low, high), seen, missing = recorded_kept_ranges([dataset], 0)
    np.testing.assert_array_equal(low, cube[mask != 0].min(0))
    np.testing.assert_array_equal(high, cube[mask != 0].max(0))
    assert seen and missing == []
    # No mask: one class (0), no class attributes; more labels than recorded: none recorded either.
    unlabelled = open_campaign(tmp_path / "plain.zarr", create=True)
    unlabelled.append(make_acquisition(cube, WAVELENGTHS), chunk_yx=(8, 8))
    plain = unlabelled.open(unlabelled.ids()[0])
    assert ATTR_CLASS_LABELS not in plain.attrs
    assert recorded_kept_ranges([plain], 0)[:2] == (None, True)
    monkeypatch.setattr(store_writer, "MAX_RECORDED_CLASSES", 2)
    many = open_campaign(tmp_path / "many.zarr", create=True)
    many.append(make_acquisition(cube, WAVELENGTHS, mask), chunk_yx=(8, 8))
    crowded = many.open(many.ids()[0])
    assert ATTR_CLASS_LABELS not in crowded.attrs and crowded.attrs[ATTR_BAND_MINIMUM]
    assert recorded_kept_ranges([crowded], 0)[2] == [0]


@pytest.mark.parametrize("contrast", [False, True])
def test_an_ignore_label_job_reads_each_chunk_once_and_bins_the_kept_pixels_like_fit(
    tmp_path, contrast: bool
) -> None:
    campaign = _labelled_campaign(tmp_path)
    counting = CountingCampaign(campaign)
    update_campaign_statistics(counting, n_bins=64, contrast=contrast, ignore_label=0)
    assert counting.reads == {i: _chunks_per_acquisition() for i in campaign.ids()}
    after = CountingCampaign(campaign)
    kept = statistics_without(after, load_campaign_statistics(campaign), 0, contrast=contrast)
    assert not +after.reads  # the job's read made it: kept beside the statistics
    expected = _kept_in_memory(campaign, 64, contrast)
    _assert_same_kept(kept, expected)
    assert not np.array_equal(kept.hist_edges, load_campaign_statistics(campaign).stats.hist_edges)
    if contrast:
        np.testing.assert_allclose(kept.laplacian_abs_sum, expected.laplacian_abs_sum, rtol=1e-12)
        assert kept.laplacian_count == expected.laplacian_count
    else:
        assert kept.laplacian_abs_sum is None
    _assert_same_statistics(kept, _own_pass(campaign, contrast))  # what the second read gave before


def test_an_ignore_label_update_reads_only_the_new_acquisition_while_the_edges_hold(tmp_path) -> None:
    campaign = _labelled_campaign(tmp_path, n=2)
    update_campaign_statistics(campaign, n_bins=64, ignore_label=0)
    stored = set(campaign.ids())
    grown = _labelled_campaign(tmp_path, n=1, seed0=10, spread=0.5)  # inside the snapped ranges
    (new,) = set(grown.ids()) - stored
    counting = CountingCampaign(grown)
    result = update_campaign_statistics(counting, n_bins=64, ignore_label=0)
    assert not result.histograms_rebuilt
    assert +counting.reads == {new: _chunks_per_acquisition()}  # (+: acquisitions opened, not read, drop out)
    after = CountingCampaign(grown)
    _assert_same_kept(
        statistics_without(after, load_campaign_statistics(grown), 0), _kept_in_memory(grown, 64)
    )
    assert not +after.reads


def test_an_ignore_label_update_rebins_the_stored_acquisitions_in_the_same_read(tmp_path) -> None:
    campaign = _labelled_campaign(tmp_path, n=2)
    update_campaign_statistics(campaign, n_bins=64, ignore_label=0)
    wider = _labelled_campaign(tmp_path, n=1, seed0=10, spread=4.0)  # the kept range grows
    counting = CountingCampaign(wider)
    result = update_campaign_statistics(counting, n_bins=64, ignore_label=0)
    assert result.histograms_rebuilt
    assert counting.reads == {i: _chunks_per_acquisition() for i in wider.ids()}  # each chunk once
    after = CountingCampaign(wider)
    _assert_same_kept(
        statistics_without(after, load_campaign_statistics(wider), 0), _kept_in_memory(wider, 64)
    )
    assert not +after.reads


def test_acquisitions_without_class_ranges_leave_the_kept_pixels_to_a_pass_of_their_own(tmp_path) -> None:
    campaign = _labelled_campaign(tmp_path)
    legacy = frozenset(campaign.ids()[:1])
    counting = CountingCampaign(campaign, drop_class_ranges=legacy)
    update_campaign_statistics(counting, n_bins=64, ignore_label=0)
    assert set(counting.reads.values()) == {_chunks_per_acquisition()}  # the statistics: one read
    kept = statistics_without(counting, load_campaign_statistics(campaign), 0)
    assert set(counting.reads.values()) == {2 * _chunks_per_acquisition()}  # the kept pixels: a second
    _assert_same_kept(kept, _kept_in_memory(campaign, 64))


def test_damaged_class_ranges_are_refused_and_wrong_ones_binned_on_the_pixels(tmp_path, caplog) -> None:
    campaign = _labelled_campaign(tmp_path, n=1)
    dataset = campaign.open(campaign.ids()[0])
    tampered = dataset.copy()
    tampered.attrs[ATTR_CLASS_BAND_MINIMUM] = dataset.attrs[ATTR_CLASS_BAND_MINIMUM][:2]
    with pytest.raises(StoreError, match="3 rows of 6 minima"):
        recorded_kept_ranges([tampered], 0)
    tampered.attrs[ATTR_CLASS_BAND_MINIMUM] = [[float("nan")] * 6] * 3
    with pytest.raises(StoreError, match="finite minima"):
        recorded_kept_ranges([tampered], 0)

    class Widened(CountingCampaign):
        def open(self, acquisition_id: str) -> xr.Dataset:
            out = super().open(acquisition_id)
            out.attrs[ATTR_CLASS_BAND_MAXIMUM] = [
                [v + 1.0 for v in row] for row in out.attrs[ATTR_CLASS_BAND_MAXIMUM]
            ]
            return out

    widened = Widened(campaign)
    with caplog.at_level("WARNING"):
        update_campaign_statistics(widened, n_bins=64, ignore_label=0)
    assert "do not describe the pixels without label 0" in caplog.text
    # Nothing kept from the wrong edges: the kept pixels are binned on their own range when asked for.
    _assert_same_kept(
        statistics_without(widened, load_campaign_statistics(campaign), 0), _kept_in_memory(campaign, 64)
    )

    class Damaged(CountingCampaign):
        def open(self, acquisition_id: str) -> xr.Dataset:
            out = super().open(acquisition_id)
            out.attrs[ATTR_CLASS_BAND_MINIMUM] = "edited by hand"
            return out

    # Damaged class attributes cost the one read, not the job: a warning, and the kept pixels' own pass.
    damaged = Damaged(campaign)
    storage.remove_tree(statistics_dir(campaign))
    caplog.clear()
    with caplog.at_level("WARNING"):
        stored = update_campaign_statistics(damaged, n_bins=64, ignore_label=0)
    assert "recorded class ranges" in caplog.text and "a pass of their own" in caplog.text
    _assert_same_kept(statistics_without(damaged, stored, 0), _kept_in_memory(campaign, 64))


def test_an_ignore_label_update_with_contrast_reuses_the_stored_contrast_and_only_what_is_asked(
    tmp_path,
) -> None:
    campaign = _labelled_campaign(tmp_path, n=2)
    update_campaign_statistics(campaign, n_bins=64, contrast=True, ignore_label=0)
    grown = _labelled_campaign(tmp_path, n=1, seed0=10, spread=0.5)
    (new,) = set(grown.ids()) - set(load_campaign_statistics(grown).acquisition_ids)
    counting = CountingCampaign(grown)
    update_campaign_statistics(counting, n_bins=64, contrast=True, ignore_label=0)
    assert +counting.reads == {new: _chunks_per_acquisition()}  # the stored contrast sums reused
    kept = statistics_without(grown, load_campaign_statistics(grown), 0, contrast=True)
    _assert_same_statistics(kept, _own_pass(grown, contrast=True))
    # Statistics stored with contrast, a flow that asks none, a label whose pixels lie inside the others'
    # range (the kept classes' stored histograms hold as they are): nothing stored is read, for
    # contrast sums nobody asked for or anything else.
    other = tmp_path / "other"
    update_campaign_statistics(_labelled_campaign(other, n=2), n_bins=64, contrast=True)
    more = _labelled_campaign(other, n=1, seed0=20, spread=0.5)
    (latest,) = set(more.ids()) - set(load_campaign_statistics(more).acquisition_ids)
    counting = CountingCampaign(more)
    update_campaign_statistics(counting, n_bins=64, ignore_label=1)
    assert +counting.reads == {latest: _chunks_per_acquisition()}
    stored = load_campaign_statistics(more)
    kept = statistics_without(more, stored, 1)
    np.testing.assert_array_equal(kept.hist_edges, stored.stats.hist_edges)  # the case meant
    assert kept.laplacian_abs_sum is None and 1 not in kept.classes.tolist()


def test_a_labelled_acquisition_without_a_valid_pixel_keeps_the_one_read(tmp_path) -> None:
    campaign = _labelled_campaign(tmp_path, n=2)
    rng = np.random.default_rng(5)
    mask = rng.integers(0, 3, (30, 26)).astype(np.uint8)
    cube = rng.normal(size=(30, 26, 6)).astype(np.float32)
    campaign.append(
        make_acquisition(cube, WAVELENGTHS, mask, valid=np.zeros((30, 26), bool)), chunk_yx=(8, 8)
    )
    datasets = [campaign.open(i) for i in campaign.ids()]
    assert sum(d.attrs[ATTR_CLASS_LABELS] == [] for d in datasets) == 1  # recorded: no label has pixels
    counting = CountingCampaign(campaign)
    update_campaign_statistics(counting, n_bins=64, ignore_label=0)
    after = CountingCampaign(campaign)
    kept = statistics_without(after, load_campaign_statistics(campaign), 0)
    assert set((+counting.reads).values()) == {_chunks_per_acquisition()} and not +after.reads
    _assert_same_statistics(kept, _own_pass(campaign))


def test_class_ranges_without_band_ranges_leave_the_kept_pixels_to_their_own_pass(tmp_path) -> None:
    # The job's edges then come from a range pass and cannot be compared with the kept ones before it.
    # Here the acquisition without band ranges holds the only background (label 0), so its range pass
    # widens the job's edges past the other acquisitions' recorded ranges, which equal the kept ones.
    campaign = _labelled_campaign(tmp_path, n=1)
    (legacy,) = campaign.ids()
    for seed in (7, 8):
        rng = np.random.default_rng(seed)
        mask = rng.integers(1, 3, (30, 26)).astype(np.uint8)  # no background
        cube = (3.0 * rng.normal(size=(30, 26, 6))).astype(np.float32)  # around the legacy's classes
        campaign.append(make_acquisition(cube, WAVELENGTHS, mask), chunk_yx=(8, 8))
    counting = CountingCampaign(campaign, drop_ranges=frozenset({legacy}))
    update_campaign_statistics(counting, n_bins=64, contrast=True, ignore_label=0)
    kept = statistics_without(counting, load_campaign_statistics(campaign), 0, contrast=True)
    assert not np.array_equal(kept.hist_edges, load_campaign_statistics(campaign).stats.hist_edges)
    _assert_same_statistics(kept, _own_pass(campaign, contrast=True))
    _assert_same_kept(kept, _kept_in_memory(campaign, 64, contrast=True))
