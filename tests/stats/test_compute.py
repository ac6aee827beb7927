"""compute_statistics: Dask over zarr-backed Datasets and campaign stores equals the in-memory result."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bandselect.errors import InputError, NonFiniteError
from bandselect.names import DIM_BAND, DIM_X, DIM_Y, VAR_CUBE, VAR_MASK, VAR_VALID
from bandselect.stats import BandStatistics, compute_histograms, compute_statistics, histogram_edges
from bandselect.stats.binning import data_edges
from bandselect.store import make_acquisition, open_campaign


def _scene(seed: int, h: int = 37, w: int = 29, c: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = rng.random((h, w)) < 0.2
    cube = (rng.normal(size=(h, w, c)) + 1.5 * mask[..., None] * (np.arange(c) == 2)).astype(np.float32)
    return cube, mask


def _zarr_dataset(
    tmp_path, cube: np.ndarray, mask: np.ndarray | None = None, valid: np.ndarray | None = None
) -> xr.Dataset:
    variables = {VAR_CUBE: ((DIM_Y, DIM_X, DIM_BAND), cube)}
    if mask is not None:
        variables[VAR_MASK] = ((DIM_Y, DIM_X), mask)
    if valid is not None:
        variables[VAR_VALID] = ((DIM_Y, DIM_X), valid)
    path = tmp_path / "scene.zarr"
    xr.Dataset(variables).chunk({DIM_Y: 10, DIM_X: 8, DIM_BAND: -1}).to_zarr(path, consolidated=False)
    return xr.open_zarr(path, consolidated=False)


def _reference(cube: np.ndarray, mask: np.ndarray | None, n_bins: int = 64, **kw) -> BandStatistics:
    first = BandStatistics.from_arrays(cube, mask, **kw)
    edges = data_edges(first.minimum, first.maximum, n_bins)  # the engine's binning rule
    return BandStatistics.from_arrays(cube, mask, hist_edges=edges, **kw)


def _assert_equal(a: BandStatistics, b: BandStatistics) -> None:
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_allclose(a.class_means, b.class_means, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(a.class_comoments, b.class_comoments, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(a.hist_edges, b.hist_edges)
    np.testing.assert_array_equal(a.histograms, b.histograms)
    np.testing.assert_allclose(a.auc, b.auc, rtol=1e-12)


def test_dataset_threaded_equals_in_memory(tmp_path) -> None:
    cube, mask = _scene(0)
    ds = _zarr_dataset(tmp_path, cube, mask)
    assert ds[VAR_CUBE].data.npartitions > 8  # several chunks and tree levels
    stats = compute_statistics(ds, n_bins=64)
    _assert_equal(stats, _reference(cube, mask))
    one_pass = compute_statistics(ds, n_bins=None)
    assert not one_pass.has_histograms and one_pass.count == cube.shape[0] * cube.shape[1]


def test_campaign_store_all_and_some_acquisitions(tmp_path) -> None:
    campaign = open_campaign(tmp_path / "campaign", create=True)
    wavelengths = np.linspace(450.0, 900.0, 7)
    scenes = [_scene(seed) for seed in range(3)]
    for cube, mask in scenes:
        campaign.append(make_acquisition(cube, wavelengths, mask))
    ids = campaign.ids()
    stats = compute_statistics(campaign, n_bins=64)
    all_cubes = np.concatenate([c.reshape(-1, 7) for c, _ in scenes])
    all_masks = np.concatenate([m.reshape(-1) for _, m in scenes])
    _assert_equal(stats, _reference(all_cubes, all_masks))
    subset = compute_statistics(campaign, n_bins=None, acquisitions=ids[1:])
    assert subset.count == 2 * 37 * 29
    assert compute_statistics(campaign, n_bins=None, first_n=1).count == 37 * 29
    with pytest.raises(InputError, match="unknown ids"):
        compute_statistics(campaign, acquisitions=["nope-0000000000000000"])


def test_subsample_is_deterministic_and_bounded(tmp_path) -> None:
    cube, mask = _scene(1, h=60, w=50)
    ds = _zarr_dataset(tmp_path, cube, mask)
    a = compute_statistics(ds, n_bins=32, max_pixels=600, seed=3)
    b = compute_statistics(ds, n_bins=32, max_pixels=600, seed=3)
    assert 400 < a.count < 800
    np.testing.assert_array_equal(a.histograms, b.histograms)
    assert a.histograms.sum() == a.count * 7  # both passes saw the same pixels


def test_nan_policy_and_valid(tmp_path) -> None:
    cube, mask = _scene(2)
    cube[3, 4, 1] = np.nan
    cube[20, 5, :] = np.inf
    valid = np.ones(mask.shape, bool)
    valid[0, :] = False
    ds = _zarr_dataset(tmp_path, cube, mask, valid)
    with pytest.raises(NonFiniteError, match="NaN/Inf"):
        compute_statistics(ds, n_bins=16)
    stats = compute_statistics(ds, n_bins=16, nan_policy="omit")
    assert stats.n_nonfinite == 2 and stats.n_invalid == 29
    assert stats.count == 37 * 29 - 2 - 29
    _assert_equal(stats, _reference(cube, mask, n_bins=16, valid=valid, nan_policy="omit"))


def test_fixed_edges_one_pass_and_histogram_pass(tmp_path) -> None:
    cube, mask = _scene(3)
    ds = _zarr_dataset(tmp_path, cube, mask)
    edges = histogram_edges(np.full(7, -1.0), np.full(7, 1.0), 10)
    stats = compute_statistics(ds, hist_edges=edges)
    assert stats.n_clipped.sum() > 0
    _classes, hist, clipped = compute_histograms(ds, edges)
    np.testing.assert_array_equal(hist, stats.histograms)
    np.testing.assert_array_equal(clipped, stats.n_clipped)


def test_bad_sources() -> None:
    with pytest.raises(InputError, match="campaign"):
        compute_statistics(np.zeros((3, 3, 2)))


def test_fan_in_below_two_is_refused_by_both_passes(tmp_path) -> None:
    # A fan-in of 1 would never shrink the reduction tree: both entry points must refuse it.
    cube, mask = _scene(5)
    ds = _zarr_dataset(tmp_path, cube, mask)
    edges = histogram_edges(cube.reshape(-1, 7).min(0), cube.reshape(-1, 7).max(0), 8)
    with pytest.raises(InputError, match="split_every"):
        compute_statistics(ds, n_bins=8, split_every=1)
    with pytest.raises(InputError, match="split_every"):
        compute_histograms(ds, edges, split_every=1)


@pytest.mark.slow
def test_distributed_local_cluster_equals_in_memory(tmp_path) -> None:
    distributed = pytest.importorskip("distributed")
    cube, mask = _scene(4)
    ds = _zarr_dataset(tmp_path, cube, mask)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        stats = compute_statistics(ds, n_bins=64, scheduler_address=cluster.scheduler_address)
    _assert_equal(stats, _reference(cube, mask))
