"""BandStatistics: construction, merge property, persistence and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from bandselect.errors import (
    DTypeError,
    FileFormatError,
    InputError,
    LabelError,
    NonFiniteError,
    ShapeError,
)
from bandselect.stats import BandStatistics, histogram_edges, histograms_from_arrays, merge_histograms


def _assert_same(a: BandStatistics, b: BandStatistics, rtol: float = 1e-9) -> None:
    np.testing.assert_array_equal(a.classes, b.classes)
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_allclose(a.class_means, b.class_means, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a.class_comoments, b.class_comoments, rtol=rtol, atol=1e-9)
    np.testing.assert_array_equal(a.class_minimum, b.class_minimum)
    np.testing.assert_array_equal(a.class_maximum, b.class_maximum)
    if a.histograms is not None:
        np.testing.assert_array_equal(a.histograms, b.histograms)


def test_moments_match_numpy_per_class() -> None:
    rng = np.random.default_rng(0)
    cube = rng.normal(5.0, 2.0, size=(3, 8, 9, 5))
    mask = rng.integers(0, 3, size=(3, 8, 9, 1))
    stats = BandStatistics.from_arrays(cube, mask)
    x, labels = cube.reshape(-1, 5), mask.reshape(-1)
    np.testing.assert_array_equal(stats.classes, [0, 1, 2])
    assert stats.count == x.shape[0]
    np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance, np.cov(x.T, bias=True), rtol=1e-10)
    np.testing.assert_allclose(stats.gram, x.T @ x, rtol=1e-12)
    np.testing.assert_allclose(stats.sum, x.sum(0), rtol=1e-12)
    np.testing.assert_allclose(stats.sum_of_squares, (x**2).sum(0), rtol=1e-12)
    for c in range(3):
        xc = x[labels == c]
        assert stats.class_count(c) == xc.shape[0]
        np.testing.assert_allclose(stats.class_mean(c), xc.mean(0), rtol=1e-12)
        np.testing.assert_allclose(stats.class_covariance(c), np.cov(xc.T, bias=True), rtol=1e-10)
        np.testing.assert_allclose(stats.class_gram(c), xc.T @ xc, rtol=1e-12)
    np.testing.assert_allclose(sum(stats.class_gram(c) for c in range(3)), stats.gram, rtol=1e-12)
    np.testing.assert_array_equal(stats.minimum, x.min(0))
    np.testing.assert_array_equal(stats.maximum, x.max(0))


def test_mask_kinds_and_no_mask() -> None:
    cube = np.arange(24, dtype=np.float32).reshape(4, 3, 2)
    assert BandStatistics.from_arrays(cube).classes.tolist() == [0]
    boolean = BandStatistics.from_arrays(cube, np.eye(4, 3, dtype=bool))
    assert boolean.classes.tolist() == [0, 1] and boolean.class_count(1) == 3
    assert BandStatistics.from_arrays(cube.reshape(-1, 2), np.arange(12) % 4).classes.tolist() == [0, 1, 2, 3]


def test_torch_tensors_by_duck_typing() -> None:
    torch = pytest.importorskip("torch")
    cube = torch.rand(2, 4, 4, 3)
    mask = torch.rand(2, 4, 4, 1) > 0.5
    stats = BandStatistics.from_arrays(cube, mask)
    ref = BandStatistics.from_arrays(cube.numpy(), mask.numpy())
    np.testing.assert_allclose(stats.covariance, ref.covariance)


@pytest.mark.parametrize("seed", range(4))
def test_merge_any_split_any_order_equals_whole(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(1e4, 30.0, size=(997, 6))  # large offset: centred merging must keep precision
    labels = rng.integers(0, 3, size=997)
    edges = histogram_edges(x.min(0), x.max(0), 64)
    whole = BandStatistics.from_arrays(x, labels, hist_edges=edges)
    cuts = np.sort(rng.choice(np.arange(1, 997), size=7, replace=False))
    parts = [
        BandStatistics.from_arrays(xp, lp, hist_edges=edges)
        for xp, lp in zip(np.split(x, cuts), np.split(labels, cuts), strict=True)
    ]
    order = rng.permutation(len(parts))
    merged = parts[order[0]]
    for i in order[1:]:
        merged = merged.merge(parts[i]) if rng.random() < 0.5 else parts[i].merge(merged)
    _assert_same(merged, whole)
    tree = parts[0].merge(parts[1]).merge(parts[2].merge(parts[3]))
    for p in parts[4:]:
        tree = tree.merge(p)
    _assert_same(tree, whole)
    assert merged.merge(BandStatistics.empty(6, hist_edges=edges)).count == whole.count
    # One node merging all parts at once (the reduction tree's), classes absent from some parts.
    _assert_same(BandStatistics.merge_all([parts[i] for i in order]), whole)
    some = [
        BandStatistics.from_arrays(xp[lp != k], lp[lp != k], hist_edges=edges)
        for k, (xp, lp) in enumerate(zip(np.split(x, cuts)[:3], np.split(labels, cuts)[:3], strict=True))
    ]
    _assert_same(BandStatistics.merge_all(some), some[0].merge(some[1]).merge(some[2]))
    assert BandStatistics.merge_all([whole]) is whole


def test_merge_with_disjoint_classes() -> None:
    x = np.random.default_rng(1).normal(size=(40, 3))
    a = BandStatistics.from_arrays(x[:20], np.zeros(20, int))
    b = BandStatistics.from_arrays(x[20:], np.full(20, 2))
    merged = a.merge(b)
    assert merged.classes.tolist() == [0, 2] and merged.counts.tolist() == [20, 20]
    np.testing.assert_allclose(merged.covariance, np.cov(x.T, bias=True), rtol=1e-12)


def test_save_load_round_trip(tmp_path) -> None:
    x = np.random.default_rng(2).normal(size=(100, 4))
    y = np.arange(100) % 2
    stats = BandStatistics.from_arrays(x, y, hist_edges=histogram_edges(x.min(0), x.max(0), 16))
    path = stats.save(tmp_path / "s" / "stats.npz")
    loaded = BandStatistics.load(path)
    _assert_same(loaded, stats, rtol=0)
    np.testing.assert_array_equal(loaded.hist_edges, stats.hist_edges)
    assert path.stat().st_size < 20_000
    with pytest.raises(FileFormatError, match="recompute"):
        BandStatistics.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "old.npz", format_version=np.asarray(99))
    with pytest.raises(FileFormatError, match="version"):
        BandStatistics.load(tmp_path / "old.npz")


def test_arrays_are_read_only() -> None:
    stats = BandStatistics.from_arrays(np.ones((4, 2)))
    with pytest.raises(ValueError):
        stats.class_means[0, 0] = 3.0


def test_merge_mismatch_errors() -> None:
    a = BandStatistics.from_arrays(np.ones((4, 3)))
    with pytest.raises(ShapeError, match="3 bands"):
        a.merge(BandStatistics.from_arrays(np.ones((4, 2))))
    x = np.random.default_rng(0).normal(size=(10, 3))
    with_hist = BandStatistics.from_arrays(x, hist_edges=histogram_edges(x.min(0), x.max(0), 8))
    with pytest.raises(InputError, match="histograms"):
        a.merge(with_hist)
    other = BandStatistics.from_arrays(x, hist_edges=histogram_edges(x.min(0) - 1, x.max(0), 8))
    with pytest.raises(InputError, match="edges"):
        with_hist.merge(other)
    with pytest.raises(InputError, match="edges"):
        BandStatistics.merge_all([with_hist, with_hist, other])
    with pytest.raises(InputError, match="at least one"):
        BandStatistics.merge_all([])
    with pytest.raises(InputError, match="ndarray"):
        BandStatistics.merge_all([a, np.ones(3)])  # type: ignore[list-item]


def test_nan_pixels_raise_or_are_omitted_and_counted() -> None:
    x = np.random.default_rng(0).normal(size=(50, 4))
    x[[3, 7], 1] = np.nan
    x[11, 0] = np.inf
    with pytest.raises(NonFiniteError, match="3 pixels"):
        BandStatistics.from_arrays(x)
    stats = BandStatistics.from_arrays(x, nan_policy="omit")
    assert stats.count == 47 and stats.n_nonfinite == 3
    assert np.all(np.isfinite(stats.covariance))
    with pytest.raises(InputError, match="nan_policy"):
        BandStatistics.from_arrays(x, nan_policy="drop")  # type: ignore[arg-type]


def test_valid_mask_excludes_and_counts() -> None:
    x = np.random.default_rng(0).normal(size=(5, 6, 3))
    valid = np.ones((5, 6), bool)
    valid[0] = False
    stats = BandStatistics.from_arrays(x, valid=valid)
    assert stats.count == 24 and stats.n_invalid == 6


def test_bad_shapes_and_dtypes() -> None:
    with pytest.raises(ShapeError, match="mask"):
        BandStatistics.from_arrays(np.ones((4, 4, 3)), np.ones((4, 3)))
    with pytest.raises(DTypeError, match="mask"):
        BandStatistics.from_arrays(np.ones((4, 3)), np.array([0.5, 1, 0, 1]))
    with pytest.raises(DTypeError, match="cube"):
        BandStatistics.from_arrays(np.array([["a", "b"]]))
    with pytest.raises(ShapeError, match="hist_edges"):
        BandStatistics.from_arrays(np.ones((4, 3)), hist_edges=np.ones((2, 5)))


def test_class_absent_is_a_label_error_naming_it() -> None:
    x = np.random.default_rng(0).normal(size=(30, 3))
    only_negative = BandStatistics.from_arrays(x, np.zeros(30, int))
    with pytest.raises(LabelError, match="positive"):
        _ = only_negative.fisher
    no_background = BandStatistics.from_arrays(x, 1 + np.arange(30) % 3)
    with pytest.raises(LabelError, match="negative class 0"):
        _ = no_background.fisher
    with pytest.raises(LabelError, match="class 7"):
        no_background.one_vs_rest(7)
    binary = no_background.one_vs_rest(2)
    assert binary.classes.tolist() == [0, 1] and binary.counts.tolist() == [20, 10]


def test_constant_bands_give_zero_scores_and_no_nan() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    x[:, 2] = 0.1  # constant, with a value that is not exact in binary
    y = rng.random(200) < 0.5
    first = BandStatistics.from_arrays(x, y)
    stats = BandStatistics.from_arrays(x, y, hist_edges=histogram_edges(first.minimum, first.maximum, 32))
    assert stats.constant_bands.tolist() == [False, False, True, False]
    for values in (stats.fisher, stats.auc, stats.mi, stats.correlation, stats.variance):
        assert np.all(np.isfinite(values))
    assert stats.fisher[2] == 0 and stats.mi[2] == 0 and stats.auc[2] == 0.5 and stats.variance[2] == 0
    assert np.all(stats.correlation[2] == 0) and np.all(stats.correlation[:, 2] == 0)


def test_values_outside_edges_are_clipped_and_counted() -> None:
    x = np.arange(11.0)[:, None]
    stats = BandStatistics.from_arrays(x, hist_edges=np.array([[2.0, 5.0, 8.0]]))
    # 0, 1 below and 9, 10 above go to the end bins: [0..4], [5..10]
    assert stats.histograms.tolist() == [[[5, 6]]] and stats.n_clipped.tolist() == [[4]]


def test_histogram_only_partials_attach_to_first_pass_moments() -> None:
    # The streamed second pass bins without recomputing moments: merged over any split and attached
    # with with_histograms, it must equal a one-pass computation with the edges known up front.
    rng = np.random.default_rng(11)
    cube = rng.normal(size=(3, 20, 17, 5)).astype(np.float32)
    mask = rng.random((3, 20, 17)) < 0.3
    edges = histogram_edges(cube.reshape(-1, 5).min(0), cube.reshape(-1, 5).max(0), 32)
    first_pass = BandStatistics.from_arrays(cube, mask)
    parts = [histograms_from_arrays(cube[i], mask[i], hist_edges=edges) for i in (2, 0, 1)]
    combined = first_pass.with_histograms(edges, *merge_histograms(*parts))
    one_pass = BandStatistics.from_arrays(cube, mask, hist_edges=edges)
    _assert_same(combined, one_pass)
    np.testing.assert_array_equal(combined.histograms, one_pass.histograms)
    np.testing.assert_allclose(combined.auc, one_pass.auc)
