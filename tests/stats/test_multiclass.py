"""Multi-class selection from per-class statistics: planted bands, scores against scikit-learn, class views,
ignored pixels, the binary task unchanged, the beam search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from multiclass_scenes import CLASS_IDS, planted_pair_scene
from sklearn.feature_selection import f_classif
from sklearn.metrics import roc_auc_score

from bandselect.errors import ConfigError, LabelError
from bandselect.spectral import window_indices
from bandselect.stats import (
    BandStatistics,
    class_view,
    mrmr_select,
    relevance_scores,
    separability_select,
    statistics_of,
    two_class_statistics,
    without_classes,
)
from bandselect.stats.classes import labelled_statistics
from bandselect.stats.scores import f_statistic, one_vs_rest_auc_from_histograms
from bandselect.stats.separability import AGGREGATES
from bandselect.stats.subsets import beam_swap_search, candidate_sets, greedy_swap_search


@pytest.fixture(scope="module")
def scene():  # type: ignore[no-untyped-def]
    return planted_pair_scene()


@pytest.fixture(scope="module")
def scene_stats(scene) -> BandStatistics:  # type: ignore[no-untyped-def]
    return labelled_statistics(scene.cube, scene.labels, ignore_label=0)


@pytest.mark.filterwarnings("ignore:Features .* are constant")
def test_f_statistic_is_sklearn_f_classif() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 900)
    x = rng.normal(size=(900, 6)) + np.outer(y, [0.0, 0.3, 1.0, 0.0, 2.0, 0.1])
    x[:, 3] = 5.0  # constant: F = 0, where f_classif gives NaN
    stats = statistics_of(x, y, n_bins=None)
    ours = f_statistic(stats.counts, stats.class_means, np.stack([stats.class_variance(c) for c in range(4)]))
    with np.errstate(divide="ignore", invalid="ignore"):
        theirs = f_classif(x, y)[0]
    informative = [0, 1, 2, 4, 5]
    np.testing.assert_allclose(ours[informative], theirs[informative], rtol=1e-9)
    assert ours[3] == 0.0


def test_one_vs_rest_auc_agrees_with_roc_auc_score() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 3000)
    x = rng.normal(size=(3000, 4)) + np.outer(y == 1, [1.0, -0.5, 0.0, 2.0])
    stats = statistics_of(x, y)  # the engine's 2048 bins
    auc = one_vs_rest_auc_from_histograms(stats.histograms)
    for k in range(3):
        for band in range(4):
            expected = roc_auc_score(y == k, x[:, band])
            assert abs(auc[k, band] - max(expected, 1 - expected)) < 1e-3


def test_multiclass_selectors_find_one_planted_band_per_class_pair(scene, scene_stats) -> None:  # type: ignore[no-untyped-def]
    planted = sorted(scene.planted)
    assert scene_stats.classes.tolist() == list(CLASS_IDS)  # any set of class ids; 0 ignored
    for aggregate in AGGREGATES:
        picked = separability_select(scene_stats, 6, multiclass=True, aggregate=aggregate)
        assert sorted(picked.indices.tolist()) == planted, aggregate
        assert picked.n_classes == 4
    mrmr = mrmr_select(scene_stats, 6, multiclass=True)
    assert sorted(mrmr.indices.tolist()) == planted and mrmr.n_classes == 4
    # The binary rule (0 against labels > 0) on the same labels answers another question, badly.
    binary = mrmr_select(labelled_statistics(scene.cube, scene.labels), 6)
    assert sorted(binary.indices.tolist()) != planted


def test_multiclass_separability_respects_windows(scene, scene_stats) -> None:  # type: ignore[no-untyped-def]
    wl = scene.wavelengths_nm
    # Each window holds one planted band among noise bands; the picks come in window order.
    windows_nm = [(wl[b] - 30.0, wl[b] + 30.0) for b in scene.planted[:3]]  # bands 20 nm apart
    windows = [window_indices(wl, w) for w in windows_nm]
    assert [w.size for w in windows] == [3, 3, 3]
    picked = separability_select(scene_stats, 3, windows=windows, multiclass=True)
    assert picked.indices.tolist() == list(scene.planted[:3])


def test_ignored_pixels_change_nothing_when_their_values_are_garbage(scene) -> None:  # type: ignore[no-untyped-def]
    clean = labelled_statistics(scene.cube, scene.labels, ignore_label=0)
    garbage = scene.cube.copy()
    unlabelled = scene.labels == 0
    garbage[unlabelled] = np.random.default_rng(9).normal(1e6, 1e5, size=garbage[unlabelled].shape)
    rows, columns = np.nonzero(unlabelled)
    garbage[rows[:5], columns[:5], :] = np.nan
    garbage[rows[5:10], columns[5:10], 3] = np.inf
    dirty = labelled_statistics(garbage, scene.labels, ignore_label=0)
    for name in ("classes", "counts", "class_means", "class_comoments", "hist_edges", "histograms"):
        np.testing.assert_array_equal(getattr(dirty, name), getattr(clean, name), err_msg=name)
    assert dirty.n_invalid == clean.n_invalid == int(unlabelled.sum())
    for select in (separability_select, mrmr_select):
        assert (
            select(dirty, 6, multiclass=True).indices.tolist()
            == select(clean, 6, multiclass=True).indices.tolist()
        )


def test_two_classes_are_the_binary_task_exactly() -> None:
    rng = np.random.default_rng(5)
    y = rng.random(4000) < 0.3
    x = rng.normal(size=(4000, 10))
    x[:, 4] += 1.5 * y
    x[:, 7] += x[:, 4] * 0.5 - 1.0 * y
    binary = statistics_of(x, y)
    relabelled = statistics_of(x, np.where(y, 9, 4))  # the same task with ids 4 and 9
    for stats in (binary, relabelled):
        view = class_view(stats, multiclass=True)
        assert view.classes.tolist() == [0, 1]
    for select in (separability_select, mrmr_select):
        expected = select(binary, 3)
        for stats in (binary, relabelled):
            found = select(stats, 3, multiclass=True)
            assert found.indices.tolist() == expected.indices.tolist()
            assert found.objective == pytest.approx(expected.objective, rel=1e-9)
    np.testing.assert_allclose(
        relevance_scores(relabelled, multiclass=True).combined, relevance_scores(binary).combined, atol=1e-12
    )


def test_without_classes_matches_statistics_of_the_remaining_pixels() -> None:
    rng = np.random.default_rng(6)
    y = rng.integers(0, 4, 5000)
    x = rng.normal(size=(5000, 5)) * (1 + y[:, None])
    full = statistics_of(x, y)
    kept = y != 2
    direct = BandStatistics.from_arrays(x[kept], y[kept], hist_edges=full.hist_edges)
    dropped = without_classes(full, [2, 99])
    assert dropped.classes.tolist() == [0, 1, 3] and dropped.n_invalid == int((~kept).sum())
    np.testing.assert_allclose(dropped.class_means, direct.class_means, rtol=1e-12)
    np.testing.assert_allclose(dropped.class_comoments, direct.class_comoments, rtol=1e-10)
    np.testing.assert_array_equal(dropped.histograms, direct.histograms)
    np.testing.assert_allclose(dropped.covariance, direct.covariance, rtol=1e-10)
    assert two_class_statistics(without_classes(full, [0, 1])).classes.tolist() == [0, 1]


def test_label_errors_say_what_is_missing() -> None:
    x = np.random.default_rng(7).normal(size=(200, 4))
    labels = np.full(200, 5)
    labels[:50] = 0
    one_class = labelled_statistics(x, labels, ignore_label=0)
    for select in (separability_select, mrmr_select):
        with pytest.raises(LabelError, match=r"one class only \(class 5\), 50 pixels left out"):
            select(one_class, 2, multiclass=True)
    with pytest.raises(LabelError, match="two different classes"):
        labelled_statistics(x, labels, positive_label=5, ignore_label=5)
    with pytest.raises(LabelError, match="positive_label=7"):
        labelled_statistics(x, labels, positive_label=7)
    with pytest.raises(LabelError, match="no mask"):
        labelled_statistics(x, None, ignore_label=0)
    with pytest.raises(ConfigError, match="aggregate"):
        separability_select(statistics_of(x, labels), 2, multiclass=True, aggregate="max")
    with pytest.raises(ConfigError, match="beam_width"):
        separability_select(statistics_of(x, labels), 2, beam_width=0)


def _table_objective(values: dict[frozenset[int], float]):  # type: ignore[no-untyped-def]
    def objective(subsets: np.ndarray) -> np.ndarray:
        return np.array([values[frozenset(int(i) for i in row)] for row in np.atleast_2d(subsets)])

    return objective


def test_the_beam_escapes_the_trap_of_greedy_plus_swaps() -> None:
    # The best single band (0) is in no good pair: greedy takes {0, 3}, and no single swap improves it.
    values = {frozenset([b]): v for b, v in enumerate([3.0, 2.0, 1.0, 0.0])}
    values.update({frozenset(p): 1.0 for p in itertools.combinations(range(4), 2)})
    values[frozenset([0, 3])] = 5.0
    values[frozenset([1, 2])] = 10.0
    objective = _table_objective(values)
    candidates = candidate_sets(4, 2, None)
    constant = np.zeros(4, bool)
    assert greedy_swap_search(objective, candidates, constant, 50) == ([0, 3], 5.0)
    picks, best = beam_swap_search(objective, candidates, constant, 50, beam_width=2, n_refined=2)
    assert sorted(picks) == [1, 2] and best == 10.0


@pytest.mark.realdata
@pytest.mark.slow
def test_multiclass_separability_on_real_scenes_beats_random_bands() -> None:
    from stats_data import load_scene

    from bandselect.evaluation.classification import block_folds, cross_validated_classification

    scene = load_scene("jasper_ridge")
    cube, gt = scene["cube"].astype(np.float32), scene["gt"]
    folds = block_folds(gt, n_blocks=(5, 5), n_folds=5, seed=0)

    def select(train: np.ndarray) -> np.ndarray:
        return separability_select(statistics_of(cube[train], gt[train]), 3, multiclass=True).indices

    selected = cross_validated_classification(cube, gt, select, folds)
    rng = np.random.default_rng(0)
    draws = [rng.choice(cube.shape[-1], 3, replace=False) for _ in range(5)]
    random_oa = [
        cross_validated_classification(cube, gt, lambda train, b=draw: b, folds).overall_accuracy
        for draw in draws
    ]
    assert selected.overall_accuracy > np.mean(random_oa) + 0.03
    assert selected.kappa > 0.9
