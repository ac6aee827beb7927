"""Incremental campaign statistics: only new acquisitions are read; edges grow by a histogram rebuild."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bandselect.errors import FileFormatError
from bandselect.stats import (
    BandStatistics,
    compute_statistics,
    load_campaign_statistics,
    update_campaign_statistics,
)
from bandselect.stats.binning import data_edges
from bandselect.stats.incremental import statistics_dir
from bandselect.store import make_acquisition, open_campaign

WAVELENGTHS = np.linspace(450.0, 900.0, 5)


def _append(campaign, seed: int, scale: float = 1.0) -> str:
    rng = np.random.default_rng(seed)
    mask = rng.random((20, 24)) < 0.3
    cube = (scale * rng.random((20, 24, 5)) + mask[..., None]).astype(np.float32)
    return campaign.append(make_acquisition(cube, WAVELENGTHS, mask))


def test_adding_acquisitions_reads_only_new_ones_and_matches_full(tmp_path) -> None:
    campaign = open_campaign(tmp_path / "c", create=True)
    first = [_append(campaign, seed) for seed in range(2)]
    result = update_campaign_statistics(campaign, n_bins=128)
    assert result.computed_ids == tuple(sorted(first)) and result.stats.count == 2 * 480
    assert campaign.ids() == sorted(first)  # the sidecar is not an acquisition
    again = update_campaign_statistics(campaign, n_bins=128)
    assert again.computed_ids == () and again.acquisition_ids == tuple(sorted(first))

    added = _append(campaign, 7)  # same value range: stored edges (with headroom) hold
    result = update_campaign_statistics(campaign, n_bins=128)
    assert result.computed_ids == (added,) and not result.histograms_rebuilt
    assert result.stats.count == 3 * 480
    loaded = load_campaign_statistics(campaign)
    assert loaded is not None and loaded.acquisition_ids == tuple(campaign.ids())
    full = compute_statistics(campaign, hist_edges=result.stats.hist_edges)
    np.testing.assert_allclose(loaded.stats.class_comoments, full.class_comoments, rtol=1e-10)
    np.testing.assert_array_equal(loaded.stats.histograms, full.histograms)
    assert len(list(statistics_dir(campaign).glob("statistics-*.npz"))) == 1  # old file removed


def test_values_outside_stored_edges_rebuild_histograms(tmp_path) -> None:
    campaign = open_campaign(tmp_path / "c", create=True)
    _append(campaign, 0)
    before = update_campaign_statistics(campaign, n_bins=64)
    added = _append(campaign, 1, scale=5.0)  # far outside the stored range
    result = update_campaign_statistics(campaign, n_bins=64)
    assert result.computed_ids == (added,) and result.histograms_rebuilt
    assert result.stats.hist_edges[:, -1].max() > before.stats.hist_edges[:, -1].max()
    assert result.stats.n_clipped.sum() == 0
    reference = compute_statistics(campaign, hist_edges=result.stats.hist_edges)
    np.testing.assert_array_equal(result.stats.histograms, reference.histograms)
    np.testing.assert_allclose(result.stats.auc, reference.auc, rtol=1e-12)
    np.testing.assert_allclose(result.stats.class_comoments, reference.class_comoments, rtol=1e-10)


def test_changed_settings_recompute_and_corrupt_manifest_is_reported(tmp_path) -> None:
    campaign = open_campaign(tmp_path / "c", create=True)
    _append(campaign, 0)
    update_campaign_statistics(campaign, n_bins=32)
    result = update_campaign_statistics(campaign, n_bins=16)
    assert result.n_bins == 16 and result.stats.n_bins == 16 and result.computed_ids
    (statistics_dir(campaign) / "manifest.json").write_text("{not json")
    with pytest.raises(FileFormatError, match="delete"):
        load_campaign_statistics(campaign)
    manifest = {
        "version": 1,
        "statistics_file": "../escape.npz",
        "acquisition_ids": [],
        "n_bins": 16,
        "nan_policy": "raise",
    }
    (statistics_dir(campaign) / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FileFormatError):
        load_campaign_statistics(campaign)


def test_stats_roundtrip_through_the_sidecar_keep_edges(tmp_path) -> None:
    campaign = open_campaign(tmp_path / "c", create=True)
    _append(campaign, 3)
    stored = update_campaign_statistics(campaign, n_bins=32).stats
    x = np.asarray(campaign.open(campaign.ids()[0])["cube"]).reshape(-1, 5)
    first = BandStatistics.from_arrays(x)
    # The engine's one binning rule: the same edges fit() and compute_statistics give these pixels.
    np.testing.assert_array_equal(stored.hist_edges, data_edges(first.minimum, first.maximum, 32))
    np.testing.assert_array_equal(
        BandStatistics.load(next(statistics_dir(campaign).glob("*.npz"))).counts, stored.counts
    )
