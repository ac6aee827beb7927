"""Unsupervised selection from merged statistics: orthogonal projection and correlation clusters."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bandselect.errors import ConfigError, InputError
from bandselect.stats import (
    compute_statistics,
    correlation_cluster_select,
    orthogonal_projection_select,
    statistics_of,
)


def _pixels(n: int = 3000, n_bands: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 4))
    mixing = rng.normal(size=(4, n_bands))
    return latent @ mixing + 0.3 * rng.normal(size=(n, n_bands))


def _greedy_residuals_on_pixels(x: np.ndarray, k: int) -> list[int]:
    """The definition, on pixels: each next band has the largest residual after regressing it on the picks."""
    centred = x - x.mean(axis=0)
    picks: list[int] = []
    for _ in range(k):
        if picks:
            basis = centred[:, picks]
            fitted = basis @ np.linalg.lstsq(basis, centred, rcond=None)[0]
            residual = ((centred - fitted) ** 2).sum(axis=0)
        else:
            residual = (centred**2).sum(axis=0)
        residual[picks] = -np.inf
        picks.append(int(np.argmax(residual)))
    return picks


def test_orthogonal_projection_is_the_greedy_least_explained_band() -> None:
    x = _pixels()
    result = orthogonal_projection_select(statistics_of(x, n_bins=None), 6)
    assert result.indices.tolist() == _greedy_residuals_on_pixels(x, 6)
    assert result.indices[0] == int(np.argmax(x.var(axis=0)))
    assert 0.0 < result.objective <= 1.0
    assert np.all(result.band_scores[result.indices] == 0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_orthogonal_projection_never_picks_both_copies_of_a_duplicate_band(seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(2000, 8)) * np.arange(1, 9)
    x = np.column_stack([x, x[:, 7]])  # band 8 is an exact copy of band 7 (the largest variance)
    stats = statistics_of(x, n_bins=None)
    for k in range(2, 9):  # up to the rank: 8 independent bands
        picks = orthogonal_projection_select(stats, k).indices.tolist()
        assert not {7, 8} <= set(picks), (k, picks)
    assert sorted(orthogonal_projection_select(stats, 8).indices.tolist()) == list(range(8))


def test_orthogonal_projection_respects_windows() -> None:
    x = _pixels(n_bands=12)
    windows = [np.arange(0, 4), np.arange(4, 8), np.arange(8, 12)]
    picks = orthogonal_projection_select(statistics_of(x, n_bins=None), 3, windows=windows).indices
    assert [int(p) // 4 for p in picks] == [0, 1, 2]


def test_correlation_clusters_take_one_band_per_redundant_group() -> None:
    rng = np.random.default_rng(1)
    sources = rng.normal(size=(3000, 3)) * [1.0, 2.0, 3.0]
    x = np.repeat(sources, 5, axis=1) + 0.05 * rng.normal(size=(3000, 15))  # 3 groups of 5 near-copies
    stats = statistics_of(x, n_bins=None)
    for representative in ("medoid", "variance"):
        result = correlation_cluster_select(stats, 3, representative=representative)
        assert [int(i) // 5 for i in result.indices] == [2, 1, 0]  # largest variance group first
        assert result.objective > 0.99
    with pytest.raises(ConfigError, match="representative"):
        correlation_cluster_select(stats, 3, representative="centroid")


def test_unsupervised_selection_through_dask_equals_in_memory() -> None:
    x = _pixels(n=40 * 30, n_bands=9).reshape(40, 30, 9).astype(np.float32)
    ds = xr.Dataset({"cube": (("y", "x", "band"), x)}, coords={"wavelength": ("band", np.arange(9) + 500.0)})
    lazy = compute_statistics(ds.chunk({"y": 7, "x": 11}), n_bins=None)
    memory = statistics_of(x, n_bins=None)
    for select in (orthogonal_projection_select, correlation_cluster_select):
        assert select(lazy, 4).indices.tolist() == select(memory, 4).indices.tolist()


def test_unsupervised_bad_input() -> None:
    with pytest.raises(InputError, match="1 sample"):
        orthogonal_projection_select(statistics_of(np.ones((1, 4)), n_bins=None), 2)
    with pytest.raises(ConfigError, match="k"):
        correlation_cluster_select(statistics_of(_pixels(), n_bins=None), 11)
