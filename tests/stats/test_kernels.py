"""Hot loops: exact compiled binning, in-place chunk accumulation, class layout, threaded from_arrays."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from bandselect.errors import InputError, ShapeError
from bandselect.stats import BandStatistics, histogram_edges, kernels
from bandselect.stats.binning import class_histograms
from bandselect.stats.kernels import BinPlan, ChunkAccumulator, class_layout


def _searchsorted_histograms(
    x: np.ndarray, labels: np.ndarray, classes: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-band ``searchsorted`` on the given edges: ``numpy.histogram`` semantics, clipped to the ends."""
    n_bins = edges.shape[1] - 1
    hist = np.zeros((classes.size, x.shape[1], n_bins), np.int64)
    clipped = np.zeros((classes.size, x.shape[1]), np.int64)
    for i, label in enumerate(classes):
        rows = x[labels == label].astype(np.float64)
        for band in range(x.shape[1]):
            v = rows[:, band]
            j = np.clip(np.searchsorted(edges[band], v, side="right") - 1, 0, n_bins - 1)
            hist[i, band] = np.bincount(j, minlength=n_bins)
            clipped[i, band] = np.count_nonzero((v < edges[band, 0]) | (v > edges[band, -1]))
    return hist, clipped


def _cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    normal = rng.normal(size=(3000, 9)).astype(np.float32)
    offset = rng.normal(1e4, 30.0, size=(3000, 5))
    counts = rng.integers(0, 512, size=(3000, 4)).astype(np.uint16)
    scales = (rng.normal(size=(3000, 6)) * 10.0 ** np.arange(-5, 7, 2)).astype(np.float32)
    return [
        ("float32", normal, histogram_edges(normal.min(0), normal.max(0), 2048)),
        ("float64 offset", offset, histogram_edges(offset.min(0), offset.max(0), 4096)),
        # integer data exactly on the edges: every value goes through the exact re-binning
        ("uint16 on edges", counts, histogram_edges(np.zeros(4), np.full(4, 256.0), 256)),
        ("clipped both ends", normal, histogram_edges(np.full(9, -1.0), np.full(9, 0.5), 64)),
        ("one bin", normal, histogram_edges(normal.min(0), normal.max(0), 1)),
        ("wide scales", scales, histogram_edges(scales.min(0), scales.max(0), 2048)),
        # narrow range far from zero: float32 cannot resolve the bins, float64 is used
        ("float64 needed", offset, histogram_edges(np.full(5, 1e4), np.full(5, 1e4 + 1e-3), 2048)),
        ("non-uniform", normal, np.sort(rng.normal(size=(9, 33)), axis=1)),
    ]


@pytest.mark.parametrize("case", range(len(_cases())), ids=[c[0] for c in _cases()])
def test_binning_equals_searchsorted_value_for_value(case: int) -> None:
    _name, x, edges = _cases()[case]
    labels = np.random.default_rng(case).integers(0, 3, size=x.shape[0])
    classes = np.unique(labels)
    hist, clipped = class_histograms(x, labels, classes, edges)
    ref_hist, ref_clipped = _searchsorted_histograms(x, labels, classes, edges)
    np.testing.assert_array_equal(hist, ref_hist)
    np.testing.assert_array_equal(clipped, ref_clipped)


def test_binning_plan_choice() -> None:
    assert BinPlan(histogram_edges(np.zeros(2), np.ones(2), 2048), 1).arithmetic
    assert BinPlan(histogram_edges(np.full(2, 1e4), np.full(2, 1e4 + 1e-3), 2048), 1).arithmetic
    uneven = np.array([[0.0, 1.0, 3.0], [0.0, 0.5, 2.0]])
    plan = BinPlan(uneven, 1)
    assert not plan.arithmetic  # binary search on the edges
    hist, clipped = class_histograms(
        np.array([[0.0, 0.0], [2.9, 2.0], [3.5, -1.0]]), np.zeros(3), np.zeros(1), uneven
    )
    assert hist.tolist() == [[[1, 2], [2, 1]]]  # the top edge is in the last bin, clipped values at the ends
    assert clipped.tolist() == [[1, 1]]


def test_accumulator_over_many_blocks_matches_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernels, "BLOCK_VALUES", 64)  # many blocks
    rng = np.random.default_rng(3)
    x = rng.normal(1e4, 30.0, size=(2000, 6))
    x[1500:] += 500.0  # drift: later blocks far from the first block's shift
    labels = np.where(np.arange(2000) < 1700, 0, 2)  # class 2 first appears in a late block
    classes, index = class_layout(labels)
    edges = histogram_edges(x.min(0), x.max(0), 128)
    acc = ChunkAccumulator(6, classes.size, edges)
    acc.add_all(x, index)
    result = acc.result()
    for k, label in enumerate(classes):
        xk = x[labels == label]
        assert result["counts"][k] == xk.shape[0]
        np.testing.assert_allclose(result["class_means"][k], xk.mean(0), rtol=1e-14)
        centred = xk - xk.mean(0)
        np.testing.assert_allclose(result["class_comoments"][k], centred.T @ centred, rtol=1e-10)
        np.testing.assert_array_equal(result["class_minimum"][k], xk.min(0))
        np.testing.assert_array_equal(result["class_maximum"][k], xk.max(0))
    ref_hist, _ = _searchsorted_histograms(x, labels, classes, edges)
    np.testing.assert_array_equal(result["histograms"], ref_hist)


def test_class_layout_kinds() -> None:
    classes, index = class_layout(np.array([1, 0, 1, 1]))
    assert classes.tolist() == [0, 1] and index.tolist() == [1, 0, 1, 1]
    classes, index = class_layout(np.array([7, 3, 7]))
    assert classes.tolist() == [3, 7] and index.tolist() == [1, 0, 1]
    classes, index = class_layout(np.array([-2, 5, -2]))
    assert classes.tolist() == [-2, 5] and index.tolist() == [0, 1, 0]
    classes, index = class_layout(np.full(5, 4))
    assert classes.tolist() == [4] and index is None
    classes, index = class_layout(np.zeros(0, np.int64))
    assert classes.size == 0 and index is None


def test_threaded_from_arrays_equals_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5000, 7)).astype(np.float32)
    y = rng.integers(0, 3, size=5000)
    edges = histogram_edges(x.min(0), x.max(0), 256)
    single = BandStatistics.from_arrays(x, y, hist_edges=edges)
    monkeypatch.setattr(kernels, "PARALLEL_MIN_VALUES", 1000)
    assert kernels.parallel_threads(999) == 1
    with threadpool_limits(limits=1, user_api="blas"):
        assert kernels.parallel_threads(x.size) == 1  # the caller's BLAS limit also limits the split
    threaded = BandStatistics.from_arrays(x, y, hist_edges=edges)
    np.testing.assert_array_equal(threaded.counts, single.counts)
    np.testing.assert_allclose(threaded.class_means, single.class_means, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(threaded.class_comoments, single.class_comoments, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(threaded.class_minimum, single.class_minimum)
    np.testing.assert_array_equal(threaded.histograms, single.histograms)
    edges = histogram_edges(np.zeros(3), np.ones(3), 4)
    empty = BandStatistics.from_arrays(np.zeros((0, 3)), hist_edges=edges)
    assert empty.count == 0 and empty.histograms.shape == (0, 3, 4)


def test_accumulator_checks_what_the_compiled_loops_do_not() -> None:
    acc = ChunkAccumulator(3, 2, histogram_edges(np.zeros(3), np.ones(3), 8))
    with pytest.raises(InputError, match="class positions"):
        acc.add_all(np.zeros((4, 3)), np.array([0, 1, 2, 0]))  # position 2 of two classes
    with pytest.raises(ShapeError):
        acc.add_all(np.zeros((4, 2)), None)
    frozen = np.random.default_rng(1).random((50, 3))
    frozen.setflags(write=False)  # read-only input (e.g. a memory-mapped cube) takes the same kernels
    acc.add_all(frozen, np.arange(50) % 2)
    result = acc.result()
    assert result["counts"].tolist() == [25, 25]
    np.testing.assert_array_equal(result["class_maximum"][1], frozen[1::2].max(0))
    assert result["histograms"].sum() == 150


def test_a_nan_that_skipped_prepare_pixels_stays_inside_the_count_buffer() -> None:
    acc = ChunkAccumulator(2, 1, histogram_edges(np.zeros(2), np.ones(2), 4), moments=False)
    acc.add_all(np.array([[np.nan, 0.5], [0.25, np.nan]]), None)
    result = acc.result()
    assert result["histograms"].tolist() == [[[1, 1, 0, 0], [1, 0, 1, 0]]]  # NaN below the edges
    assert result["n_clipped"].tolist() == [[1, 1]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_any_nan_or_inf_makes_its_bands_range_not_finite(dtype: type) -> None:
    # statistics_of and the store's chunk partials skip the NaN test when the pass's own min/max are
    # finite: every NaN/Inf, at any row and in any band (vector lanes, block edges), must show there.
    rng = np.random.default_rng(3)
    base = rng.normal(size=(5000, 61)).astype(dtype)
    classes = (np.arange(5000) % 3 == 0).astype(np.int64)
    for row, band, bad in [(0, 0, np.nan), (4999, 60, np.nan), (2147, 33, np.inf), (2148, 7, -np.inf),
                           (1234, 59, np.nan)]:  # fmt: skip
        x = base.copy()
        x[row, band] = bad
        low, high = kernels.column_min_max(x)
        assert not (np.isfinite(low[band]) and np.isfinite(high[band]))
        # Split over threads (statistics_of on large inputs): the same min/max, NaN included.
        for n_threads in (2, 3):
            np.testing.assert_array_equal(kernels.column_min_max(x, n_threads), (low, high))
        assert not kernels.range_is_finite(low, high) and kernels.range_is_finite(
            *kernels.column_min_max(base)
        )
        assert np.all(np.isfinite(np.delete(low, band))) and np.all(np.isfinite(np.delete(high, band)))
        np.testing.assert_array_equal(np.delete(low, band), np.delete(x, band, axis=1).min(0))
        acc = ChunkAccumulator(61, 2, None)
        acc.add_all(x, classes)
        result = acc.result()
        k = classes[row]
        assert not (
            np.isfinite(result["class_minimum"][k, band]) and np.isfinite(result["class_maximum"][k, band])
        )


def test_split_range_scan_equals_one_thread_and_handles_tiny_inputs() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1001, 7)).astype(np.float32)
    expected = (x.min(0).astype(np.float64), x.max(0).astype(np.float64))
    for n_threads in (1, 2, 4):
        np.testing.assert_array_equal(kernels.column_min_max(x, n_threads), expected)
    one_row = kernels.column_min_max(x[:1], 4)  # more threads than rows: one part
    np.testing.assert_array_equal(one_row, (x[0].astype(np.float64), x[0].astype(np.float64)))
    empty_low, empty_high = kernels.column_min_max(x[:0], 2)
    assert np.all(empty_low == np.inf) and np.all(empty_high == -np.inf)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # no Gram of NaN: the pass stops at the bad block
def test_statistics_of_raises_and_omits_non_finite_pixels_as_before() -> None:
    from bandselect.errors import NonFiniteError
    from bandselect.stats import statistics_of

    x = np.random.default_rng(4).normal(size=(400, 6)).astype(np.float32)
    y = np.arange(400) % 4 == 0
    x[17, 2], x[300, 5] = np.nan, np.inf
    with pytest.raises(NonFiniteError, match="2 pixels"):
        statistics_of(x, y, n_bins=32)
    omitted = statistics_of(x, y, n_bins=32, nan_policy="omit")
    keep = np.isfinite(x).all(axis=1)
    reference = statistics_of(x[keep], y[keep], n_bins=32)
    assert omitted.n_nonfinite == 2 and omitted.count == reference.count == 398
    np.testing.assert_array_equal(omitted.histograms, reference.histograms)
    np.testing.assert_allclose(omitted.correlation, reference.correlation, atol=1e-12)
    valid = keep.copy()  # ignored pixels may hold NaN: no error, the same statistics
    assert statistics_of(x, y, n_bins=32, valid=valid).count == 398


def test_two_threads_absorbed_equal_one_thread() -> None:
    # from_pixels splits large inputs over threads and adds their accumulators in place (absorb).
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(40_000, 7)) * [1, 10, 100, 1e3, 1e-2, 5, 1] + 1e4).astype(np.float32)
    labels = rng.integers(0, 3, size=40_000)
    labels[:20_000][labels[:20_000] == 2] = 1  # class 2 only in the second half: absent from one thread
    edges = histogram_edges(x.min(0).astype(np.float64), x.max(0).astype(np.float64), 64)
    one = BandStatistics.from_pixels(x, labels, edges, n_threads=1)
    two = BandStatistics.from_pixels(x, labels, edges, n_threads=2)
    three = BandStatistics.from_pixels(x, labels, edges, n_threads=3)
    for other in (two, three):
        np.testing.assert_array_equal(other.counts, one.counts)
        np.testing.assert_array_equal(other.histograms, one.histograms)
        np.testing.assert_array_equal(other.class_minimum, one.class_minimum)
        np.testing.assert_allclose(other.class_means, one.class_means, rtol=1e-12)
        np.testing.assert_allclose(other.class_comoments, one.class_comoments, rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(other.correlation, one.correlation, atol=1e-12)
    with pytest.raises(InputError, match="accumulator"):
        ChunkAccumulator(7, 3, edges).absorb(ChunkAccumulator(7, 2, edges))


def test_the_worker_pool_is_made_again_in_a_forked_child() -> None:
    import multiprocessing

    kernels.worker_pool()  # the parent's pool exists
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        x = np.random.default_rng(6).normal(size=(300_000, 30)).astype(np.float32)
        count = pool.apply_async(_count_in_two_threads, (x,)).get(timeout=60)
    assert count == 300_000


def _count_in_two_threads(x: np.ndarray) -> int:
    return BandStatistics.from_pixels(x, np.zeros(x.shape[0], np.int64), None, n_threads=2).count


def test_bin_plans_are_shared_for_equal_edges_and_never_stale() -> None:
    x = np.linspace(0.0, 1.0, 101)[:, None].repeat(2, axis=1)
    edges = histogram_edges(np.zeros(2), np.ones(2), 4)
    assert kernels.bin_plan(edges, 1) is kernels.bin_plan(edges.copy(), 1)
    assert kernels.bin_plan(edges, 2) is not kernels.bin_plan(edges, 1)
    before = class_histograms(x, np.zeros(101, np.int64), np.array([0]), edges)[0]
    edges[:, :] = histogram_edges(np.full(2, 0.5), np.ones(2), 4)  # the caller changes its array in place
    after = class_histograms(x, np.zeros(101, np.int64), np.array([0]), edges)[0]
    assert before[0, 0].tolist() == np.histogram(x[:, 0], bins=np.linspace(0.0, 1.0, 5))[0].tolist()
    inside = np.histogram(x[:, 0], bins=edges[0])[0]
    inside[0] += np.count_nonzero(x[:, 0] < 0.5)  # values below the new edges clipped into the first bin
    assert after[0, 0].tolist() == inside.tolist()


def test_bin_totals_widen_to_int64_before_a_bin_could_overflow(monkeypatch: pytest.MonkeyPatch) -> None:
    # int32 totals hold up to _INT32_ROWS rows (a bin never counts more); past that they become int64.
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3000, 5))
    labels = rng.integers(0, 2, size=3000)
    classes, index = class_layout(labels)
    edges = histogram_edges(x.min(0), x.max(0), 32)
    narrow = ChunkAccumulator(5, classes.size, edges)
    narrow.add_all(x, index)
    assert narrow.counts is not None and narrow.counts.dtype == np.int32
    monkeypatch.setattr(kernels, "_INT32_ROWS", 1000)
    monkeypatch.setattr(kernels, "_ROWS_PER_FLUSH", 700)  # flushes of 700 rows: widened at the second
    wide = ChunkAccumulator(5, classes.size, edges)
    wide.add_all(x, index)
    assert wide.counts is not None and wide.counts.dtype == np.int64 and wide.counted_rows == 3000
    halves = ChunkAccumulator(5, classes.size, edges)
    halves.add_all(x[:900], index[:900])
    assert halves.counts is not None and halves.counts.dtype == np.int32
    other = ChunkAccumulator(5, classes.size, edges)
    other.add_all(x[900:1500], index[900:1500])
    halves.absorb(other)  # 1,500 rows together: past the (patched) int32 limit
    assert halves.counts.dtype == np.int64 and halves.counted_rows == 1500
    reference, _ = _searchsorted_histograms(x, labels, classes, edges)
    np.testing.assert_array_equal(wide.result()["histograms"], reference)
    np.testing.assert_array_equal(narrow.result()["histograms"], reference)
    partial, _ = _searchsorted_histograms(x[:1500], labels[:1500], classes, edges)
    np.testing.assert_array_equal(halves.result()["histograms"], partial)
    assert narrow.result()["histograms"].dtype == np.int64


def test_statistics_of_bins_on_the_moments_pass_range_as_one_accumulation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # statistics_of takes the edges from its moments pass's min/max and bins in a second,
    # histogram-only pass (threaded): the same statistics as one accumulation on those edges.
    from bandselect.stats import data_edges, memory, statistics_of

    monkeypatch.setattr(kernels, "PARALLEL_MIN_VALUES", 1000)  # the moments pass split too, where it can
    monkeypatch.setattr(memory, "parallel_threads", lambda n_values: 3)  # the histograms: 3 threads
    rng = np.random.default_rng(9)
    x = (rng.normal(size=(30_000, 6)) * [1, 10, 1e3, 1e-2, 5, 1] + 50).astype(np.float32)
    labels = rng.integers(0, 3, size=30_000)
    two_pass = statistics_of(x, labels, n_bins=256)
    edges = data_edges(x.min(0), x.max(0), 256)
    one_pass = BandStatistics.from_pixels(x, labels, edges, n_threads=1)
    np.testing.assert_array_equal(two_pass.hist_edges, edges)
    np.testing.assert_array_equal(two_pass.histograms, one_pass.histograms)
    np.testing.assert_array_equal(two_pass.n_clipped, one_pass.n_clipped)
    np.testing.assert_array_equal(two_pass.counts, one_pass.counts)
    np.testing.assert_allclose(two_pass.class_comoments, one_pass.class_comoments, rtol=1e-9, atol=1e-6)
    assert two_pass.n_clipped.sum() == 0  # the edges cover the data they came from


def test_a_class_layout_of_other_labels_is_refused() -> None:
    from bandselect.stats.kernels import class_layout, layout_of

    labels = np.array([0, 1, 1, 0, 2], np.int64)
    assert layout_of(labels, None)[0].tolist() == [0, 1, 2]
    with pytest.raises(InputError, match="class layout"):
        layout_of(labels, class_layout(labels[:3]))  # positions of other pixels
    with pytest.raises(InputError, match="class layout"):
        layout_of(labels, (np.array([0, 1, 2]), None))  # several classes but no positions
