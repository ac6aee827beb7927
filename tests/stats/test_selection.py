"""mRMR and separability selection: planted answers, joint separability, windows, bad input, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from stats_data import jointly_separating, load_scene, planted

from bandselect.errors import ConfigError, InputError, LabelError, WavelengthError
from bandselect.stats import BandStatistics, ScoredSubset, histogram_edges, mrmr_select, separability_select
from bandselect.stats.scores import rescale_unit


def _stats(x: np.ndarray, y: np.ndarray, n_bins: int = 256) -> BandStatistics:
    first = BandStatistics.from_arrays(x, y)
    return BandStatistics.from_arrays(x, y, hist_edges=histogram_edges(first.minimum, first.maximum, n_bins))


def test_mrmr_picks_planted_bands_not_the_redundant_copy() -> None:
    stats = _stats(*planted())
    selection = mrmr_select(stats, 2)
    assert isinstance(selection, ScoredSubset) and selection.criterion == "mrmr"
    assert selection.indices.tolist() == [3, 9]
    assert selection.indices.dtype == np.int64
    assert stats.correlation[3, 7] > 0.85 and stats.auc[7] > stats.auc[0] + 0.2  # a relevant, redundant copy
    assert 7 not in mrmr_select(stats, 3).indices[:2]


def test_mrmr_follows_the_spec_formula() -> None:
    stats = _stats(*planted())
    w = np.array([1.0, 2.0, 0.5])
    selection = mrmr_select(stats, 3, score_weights=tuple(w), lambda_penalty=0.3)
    scaled = [rescale_unit(s) for s in (stats.fisher, stats.auc, stats.mi)]
    combined = sum(wi * s for wi, s in zip(w, scaled, strict=True)) / w.sum()
    np.testing.assert_allclose(selection.band_scores, combined, rtol=1e-12)
    rho = np.abs(stats.correlation)
    picked = [int(np.argmax(combined))]
    for _ in range(2):
        value = combined - 0.3 * rho[:, picked].max(axis=1)
        value[picked] = -np.inf
        picked.append(int(np.argmax(value)))
    assert selection.indices.tolist() == picked
    np.testing.assert_allclose(selection.fisher, stats.fisher)


def test_separability_picks_planted_bands() -> None:
    selection = separability_select(_stats(*planted()), 2)
    assert sorted(selection.indices.tolist()) == [3, 9]
    assert selection.criterion == "separability" and selection.objective > 0


def test_separability_finds_a_pair_useless_alone() -> None:
    x, y = jointly_separating()
    stats = _stats(x, y)
    assert stats.auc[[2, 5]].max() < 0.6 < stats.auc[8]  # alone, 2 and 5 barely separate
    selection = separability_select(stats, 2)
    assert sorted(selection.indices.tolist()) == [2, 5]
    assert 8 in mrmr_select(stats, 2).indices  # univariate relevance keeps the band that helps less


def test_windows_one_band_per_window_in_order_never_twice() -> None:
    stats = _stats(*planted())
    windows = [np.array([7, 3]), np.array([3, 7, 8]), np.array([0, 1, 9])]
    for select in (mrmr_select, separability_select):
        selection = select(stats, 3, windows=windows)
        picks = selection.indices.tolist()
        assert len(set(picks)) == 3
        for pick, window in zip(picks, windows, strict=True):
            assert pick in window
        assert picks[0] == 3 and picks[2] == 9
    with pytest.raises(WavelengthError, match="window 1"):
        mrmr_select(stats, 2, windows=[np.array([3]), np.array([3])])


def test_ties_go_to_the_lower_index() -> None:
    x = np.tile(np.array([[0.0, 1.0], [1.0, 0.0]]), (50, 2))  # bands 0 and 2, 1 and 3 identical
    y = np.tile([True, False], 50)
    assert mrmr_select(_stats(x, y, 8), 1).indices.tolist() == [0]


def test_constant_bands_rank_last() -> None:
    x, y = planted()
    x[:, [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11]] = 5.0  # everything but the informative band 3 is constant
    stats = _stats(x, y)
    for select in (mrmr_select, separability_select):
        selection = select(stats, 3)
        assert selection.indices[0] == 3
        assert np.all(np.isfinite(selection.band_scores))
    assert mrmr_select(stats, 1, windows=[np.array([0, 1])]).indices.tolist() == [0]


def test_bad_arguments() -> None:
    stats = _stats(*planted())
    with pytest.raises(ConfigError, match="at most the number of bands"):
        mrmr_select(stats, 13)
    with pytest.raises(ConfigError, match="at most the number of bands"):
        separability_select(stats, 13)
    with pytest.raises(ConfigError, match="one window per"):
        mrmr_select(stats, 3, windows=[[1], [2]])
    with pytest.raises(WavelengthError, match="window 1"):
        separability_select(stats, 2, windows=[[1], []])
    with pytest.raises(WavelengthError, match="indices"):
        mrmr_select(stats, 1, windows=[[40]])
    with pytest.raises(ConfigError, match="score_weights"):
        mrmr_select(stats, 2, score_weights=(0, 0, 0))
    with pytest.raises(ConfigError, match="k"):
        mrmr_select(stats, 0)
    without_hist = BandStatistics.from_arrays(*planted())
    with pytest.raises(InputError, match="histograms"):
        mrmr_select(without_hist, 2)
    assert mrmr_select(without_hist, 2, score_weights=(1, 0, 0)).indices.tolist() == [3, 9]
    assert sorted(separability_select(without_hist, 2).indices.tolist()) == [3, 9]
    with pytest.raises(LabelError, match="positive"):
        separability_select(BandStatistics.from_arrays(planted()[0]), 2)


@pytest.mark.realdata
def test_real_scenes_sensible_picks_in_milliseconds() -> None:
    scene = load_scene("jasper_ridge")
    stats = _stats(scene["cube"], scene["gt"], 2048)
    water = stats.one_vs_rest(2)
    wl = scene["wavelengths_nm"]
    start = time.perf_counter()
    sep = separability_select(water, 3)
    elapsed_sep = time.perf_counter() - start
    start = time.perf_counter()
    mrmr = mrmr_select(water, 3)
    elapsed_mrmr = time.perf_counter() - start
    assert elapsed_sep < 0.5 and elapsed_mrmr < 0.1
    # Water is dark in the near infrared: both pick at least one NIR band (> 700 nm) that separates it
    # alone. mRMR ranks bands one by one, so all its picks are strong; separability picks the band
    # set that separates best jointly (the beam search finds partners that are weak alone), judged by
    # a classifier on the three bands.
    for selection in (sep, mrmr):
        assert np.any(wl[selection.indices] > 700)
        assert np.max(water.auc[selection.indices]) > 0.99
    assert np.median(water.auc[mrmr.indices]) > 0.9
    assert len(set(sep.indices.tolist())) == 3
    pixels = scene["cube"].reshape(-1, scene["cube"].shape[-1])[:, sep.indices].astype(float)
    labels = (scene["gt"] == 2).reshape(-1)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(pixels, labels)
    assert roc_auc_score(labels, model.decision_function(pixels)) > 0.999
