"""Scores against NumPy and scikit-learn on real and synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_selection import f_classif
from sklearn.metrics import roc_auc_score
from stats_data import load_scene, planted

from bandselect.stats import BandStatistics, histogram_edges

pytestmark = []


def _two_pass(x: np.ndarray, labels: np.ndarray, n_bins: int | None = None) -> BandStatistics:
    first = BandStatistics.from_arrays(x, labels)
    edges = histogram_edges(first.minimum, first.maximum, n_bins or 2048)
    return BandStatistics.from_arrays(x, labels, hist_edges=edges)


def _sym_auc(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    auc = np.array([roc_auc_score(y, x[:, c]) for c in range(x.shape[1])])
    return np.maximum(auc, 1 - auc)


def _fisher_numpy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x1, x0 = x[y], x[~y]
    return (x1.mean(0) - x0.mean(0)) ** 2 / (x1.var(0) + x0.var(0))


@pytest.mark.realdata
def test_fisher_exact_on_raw_uint16_jasper() -> None:
    scene = load_scene("jasper_ridge")
    cube, gt = scene["cube"], scene["gt"]
    assert cube.dtype == np.uint16
    # Chunks merged in a scrambled order, as the Dask reduction would.
    parts = [
        BandStatistics.from_arrays(cube[i : i + 13], gt[i : i + 13]) for i in range(0, cube.shape[0], 13)
    ]
    stats = parts[0]
    for part in parts[:0:-1]:
        stats = part.merge(stats)
    x = cube.reshape(-1, cube.shape[-1]).astype(np.float64)
    for label in (1, 2, 3, 4):
        y = gt.reshape(-1) == label
        np.testing.assert_allclose(stats.one_vs_rest(label).fisher, _fisher_numpy(x, y), rtol=1e-9)


def test_fisher_relation_to_f_classif() -> None:
    x, y = planted(n=3000)
    stats = BandStatistics.from_arrays(x, y)
    np.testing.assert_allclose(stats.fisher, _fisher_numpy(x.astype(np.float64), y), rtol=1e-9)
    # Two classes: F = (n - 2) · n0 n1 (μ1 − μ0)² / (n (n0 σ0² + n1 σ1²)).
    (n0, m0, c0), (n1, m1, c1) = stats.binary_groups()
    n = n0 + n1
    f_from_stats = (n - 2) * n0 * n1 * (m1 - m0) ** 2 / (n * (n0 * np.diag(c0) + n1 * np.diag(c1)))
    f_sklearn, _ = f_classif(x.astype(np.float64), y)
    np.testing.assert_allclose(f_from_stats, f_sklearn, rtol=1e-6)


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("pavia_rosis_abu_beach4", [None]),
        ("muufl_gulfport_tgt", [None]),
        ("samson", [1, 3]),
        ("jasper_ridge", [2, 4]),
    ],
)
def test_auc_matches_sklearn_on_real_scenes(name: str, labels: list[int | None]) -> None:
    scene = load_scene(name)
    cube, gt = scene["cube"], scene["gt"]
    stats = _two_pass(cube, gt)
    x = cube.reshape(-1, cube.shape[-1]).astype(np.float64)
    for label in labels:
        binary = stats if label is None else stats.one_vs_rest(label)
        y = gt.reshape(-1) > 0 if label is None else gt.reshape(-1) == label
        assert np.max(np.abs(binary.auc - _sym_auc(y, x))) < 1e-3


def test_auc_matches_sklearn_on_synthetic_with_ties() -> None:
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.normal(size=5000), rng.integers(0, 20, size=5000), rng.exponential(size=5000)])
    y = rng.random(5000) < 0.2
    x[y, 0] += 0.7
    x[y, 1] -= 3
    stats = _two_pass(x, y)
    assert np.max(np.abs(stats.auc - _sym_auc(y, x))) < 1e-3
    assert np.all(stats.auc >= 0.5)


@pytest.mark.realdata
def test_correlation_matches_corrcoef_on_real_scene() -> None:
    scene = load_scene("samson")
    x = scene["cube"].reshape(-1, scene["cube"].shape[-1]).astype(np.float64)
    top, bottom = scene["cube"][:40], scene["cube"][40:]
    stats = BandStatistics.from_arrays(top).merge(BandStatistics.from_arrays(bottom))
    np.testing.assert_allclose(stats.correlation, np.corrcoef(x.T), rtol=0, atol=1e-9)
    np.testing.assert_allclose(stats.variance, x.var(0), rtol=1e-9)


def test_mutual_information_equals_exact_plugin_on_same_bins() -> None:
    x, y = planted(n=4000)
    stats = _two_pass(x, y, n_bins=32)
    edges = stats.hist_edges
    for band in range(x.shape[1]):
        joint = np.stack(
            [np.histogram(x[y == c, band].astype(np.float64), bins=edges[band])[0] for c in (False, True)]
        ).astype(np.float64)
        p = joint / joint.sum()
        outer = p.sum(1, keepdims=True) * p.sum(0, keepdims=True)
        nz = p > 0
        exact = float(np.sum(p[nz] * np.log(p[nz] / outer[nz])))
        assert stats.mi[band] == pytest.approx(exact, rel=1e-9, abs=1e-12)
        np.testing.assert_array_equal(stats.histograms[:, band], joint)
    assert stats.mi[3] > stats.mi[0] and stats.mi[9] > stats.mi[0]


def test_histograms_equal_numpy_histogram() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3000, 3)) * np.array([1.0, 1e-3, 1e4])
    stats = _two_pass(x, np.zeros(3000, int), n_bins=100)
    for band in range(3):
        ref, _ = np.histogram(x[:, band], bins=stats.hist_edges[band])
        np.testing.assert_array_equal(stats.histograms[0, band], ref)
    assert stats.n_clipped.sum() == 0


def _plugin_mi(joint: np.ndarray) -> np.ndarray:
    out = []
    for band in range(joint.shape[1]):
        p = joint[:, band].astype(np.float64)
        if p.sum() <= 0:
            out.append(0.0)
            continue
        p = p / p.sum()
        outer = p.sum(1, keepdims=True) * p.sum(0, keepdims=True)
        nz = p > 0
        out.append(float(np.sum(p[nz] * np.log(p[nz] / outer[nz]))))
    return np.maximum(np.array(out), 0.0)


def test_compiled_histogram_scores_equal_their_definitions_for_any_counts() -> None:
    from bandselect.stats.scores import auc_from_histograms, mutual_information_from_histograms

    rng = np.random.default_rng(11)
    # Small counts (looked up), counts beyond the n log n table (computed), empty bins and an empty band.
    counts = rng.integers(0, 9000, size=(3, 5, 40)) * (rng.random((3, 5, 40)) < 0.6)
    counts[:, 4] = 0
    for hist in (counts.astype(np.int64), counts.astype(np.float64), counts * 0.37):  # fractional too
        np.testing.assert_allclose(
            mutual_information_from_histograms(hist), _plugin_mi(hist), rtol=1e-10, atol=1e-13
        )
        h0, h1 = hist[0], hist[1] + hist[2]
        below = np.cumsum(h0, axis=-1) - h0
        pairs = h0.sum(-1) * h1.sum(-1)
        wins = (h1 * (below + 0.5 * h0)).sum(-1)
        auc = np.where(pairs > 0, wins / np.where(pairs > 0, pairs, 1), 0.5)
        np.testing.assert_allclose(auc_from_histograms(h0, h1), np.maximum(auc, 1 - auc), rtol=1e-12)
    assert (
        mutual_information_from_histograms(counts)[4] == 0
        and auc_from_histograms(counts[0], counts[1])[4] == 0.5
    )
    assert auc_from_histograms(counts[0, 0], counts[1, 0]).shape == ()  # one band: (n_bins,) -> a scalar
    # Integer against fractional counts: compared in float64, never truncated.
    mixed = auc_from_histograms(np.array([[3, 1, 0]]), np.array([[0.5, 0.5, 2.5]]))
    np.testing.assert_allclose(
        mixed, auc_from_histograms(np.array([[3.0, 1, 0]]), np.array([[0.5, 0.5, 2.5]]))
    )
    assert 0.85 < float(mixed[0]) < 0.95


def test_histogram_scores_refuse_mismatched_shapes() -> None:
    from bandselect.errors import ShapeError
    from bandselect.stats.scores import auc_from_histograms, mutual_information_from_histograms

    with pytest.raises(ShapeError, match="same bands and bins"):
        auc_from_histograms(np.ones((3, 8)), np.ones((3, 9)))
    with pytest.raises(ShapeError, match=r"\(K, C, n_bins\)"):
        mutual_information_from_histograms(np.ones((3, 8)))
