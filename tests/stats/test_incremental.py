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


def test_statistics_without_an_ignored_class_bin_as_fit_does_and_are_kept_in_the_sidecar(
    tmp_path, monkeypatch
) -> None:
    from bandselect.stats import incremental, statistics_without
    from bandselect.stats.classes import labelled_statistics

    rng = np.random.default_rng(4)
    cubes, masks = [], []
    campaign = open_campaign(tmp_path / "c", create=True)
    for _ in range(2):
        labels = rng.integers(0, 3, size=(20, 24)).astype(np.int16)
        cube = rng.normal(1.0, 0.1, size=(20, 24, 5)).astype(np.float32)
        cube[labels == 2, 1] += 0.3
        cube[labels == 0] = rng.uniform(-1e3, 1e3, size=(int((labels == 0).sum()), 5))  # unlabelled junk
        campaign.append(make_acquisition(cube, WAVELENGTHS, labels))
        cubes.append(cube)
        masks.append(labels)
    stored = update_campaign_statistics(campaign, n_bins=64)
    kept = statistics_without(campaign, stored, 0)
    in_memory = labelled_statistics(np.stack(cubes), np.stack(masks), ignore_label=0, n_bins=64)
    # The junk set the stored edges (1e3 wide); the kept pixels are binned on their own range, as fit() does.
    assert stored.stats.hist_edges[1, -1] - stored.stats.hist_edges[1, 0] > 1000
    np.testing.assert_array_equal(kept.hist_edges, in_memory.hist_edges)
    np.testing.assert_array_equal(kept.histograms, in_memory.histograms)
    np.testing.assert_array_equal(kept.counts, in_memory.counts)
    np.testing.assert_allclose(kept.one_vs_rest(2).auc, in_memory.one_vs_rest(2).auc, rtol=1e-12)
    assert kept.one_vs_rest(2).auc[1] > 0.9 and kept.n_invalid == in_memory.n_invalid

    # Kept next to this version of the statistics: a later call reads it, no pass.
    derived = statistics_dir(campaign) / stored.statistics_file.replace(".npz", ".derived")
    assert (derived / "without-0.npz").is_file()

    def no_pass(*args, **kwargs):
        raise AssertionError("the kept histograms should have been read, not recomputed")

    monkeypatch.setattr(incremental, "compute_without", no_pass)
    again = statistics_without(campaign, load_campaign_statistics(campaign), 0)
    np.testing.assert_array_equal(again.histograms, kept.histograms)
    # A class the statistics do not hold leaves everything as stored, with no pass either.
    assert statistics_without(campaign, stored, 9).hist_edges is stored.stats.hist_edges
    monkeypatch.undo()

    # A new version of the statistics removes the old one's derived files.
    _append(campaign, 3)
    update_campaign_statistics(campaign, n_bins=64)
    assert not derived.exists()


def test_statistics_without_sum_the_contrast_again_without_the_ignored_pixels(tmp_path) -> None:
    from bandselect.stats import statistics_without
    from bandselect.stats.classes import labelled_statistics

    rng = np.random.default_rng(8)
    labels = rng.integers(0, 3, size=(20, 24)).astype(np.int16)
    cube = rng.normal(1.0, 0.1, size=(20, 24, 5)).astype(np.float32)
    cube[labels == 0] = 50.0  # a flat, bright unlabelled background: huge Laplacians at its borders
    campaign = open_campaign(tmp_path / "c", create=True)
    campaign.append(make_acquisition(cube, WAVELENGTHS, labels))
    stored = update_campaign_statistics(campaign, n_bins=32, contrast=True)
    kept = statistics_without(campaign, stored, 0, contrast=True)
    expected = labelled_statistics(cube, labels, ignore_label=0, n_bins=32, contrast=True)
    # Not asked for: none (the stored terms count the ignored pixels), and the histograms from the same
    # derived file, no second pass.
    plain = statistics_without(campaign, load_campaign_statistics(campaign), 0)
    assert not plain.has_contrast
    np.testing.assert_array_equal(plain.histograms, expected.histograms)
    assert kept.laplacian_count == expected.laplacian_count == int((labels != 0).sum())
    np.testing.assert_allclose(kept.laplacian_abs_sum, expected.laplacian_abs_sum, rtol=1e-12)
    assert stored.stats.laplacian_energy.min() > 10 * kept.laplacian_energy.max()
    np.testing.assert_array_equal(kept.histograms, expected.histograms)


def test_statistics_without_refuse_missing_contrast_and_survive_a_read_only_store(
    tmp_path, caplog, monkeypatch
) -> None:
    import errno

    from bandselect.errors import InputError
    from bandselect.stats import statistics_without

    campaign = open_campaign(tmp_path / "c", create=True)
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, size=(20, 24)).astype(np.int16)
    cube = rng.normal(1.0, 0.1, size=(20, 24, 5)).astype(np.float32)
    cube[labels == 0] = 40.0
    campaign.append(make_acquisition(cube, WAVELENGTHS, labels))
    stored = update_campaign_statistics(campaign, n_bins=32)
    with pytest.raises(InputError, match="contrast=True first"):
        statistics_without(campaign, stored, 0, contrast=True)

    def read_only(self, path):  # as a read-only mount or an S3 read role answers (root ignores chmod)
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(BandStatistics, "save", read_only)
    with caplog.at_level("WARNING"):
        kept = statistics_without(campaign, stored, 0)
    assert kept.hist_edges[0, -1] < 5 and "computed again next time" in caplog.text  # the result anyway
    assert not list(statistics_dir(campaign).glob("*.derived/*.npz"))


def test_contrast_of_an_older_rule_is_recomputed(tmp_path) -> None:
    campaign = open_campaign(tmp_path / "c", create=True)
    _append(campaign, 0)
    first = update_campaign_statistics(campaign, n_bins=16, contrast=True)
    manifest_path = statistics_dir(campaign) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["contrast_rule"]  # as written before the rule was recorded
    manifest_path.write_text(json.dumps(manifest))
    assert load_campaign_statistics(campaign).contrast_rule == 1
    again = update_campaign_statistics(campaign, n_bins=16)
    assert again.computed_ids == first.computed_ids  # recomputed, not merged into old-rule sums
    assert load_campaign_statistics(campaign).contrast_rule == 2
