"""Hot loops of the statistics engine: per-chunk accumulation of moments and histograms in one read.

One :class:`ChunkAccumulator` reads a chunk's pixels once, block by block, and keeps per-class running
sums in place (no :class:`~bandselect.stats.partial.BandStatistics` per block, no merges inside a chunk).
For each block of :data:`BLOCK_VALUES` values (it stays in cache) the compiled kernel
(:func:`bandselect.stats.native.accumulate`) centres the rows, groups them by class into a float64
buffer, sums them, updates the per-class min/max and counts the histogram bins; BLAS then adds the Gram
matrix of each class's rows of that buffer.

Moments: per class, pixels are centred on a fixed *shift* (the mean of the class's rows in the first
block where it occurs) and ``n``, ``Σ d`` and ``Σ d dᵀ`` (``d = x − shift``) are summed; the centred
co-moment is ``Σ d dᵀ − (Σ d)(Σ d)ᵀ / n``. The shift is within a few standard deviations of the
chunk's class mean, so the subtraction loses only a few bits (raw uint16 counts with a 10⁴ offset keep
full precision). The Gram uses BLAS ``syrk`` (``d.T @ d``, STACK_NOTES: never ``einsum``) in float64:
the 1e-9 correlation tolerance needs float64 products and sums.

Histograms: :class:`BinPlan` gives ``numpy.histogram``'s exact bin of every value (see there), counted
at ``(class · C + band) · (n_bins + 2) + extended_bin``; the two extra bins per band collect values below
and above the edges, which gives the clipped counts from the same count.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import ThreadpoolController

from bandselect.errors import InputError, ShapeError
from bandselect.stats import native

#: Values (pixels × bands) per block of the compiled pass: the block and its centred float64 copy stay
#: in cache between the kernels and the BLAS Gram that reads the copy next. Measured 2^15 .. 2^19 values
#: on a store's chunks: 2^15 was 25 % slower (more, smaller calls), 2^16 .. 2^19 within 7 %, 2^17 best.
BLOCK_VALUES = 1 << 17
#: Largest bin-position error (in bins) of the float64 arithmetic binning; above it (very non-uniform
#: edges) values are binned by binary search. Values closer than the error to an edge are re-binned
#: against the edge values, so it only trades speed, never answers.
MAX_TOLERANCE = 0.2

#: ``BandStatistics.from_arrays`` splits inputs of at least this many values per thread over the cores
#: (the compiled kernels and BLAS release the GIL); smaller inputs stay on one thread.
PARALLEL_MIN_VALUES = 1 << 22

_SCRATCH = threading.local()
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
#: Plans kept by :func:`bin_plan` (jobs bin on one set of edges; a few in flight at once at most).
_PLAN_CACHE_SIZE = 4
_PLANS: list[tuple[np.ndarray, int, BinPlan]] = []
_PLAN_LOCK = threading.Lock()


def _forget_pool_after_fork() -> None:
    # A forked child has none of the parent's threads: a pool inherited from it would queue work that
    # no thread runs. The child makes its own on first use.
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)
# Made at import (a few ms: it scans the loaded libraries) so that no first call pays for it.
_CONTROLLER = ThreadpoolController()


def thread_controller() -> ThreadpoolController:
    """The process's :class:`threadpoolctl.ThreadpoolController` (the loaded BLAS/OpenMP libraries).

    Made once: its limits and thread counts are read live from the libraries, so a
    ``threadpool_limits`` in force is seen, but the scan of the loaded libraries happens once.
    """
    return _CONTROLLER


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity on Linux, else the CPU count), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parallel_threads(n_values: int) -> int:
    """Threads to split ``n_values`` values over in ``BandStatistics.from_arrays``.

    At most one per :data:`PARALLEL_MIN_VALUES` values, the usable cores and the BLAS thread limit in
    force. Following the BLAS limit gives callers one knob: under ``threadpool_limits(1)`` (as in
    :func:`~bandselect.stats.compute_statistics`'s Dask tasks, or when the caller parallelises
    itself) nothing is split, so threads never multiply.
    """
    wanted = int(n_values) // PARALLEL_MIN_VALUES
    if wanted < 2:
        return 1
    cores = usable_cores()
    blas = [int(lib.num_threads) for lib in thread_controller().lib_controllers if lib.user_api == "blas"]
    return max(1, min(cores, wanted, min(blas) if blas else cores))


def worker_pool() -> ThreadPoolExecutor:
    """The process's threads for splitting in-memory statistics over the cores (made on first use).

    Kept between calls: starting threads per call cost more than a small input's arithmetic, and
    their per-thread :func:`scratch` buffers stay allocated and warm.
    """
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=usable_cores(), thread_name_prefix="bandselect-stats")
        return _POOL


def scratch(name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """A per-thread reusable buffer.

    Fresh multi-megabyte temporaries are new pages for the allocator on every block, and the page
    faults cost more than the arithmetic; reusing one buffer per thread keeps them warm in cache.
    Names must not be reused by nested callers in the same thread.
    """
    pool: dict[tuple[str, np.dtype], np.ndarray] = _SCRATCH.__dict__.setdefault("pool", {})
    kind = np.dtype(dtype)
    size = math.prod(shape)
    buffer = pool.get((name, kind))
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, kind)
        pool[(name, kind)] = buffer
    return buffer[:size].reshape(shape)


#: :func:`class_layout`'s result: the sorted distinct labels and each pixel's position among them.
ClassLayout = tuple[np.ndarray, np.ndarray | None]


def class_layout(labels: np.ndarray) -> ClassLayout:
    """Sorted distinct labels and each pixel's position among them (None when there is one class).

    Small non-negative labels (bool masks, class ids) are counted with ``bincount`` instead of sorted.
    """
    if labels.size == 0:
        return np.zeros(0, np.int64), None
    low, high = int(labels.min()), int(labels.max())
    if low == high:
        return np.array([low], np.int64), None
    if low >= 0 and high < 4 * labels.size + 1024:
        classes = np.flatnonzero(np.bincount(labels, minlength=high + 1)).astype(np.int64)
        if classes.size == high + 1:
            return classes, labels.astype(np.int64, copy=False)  # labels 0..K-1 are their own positions
        lookup = np.zeros(high + 1, np.int64)
        lookup[classes] = np.arange(classes.size)
        return classes, lookup[labels]
    classes, inverse = np.unique(labels, return_inverse=True)
    return classes.astype(np.int64), inverse.reshape(-1).astype(np.int64, copy=False)


def layout_of(labels: np.ndarray, layout: ClassLayout | None) -> ClassLayout:
    """``layout`` when a caller computed :func:`class_layout` of ``labels`` already (a second pass over
    the same pixels), checked against their shape; else computed here."""
    if layout is None:
        return class_layout(labels)
    classes, index = layout
    shape_ok = index.shape == labels.shape if index is not None else np.asarray(classes).size <= 1
    if not shape_ok:
        raise InputError(
            "class layout",
            expected=f"class_layout(labels) of these {labels.size} labels",
            found=f"{np.asarray(classes).size} classes, positions {None if index is None else index.shape}",
            fix="pass layout=class_layout(labels) of the same labels, or leave it out",
        )
    return classes, index


def kernel_input(block: np.ndarray) -> np.ndarray:
    """``block`` as the compiled kernels take it: C-contiguous float32 or float64.

    Float32 and float64 pass as they are; integers and bools of up to 16 bits become float32 and wider
    ones float64 (exact up to 2^53, as every float64 computation of the engine).
    """
    if block.dtype not in native.PIXEL_DTYPES:
        exact_in_f32 = block.dtype == np.bool_ or (block.dtype.kind in "iu" and block.dtype.itemsize <= 2)
        block = block.astype(np.float32 if exact_in_f32 else np.float64)
    return np.ascontiguousarray(block)


def row_bounds(n_rows: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ``(start, stop)`` row ranges covering ``n_rows`` rows, sizes within one."""
    return [(n_rows * i // parts, n_rows * (i + 1) // parts) for i in range(parts)]


def column_min_max(block: np.ndarray, n_threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per-column min and max of an ``(R, C)`` block, as float64 (one compiled pass).

    A NaN anywhere in a column makes its min and max NaN, an Inf its min or max infinite.
    ``n_threads`` > 1 splits the rows over :func:`worker_pool` (the scan is memory-bound: two threads
    took 2.7 against 5.1 ms for 16 M float32 values on this 2-core machine; an earlier, busier VM gave
    8.3 against 6.4 ms, so callers pass :func:`parallel_threads`, which follows the BLAS limit).
    """
    low = np.full(block.shape[1], np.inf)
    high = np.full(block.shape[1], -np.inf)
    n_rows = block.shape[0]
    parts = max(1, min(int(n_threads), n_rows))
    if parts == 1:
        if n_rows:
            native.column_range(kernel_input(block), low, high)
        return low, high

    def scan(bound: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        return column_min_max(block[bound[0] : bound[1]])

    for part_low, part_high in worker_pool().map(scan, row_bounds(n_rows, parts)):
        # np.minimum propagates NaN as the compiled scan does.
        np.minimum(low, part_low, out=low)
        np.maximum(high, part_high, out=high)
    return low, high


def range_is_finite(low: np.ndarray, high: np.ndarray) -> bool:
    """Whether per-band (or per-class) minima and maxima from the compiled pass are all finite.

    Those passes propagate NaN and keep ±Inf, so a finite range means the values behind it were all
    finite: the callers that skip ``prepare_pixels``' NaN test (``check_finite=False``) rely on it.
    """
    return bool(np.all(np.isfinite(low)) and np.all(np.isfinite(high)))


class BinPlan:
    """How the compiled kernel bins values on per-band edges: ``numpy.histogram``'s bins, exactly.

    The bin of a value is ``[e_i, e_{i+1})``, the last bin closed; values outside go to the end bins
    and are counted as clipped. Uniform edges are binned arithmetically: the *extended* bin
    ``t = (x − (lo − w)) / w`` (0 below the edges, ``n_bins + 1`` above) is computed in float64,
    shifted by the error bound ``tol`` so that ``floor`` is right whenever the fractional part is at
    least ``2 · tol``; the few values closer than that to an edge (values exactly on an edge, e.g.
    integer data) are re-binned against the actual edge values. The bound covers the float rounding of
    the input, shift and scale and the edges' own deviation from uniform spacing, so the result equals
    a per-band ``searchsorted`` on the given edges, value for value. Edges further from uniform than
    :data:`MAX_TOLERANCE` bins are binned by binary search.

    Parameters
    ----------
    edges
        ``(C, n_bins + 1)`` float64, strictly increasing per band.
    n_classes
        Number of classes ``K`` of the count buffer.
    """

    def __init__(self, edges: np.ndarray, n_classes: int) -> None:
        # A private read-only copy: plans are shared between calls (bin_plan) and must not change.
        self.edges = np.array(edges, dtype=np.float64, order="C", copy=True)
        self.edges.setflags(write=False)
        self.n_bands, n_edges = self.edges.shape
        self.n_bins = n_edges - 1
        self.n_classes = int(n_classes)
        self.stride = self.n_bins + 2  # extended bins per (class, band)
        self.class_stride = self.n_bands * self.stride
        self.size = self.n_classes * self.class_stride
        self.band_offset = np.arange(self.n_bands, dtype=np.int64) * self.stride
        nb = self.n_bins
        low, high = self.edges[:, 0], self.edges[:, -1]
        width = (high - low) / nb
        # The edges' deviation from uniform spacing, a few bands at a time: a fresh (C, n_bins) temporary
        # is a megabyte of new pages at the default bins (page faults cost more than this arithmetic).
        steps = np.arange(nb + 1)
        deviation = np.empty(self.n_bands)
        for start in range(0, self.n_bands, _PLAN_BANDS):
            part = slice(start, start + _PLAN_BANDS)
            off = np.multiply(width[part, None], steps)
            off += low[part, None]
            off -= self.edges[part]
            np.abs(off, out=off)
            deviation[part] = off.max(axis=1) / width[part]
        origin = low - width  # extended bin 0 starts one bin below the first edge
        magnitude = np.abs(origin) / width + nb + 4
        # Error bound in bins: at most 8 roundings of relative size 2^-53 (input conversion, shift,
        # subtraction, 1/w, product) on magnitudes up to `magnitude` bins, plus the edges' own
        # deviation from uniform spacing and the float64 error of computing that deviation.
        tol = deviation + 24.0 * 2.0**-53 * magnitude
        self.arithmetic = bool(np.all(tol <= MAX_TOLERANCE))
        self.mode = native.ARITHMETIC if self.arithmetic else native.SEARCH
        self.shift = origin - tol * width
        self.scale = 1.0 / width
        self.certain = 2.0 * tol  # fractional parts below this are re-checked against the edges
        self.top = float(nb + 1.5)  # far above the edges the bin is certain: clip to mid-bin
        for array in (self.band_offset, self.shift, self.scale, self.certain):
            array.setflags(write=False)

    def counts(self) -> np.ndarray:
        """A zeroed flat count buffer ``(K · C · (n_bins + 2),)``."""
        return np.zeros(self.size, np.int64)

    def split(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(histograms (K, C, n_bins), n_clipped (K, C))`` from a flat count buffer."""
        extended = counts.reshape(self.n_classes, self.n_bands, self.stride)
        histograms = extended[:, :, 1:-1].astype(np.int64)  # int32 or int64 totals: int64 out
        below, above = extended[:, :, 0].astype(np.int64), extended[:, :, -1].astype(np.int64)
        histograms[:, :, 0] += below
        histograms[:, :, -1] += above
        return histograms, below + above


_NO_F8 = np.zeros(1)
_NO_F8_2D = np.zeros((1, 1))
_NO_I8 = np.zeros(1, np.int64)
_NO_I4 = np.zeros(1, np.int32)
_NO_I4_2D = np.zeros((1, 1), np.int32)
#: Rows per :meth:`ChunkAccumulator._add_rows` call (``add_all`` splits larger inputs): counted into the
#: int32 totals in place while they total at most :data:`_INT32_ROWS` rows, past that into a zeroed
#: int32 buffer added to the (then int64) totals; each row adds one count per band, so no bin can
#: overflow. (int32 counts keep the scattered increments in the L2.)
_ROWS_PER_FLUSH = 1 << 30
#: Bands per temporary when a plan measures its edges' deviation from uniform spacing (≈ 130 kB).
_PLAN_BANDS = 8
#: Rows up to which int32 bin totals cannot overflow.
_INT32_ROWS = np.iinfo(np.int32).max


def bin_plan(edges: np.ndarray, n_classes: int) -> BinPlan:
    """The :class:`BinPlan` of ``edges`` for ``n_classes`` classes, made once per distinct edges.

    Every chunk of a statistics job bins on the same edges; making the plan (a few arrays of the edges'
    size, new pages each time: ≈ 3 ms here) once per job instead of once per chunk keeps it out of the
    per-chunk cost. Plans are read-only after construction; the last :data:`_PLAN_CACHE_SIZE` are kept.
    """
    values = np.ascontiguousarray(edges, dtype=np.float64)
    # Built under the lock: threads that ask for the same new plan at once (a fit's two halves, a
    # job's Dask tasks) wait for one build instead of each making it (2.6-6.5 ms each on a cold fit).
    with _PLAN_LOCK:
        for cached_edges, cached_classes, plan in _PLANS:
            if cached_classes == n_classes and cached_edges.shape == values.shape:
                if np.array_equal(cached_edges, values):
                    return plan
        plan = BinPlan(values, n_classes)
        _PLANS.insert(0, (plan.edges, int(n_classes), plan))
        del _PLANS[_PLAN_CACHE_SIZE:]
    return plan


class ChunkAccumulator:
    """Moments and/or histograms of one chunk's pixels, accumulated block by block in place.

    Parameters
    ----------
    n_bands
        ``C``.
    n_classes
        ``K``: class positions given to :meth:`add_all` are in ``0..K-1``.
    edges
        Histogram edges, or None for no histograms.
    moments
        Whether to accumulate moments and min/max (False: histograms only).
    """

    def __init__(
        self, n_bands: int, n_classes: int, edges: np.ndarray | None, *, moments: bool = True
    ) -> None:
        k, c = int(n_classes), int(n_bands)
        self.n_bands, self.n_classes, self.moments = c, k, moments
        self.n = np.zeros(k, np.int64)
        self.shift = np.zeros((k, c))
        self.has_shift = np.zeros(k, np.int64)
        self.total = np.zeros((k, c))
        self.gram = np.zeros((k, c, c))
        self.low = np.full((k, c), np.inf)
        self.high = np.full((k, c), -np.inf)
        self.plan = None if edges is None else bin_plan(edges, k)
        # The bin totals, made when the first rows are binned (an accumulator that is never given rows
        # has none) and counted into in place: int32 while no bin can overflow them (a bin never counts
        # more than the rows counted), then int64. Half the fresh pages of int64 totals per thread, and
        # `result` makes the int64 histograms from them in one copy.
        self.counts: np.ndarray | None = None
        self.counted_rows = 0
        # False once a block held NaN/Inf (a caller that skipped prepare_pixels' test): the sums are of
        # no use, the remaining blocks are skipped, and the caller, seeing a class min/max that is not
        # finite, accumulates again under its NaN policy. No Gram of NaN (BLAS would warn), no waste.
        self.finite = True

    def add_all(self, pixels: np.ndarray, class_index: np.ndarray | None) -> None:
        """Accumulate ``pixels`` ``(N, C)`` (class positions ``(N,)``; None: every row in class 0)."""
        for start in range(0, pixels.shape[0], _ROWS_PER_FLUSH):
            stop = start + _ROWS_PER_FLUSH
            self._add_rows(pixels[start:stop], None if class_index is None else class_index[start:stop])

    def _add_rows(self, pixels: np.ndarray, class_index: np.ndarray | None) -> None:
        n_rows = pixels.shape[0]
        plan = self.plan
        if n_rows == 0 or (not self.moments and plan is None) or not self.finite:
            return
        # The compiled loops do not check their indices: check the shapes and class positions here.
        if pixels.ndim != 2 or pixels.shape[1] != self.n_bands:
            raise ShapeError(
                "pixels",
                expected=f"(N, {self.n_bands}) values",
                found=str(pixels.shape),
                fix="pass the prepared (N, C) pixels of the accumulator's band count",
            )
        rows = max(1, BLOCK_VALUES // max(self.n_bands, 1))
        if class_index is None:
            all_zero = np.zeros(min(rows, n_rows), np.int64)
        else:
            class_index = np.ascontiguousarray(class_index, dtype=np.int64)
            low, high = int(class_index.min()), int(class_index.max())
            if class_index.shape != (n_rows,) or low < 0 or high >= self.n_classes:
                raise InputError(
                    "class positions",
                    expected=f"{n_rows} positions in 0..{self.n_classes - 1}",
                    found=f"{class_index.size} positions in {low}..{high}",
                    fix="pass the positions from class_layout(labels), one per pixel",
                )
        centred = scratch("centred", (rows, self.n_bands), np.float64) if self.moments else _NO_F8_2D
        class_rows = np.zeros(self.n_classes, np.int64)
        if plan is None:
            mode, counts, index = native.NO_HISTOGRAMS, _NO_I4, _NO_I4_2D
            arrays = (_NO_F8, _NO_F8, _NO_F8, 0.0, _NO_F8_2D, _NO_I8, 0)
        else:
            mode, counts = plan.mode, self._count_buffer(plan, n_rows)
            index = scratch("bin_index", (rows, self.n_bands), np.int32)
            arrays = (plan.shift, plan.scale, plan.certain, plan.top, plan.edges,
                      plan.band_offset, plan.class_stride)  # fmt: skip
        for start in range(0, n_rows, rows):
            block = kernel_input(pixels[start : start + rows])
            cls = all_zero[: block.shape[0]] if class_index is None else class_index[start : start + rows]
            native.accumulate(
                block, cls, self.moments, self.shift, self.has_shift, self.total, self.low, self.high,
                centred, class_rows, mode, *arrays, counts, index,
            )  # fmt: skip
            if self.moments:
                if not math.isfinite(self.total.sum()):  # NaN/Inf propagate into the class sums
                    self.finite = False
                    if plan is not None and counts is self.counts:
                        self.counted_rows += n_rows  # still an upper bound of every bin's count
                    return
                self._add_grams(centred, class_rows)
        if plan is not None:
            if counts is self.counts:
                self.counted_rows += n_rows
            else:
                self._add_counts(counts, n_rows)

    def _count_buffer(self, plan: BinPlan, n_rows: int) -> np.ndarray:
        """Where the next ``n_rows`` rows are counted: the accumulator's own int32 totals while no bin
        can overflow them (counted in place: no buffer to copy and add per call, no fresh pages
        twice), else a zeroed per-thread int32 buffer that :meth:`_add_counts` adds to the totals."""
        if self.counts is None:
            self.counts = np.zeros(plan.size, np.int32)
        if self.counts.dtype == np.int32 and self.counted_rows + n_rows <= _INT32_ROWS:
            return self.counts
        counts = scratch("counts", (plan.size,), np.int32)
        counts.fill(0)
        return counts

    def _add_counts(self, counts: np.ndarray, n_rows: int) -> None:
        total = self.counted_rows + int(n_rows)
        wide = total > _INT32_ROWS
        if self.counts is None:
            self.counts = counts.astype(np.int64) if wide else counts.copy()  # `counts` may be scratch
        else:
            if wide and self.counts.dtype != np.int64:
                self.counts = self.counts.astype(np.int64)
            self.counts += counts
        self.counted_rows = total

    def _add_grams(self, centred: np.ndarray, class_rows: np.ndarray) -> None:
        start = 0
        for k in range(self.n_classes):
            stop = start + int(class_rows[k])
            if stop > start:
                d = centred[start:stop]
                self.gram[k] += d.T @ d  # BLAS syrk (STACK_NOTES: matmul, not einsum)
                self.n[k] += stop - start
            start = stop

    def absorb(self, other: ChunkAccumulator) -> None:
        """Add ``other``'s pixels (same bands, classes and edges; e.g. another thread's rows) in place.

        Its sums are moved from its class shifts to ours (``d = x − s``: with ``δ = s_other − s``,
        ``Σ d = Σ d' + n δ`` and ``Σ d dᵀ = Σ d' d'ᵀ + (Σ d') δᵀ + δ (Σ d')ᵀ + n δ δᵀ``), so two threads'
        halves give one set of statistics without building and merging two.
        """
        if (other.n_bands, other.n_classes, other.moments) != (
            self.n_bands,
            self.n_classes,
            self.moments,
        ) or ((self.plan is None) != (other.plan is None)):
            raise InputError(
                "accumulator",
                expected=f"{self.n_classes} classes of {self.n_bands} bands, the same histogram settings",
                found=f"{other.n_classes} classes of {other.n_bands} bands",
                fix="absorb accumulators made with the same arguments",
            )
        np.minimum(self.low, other.low, out=self.low)
        np.maximum(self.high, other.high, out=self.high)
        if not (self.finite and other.finite):  # the caller accumulates again: only the range matters
            self.finite = False
            return
        for k in range(self.n_classes):
            n_b = int(other.n[k])
            if n_b == 0 and not other.has_shift[k]:
                continue
            if not self.has_shift[k]:
                self.shift[k], self.has_shift[k] = other.shift[k], 1
                self.total[k], self.gram[k] = other.total[k], other.gram[k]
            else:
                delta = other.shift[k] - self.shift[k]
                cross = np.outer(other.total[k], delta)
                self.total[k] += other.total[k] + n_b * delta
                self.gram[k] += other.gram[k] + cross + cross.T + n_b * np.outer(delta, delta)
            self.n[k] += n_b
        if other.counts is not None:
            self._add_counts(other.counts, other.counted_rows)

    def result(self) -> dict[str, np.ndarray | None]:
        """Counts, class means, centred co-moments, min/max, histograms and clipped counts.

        After a block with NaN/Inf (``finite`` False) only the min/max say anything (not finite).
        """
        n = np.maximum(self.n, 1).astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):  # only a non-finite accumulation warns here
            means = self.shift + self.total / n[:, None]
            comoments = self.gram - self.total[:, :, None] * self.total[:, None, :] / n[:, None, None]
        histograms = clipped = None
        if self.plan is not None:
            histograms, clipped = self.plan.split(self.plan.counts() if self.counts is None else self.counts)
        return {
            "counts": self.n.copy(),
            "class_means": means,
            "class_comoments": comoments,
            "class_minimum": self.low,
            "class_maximum": self.high,
            "histograms": histograms,
            "n_clipped": clipped,
        }


def accumulate_split(
    pixels: np.ndarray,
    class_index: np.ndarray | None,
    n_classes: int,
    edges: np.ndarray | None,
    *,
    moments: bool = True,
    n_threads: int = 1,
) -> ChunkAccumulator:
    """One :class:`ChunkAccumulator` of ``pixels`` ``(N, C)``, its rows split over ``n_threads`` threads.

    Each thread accumulates a contiguous block of rows (:func:`worker_pool`); the others' accumulators
    are then added to the first in place (:meth:`ChunkAccumulator.absorb`), so the split gives one set
    of sums without per-block statistics and their merges. The caller sets the BLAS limit.
    """
    n_rows = pixels.shape[0]
    parts = max(1, min(int(n_threads), n_rows))

    def block(bound: tuple[int, int]) -> ChunkAccumulator:
        start, stop = bound
        accumulator = ChunkAccumulator(pixels.shape[1], n_classes, edges, moments=moments)
        accumulator.add_all(pixels[start:stop], None if class_index is None else class_index[start:stop])
        return accumulator

    if parts == 1:
        return block((0, n_rows))
    accumulator, *others = worker_pool().map(block, row_bounds(n_rows, parts))
    for other in others:
        accumulator.absorb(other)
    return accumulator
