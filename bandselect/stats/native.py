"""Compiled inner loops of the statistics engine (numba): one read of a block for every kernel.

:func:`accumulate` takes a block of pixel rows (it stays in the L2 cache) and runs the kernels over it
one after the other: the rows centred on their class's shift into a float64 buffer grouped by class (the
input of the BLAS Gram that :class:`~bandselect.stats.kernels.ChunkAccumulator` runs next) and added to
the class sums, the class min/max, every value's exact histogram bin, and the counting of the bins.
:func:`column_range` is the per-band min/max scan of a chunk's pixels where no recorded range gives the
histogram edges (the store's range pass, the torch path of ``statistics_of``; the in-memory CPU path
takes them from its moments pass's class min/max).

Why compiled: in NumPy the exact binning alone took ten vectorised passes and a ``bincount``
(≈ 7.5 ns a value on one core here); compiled, the bins of a row are one vectorised loop and their
counting a second, ≈ 2 ns a value together, and the other kernels read the same block from cache.

Bins are ``numpy.histogram``'s exactly (see :class:`~bandselect.stats.kernels.BinPlan` for the rule and
the error bound): uniform edges are binned arithmetically in float64 and the few values within the error
bound of an edge are compared with the edge values themselves; other edges by binary search.

The functions have explicit signatures (float32 and float64 pixels) and ``cache=True``: importing this
module loads them from numba's on-disk cache (next to this file, or numba's user cache directory when
that is read-only), or compiles them the first time, so no statistics call pays for numba's start. See
``docs/scale.md`` for what that costs at import.
"""

from __future__ import annotations

import numpy as np
from numba import from_dtype, njit, types

#: Histogram modes of :func:`accumulate`.
NO_HISTOGRAMS, ARITHMETIC, SEARCH = 0, 1, 2

#: Pixel dtypes the kernels are compiled for (others are converted per block by the callers).
PIXEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_OPTIONS = {"nogil": True, "cache": True, "boundscheck": False, "error_model": "numpy"}

# Explicit signatures: compiled (or loaded from the cache) at import, once per pixel dtype. Inputs are
# typed read-only, which also accepts writable arrays (one specialisation for both).
_IN_2D = {dtype: types.Array(from_dtype(dtype), 2, "C", readonly=True) for dtype in PIXEL_DTYPES}
_F8_IN_1D = types.Array(types.float64, 1, "C", readonly=True)
_F8_IN_2D = types.Array(types.float64, 2, "C", readonly=True)
_I8_IN_1D = types.Array(types.int64, 1, "C", readonly=True)
_F8_1D, _F8_2D, _I8_1D = types.float64[::1], types.float64[:, ::1], types.int64[::1]
_I4_1D, _I4_2D = types.int32[::1], types.int32[:, ::1]
_RANGE_SIGNATURES = [types.void(_IN_2D[dtype], _F8_1D, _F8_1D) for dtype in PIXEL_DTYPES]
_ACCUMULATE_SIGNATURES = [
    types.void(
        _IN_2D[dtype], _I8_IN_1D, types.boolean, _F8_2D, _I8_1D, _F8_2D, _F8_2D, _F8_2D, _F8_2D, _I8_1D,
        types.int64, _F8_IN_1D, _F8_IN_1D, _F8_IN_1D, types.float64, _F8_IN_2D, _I8_IN_1D,
        types.int64, _I4_1D, _I4_2D,
    )
    for dtype in PIXEL_DTYPES
]  # fmt: skip


@njit(_RANGE_SIGNATURES, **_OPTIONS)
def column_range(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:  # pragma: no cover
    """Update ``low``/``high`` ``(C,)`` float64 with the per-column min/max of ``x`` ``(R, C)``."""
    rows, n_bands = x.shape
    for r in range(rows):
        row = x[r]
        for c in range(n_bands):
            # np.minimum, not min(): the builtin compiles to masked stores (slow) instead of vminpd.
            low[c] = np.minimum(low[c], np.float64(row[c]))
            high[c] = np.maximum(high[c], np.float64(row[c]))


_CLASS_RANGE_SIGNATURES = [types.void(_IN_2D[dtype], _I8_IN_1D, _F8_2D, _F8_2D) for dtype in PIXEL_DTYPES]


@njit(_CLASS_RANGE_SIGNATURES, **_OPTIONS)
def class_column_range(  # pragma: no cover - compiled
    x: np.ndarray, cls: np.ndarray, low: np.ndarray, high: np.ndarray
) -> None:
    """Update ``low``/``high`` ``(K, C)`` float64 with the per-class, per-column min/max of ``x``
    ``(R, C)`` (row ``r`` in class ``cls[r]``): ingest's per-class ranges, in one read of the block."""
    rows, n_bands = x.shape
    for r in range(rows):
        row = x[r]
        lo_k = low[cls[r]]
        hi_k = high[cls[r]]
        for c in range(n_bands):
            lo_k[c] = np.minimum(lo_k[c], np.float64(row[c]))
            hi_k[c] = np.maximum(hi_k[c], np.float64(row[c]))


@njit(**_OPTIONS)
def _shifts(  # pragma: no cover - compiled
    x: np.ndarray, cls: np.ndarray, class_rows: np.ndarray, shift: np.ndarray, has_shift: np.ndarray
) -> None:
    """Each class first seen in this block is centred on the mean of its rows here (a fixed shift)."""
    rows, n_bands = x.shape
    for k in range(shift.shape[0]):
        if class_rows[k] == 0 or has_shift[k]:
            continue
        acc = np.zeros(n_bands)
        for r in range(rows):
            if cls[r] == k:
                row = x[r]
                for c in range(n_bands):
                    acc[c] += row[c]
        for c in range(n_bands):
            shift[k, c] = acc[c] / class_rows[k]
        has_shift[k] = 1


@njit(**_OPTIONS)
def _centre(  # pragma: no cover - compiled
    x: np.ndarray,
    cls: np.ndarray,
    shift: np.ndarray,
    total: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    centred: np.ndarray,
    position: np.ndarray,
) -> None:
    """Rows centred on their class's shift into ``centred``, grouped by class, with the class sums of
    them and the class min/max, in one loop over the block (one read of each value; separate centring
    and range loops took 28 against 21 ms for 16 M float32 values here).

    The block's min/max is taken in the pixels' own dtype (exact: the min of float32 values is one of
    them; twice the lanes per vector), then merged into the float64 running ``low``/``high``.
    """
    rows, n_bands = x.shape
    n_classes = low.shape[0]
    block_low = np.empty((n_classes, n_bands), x.dtype)
    block_high = np.empty((n_classes, n_bands), x.dtype)
    for k in range(n_classes):
        for c in range(n_bands):
            block_low[k, c] = np.inf
            block_high[k, c] = -np.inf
    for r in range(rows):
        k = cls[r]
        out = centred[position[k]]
        position[k] += 1
        row = x[r]
        s_k = shift[k]
        t_k = total[k]
        lo_k = block_low[k]
        hi_k = block_high[k]
        for c in range(n_bands):
            v = row[c]
            d = np.float64(v) - s_k[c]
            out[c] = d
            t_k[c] += d
            # np.minimum, not min(): the builtin compiles to masked stores (slow); it propagates NaN.
            lo_k[c] = np.minimum(lo_k[c], v)
            hi_k[c] = np.maximum(hi_k[c], v)
    for k in range(n_classes):
        for c in range(n_bands):
            low[k, c] = np.minimum(low[k, c], np.float64(block_low[k, c]))
            high[k, c] = np.maximum(high[k, c], np.float64(block_high[k, c]))


@njit(**_OPTIONS)
def _bins_arithmetic(  # pragma: no cover - compiled
    x: np.ndarray,
    bin_shift: np.ndarray,
    bin_scale: np.ndarray,
    bin_certain: np.ndarray,
    bin_top: float,
    edges: np.ndarray,
    index: np.ndarray,
) -> None:
    """Extended bins of every value into ``index`` (one vectorised loop per row), then the exact bins
    of the values within the error bound of an edge (rare: their rows are remembered)."""
    rows, n_bands = x.shape
    near_rows = np.empty(rows, np.int64)
    n_near = 0
    for r in range(rows):
        row = x[r]
        out = index[r]
        near = False
        for c in range(n_bands):
            # fmax/fmin, not maximum/minimum: a NaN (prepare_pixels keeps them out; a caller that skips
            # it) lands below the edges instead of making an index out of the count buffer.
            t = np.fmin(np.fmax((np.float64(row[c]) - bin_shift[c]) * bin_scale[c], 0.5), bin_top)
            j = np.int32(t)  # float64 -> int32 is a vector instruction (-> int64 is not, in AVX2)
            near |= (t - np.float64(j)) < bin_certain[c]
            out[c] = j
        near_rows[n_near] = r
        n_near += near
    last = edges.shape[1] - 1  # the index of the top edge, and the extended bin of values on it
    top = last + 1  # the extended bin above the edges
    for i in range(n_near):
        r = near_rows[i]
        row = x[r]
        out = index[r]
        for c in range(n_bands):
            v = np.float64(row[c])
            t = np.fmin(np.fmax((v - bin_shift[c]) * bin_scale[c], 0.5), bin_top)
            j = out[c]
            if (t - np.float64(j)) < bin_certain[c]:  # one step each way suffices (error < 1 bin)
                # Extended bin j holds [e_{j-1}, e_j) (bin 0 everything below e_0, bin `top` from e_last).
                if j > 0 and v < edges[c, j - 1]:
                    j -= 1
                elif j < top and v >= edges[c, j]:
                    j += 1
                if v == edges[c, last]:  # numpy.histogram's last bin is closed
                    j = last
                out[c] = j


@njit(**_OPTIONS)
def _bins_search(x: np.ndarray, edges: np.ndarray, index: np.ndarray) -> None:  # pragma: no cover - compiled
    rows, n_bands = x.shape
    last = edges.shape[1] - 1
    for r in range(rows):
        row = x[r]
        out = index[r]
        for c in range(n_bands):
            v = np.float64(row[c])
            j = np.searchsorted(edges[c], v, side="right")  # edges <= v: the extended bin
            if v == edges[c, last]:
                j = last
            out[c] = j


@njit(**_OPTIONS)
def _count(  # pragma: no cover - compiled
    cls: np.ndarray, index: np.ndarray, band_offset: np.ndarray, class_stride: int, counts: np.ndarray
) -> None:
    rows, n_bands = index.shape
    for r in range(rows):
        offset = cls[r] * class_stride
        row = index[r]
        for c in range(n_bands):
            counts[offset + band_offset[c] + row[c]] += 1


@njit(_ACCUMULATE_SIGNATURES, **_OPTIONS)
def accumulate(  # pragma: no cover - compiled
    x: np.ndarray,
    cls: np.ndarray,
    moments: bool,
    shift: np.ndarray,
    has_shift: np.ndarray,
    total: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    centred: np.ndarray,
    class_rows: np.ndarray,
    mode: int,
    bin_shift: np.ndarray,
    bin_scale: np.ndarray,
    bin_certain: np.ndarray,
    bin_top: float,
    edges: np.ndarray,
    band_offset: np.ndarray,
    class_stride: int,
    counts: np.ndarray,
    index: np.ndarray,
) -> None:
    """Accumulate one block ``x`` ``(R, C)`` of rows with class positions ``cls`` ``(R,)`` in place.

    ``class_rows`` ``(K,)`` receives the rows per class of this block; with ``moments`` the rows of
    class ``k`` are written, centred on ``shift[k]``, to ``centred[start_k : start_k + class_rows[k]]``
    (classes in order) and ``total``, ``low``, ``high`` (``(K, C)`` float64) are updated. With ``mode``
    :data:`ARITHMETIC` or :data:`SEARCH` every value's extended bin (into ``index`` ``(≥ R, C)`` int32,
    scratch) is counted into ``counts`` (int32) at ``cls · class_stride + band_offset[c] + bin``.

    The kernels run one after the other over the block, each a short loop the compiler vectorises;
    the block stays in cache between them (one loop doing everything per value was 30 % slower).
    """
    rows = x.shape[0]
    n_classes = class_rows.shape[0]
    for k in range(n_classes):
        class_rows[k] = 0
    for r in range(rows):
        class_rows[cls[r]] += 1
    if moments:
        _shifts(x, cls, class_rows, shift, has_shift)
        position = np.empty(n_classes, np.int64)
        start = 0
        for k in range(n_classes):
            position[k] = start
            start += class_rows[k]
        _centre(x, cls, shift, total, low, high, centred, position)
    if mode == NO_HISTOGRAMS:
        return
    block_index = index[:rows]
    if mode == ARITHMETIC:
        _bins_arithmetic(x, bin_shift, bin_scale, bin_certain, bin_top, edges, block_index)
    else:
        _bins_search(x, edges, block_index)
    _count(cls, block_index, band_offset, class_stride, counts)


# Scores from histograms: int64 counts (the engine's) or float64 (sums of them, e.g. one-vs-rest).
_HIST_2D = [types.Array(dtype, 2, "C", readonly=True) for dtype in (types.int64, types.float64)]
_HIST_3D = [types.Array(dtype, 3, "C", readonly=True) for dtype in (types.int64, types.float64)]


@njit([types.void(h, h, _F8_1D, _F8_1D, _F8_1D) for h in _HIST_2D], **_OPTIONS)
def auc_sums(  # pragma: no cover - compiled
    h0: np.ndarray, h1: np.ndarray, wins: np.ndarray, n0: np.ndarray, n1: np.ndarray
) -> None:
    """Per band of ``(C, B)`` histograms: ``Σ_b h1_b (Σ_{b'<b} h0_b' + ½ h0_b)``, ``Σ h0``, ``Σ h1``.

    One pass per band (NumPy needed a float copy of each, a cumulative sum and three temporaries).
    """
    n_bands, n_bins = h0.shape
    for c in range(n_bands):
        below = 0.0
        won = 0.0
        positives = 0.0
        for b in range(n_bins):
            negative = np.float64(h0[c, b])
            positive = np.float64(h1[c, b])
            won += positive * (below + 0.5 * negative)
            below += negative
            positives += positive
        wins[c], n0[c], n1[c] = won, below, positives


#: ``n log n`` of the counts 0 .. 4095 (32 KB, stays in L1): most histogram counts are small integers
#: and a table read is several times cheaper than a scalar ``log``.
N_LOG_N_TABLE = np.arange(4096, dtype=np.float64) * np.log(np.maximum(np.arange(4096), 1).astype(np.float64))


@njit(**_OPTIONS)
def _n_log_n(n: float, table: np.ndarray) -> float:  # pragma: no cover - compiled
    if n <= 0:
        return 0.0
    whole = np.int64(n)
    if whole == n and whole < table.shape[0]:
        return table[whole]
    return n * np.log(n)


@njit([types.void(h, _F8_IN_1D, _F8_1D, _F8_1D) for h in _HIST_3D], **_OPTIONS)
def n_log_n_sums(  # pragma: no cover - compiled
    histograms: np.ndarray, table: np.ndarray, information: np.ndarray, total: np.ndarray
) -> None:
    """Per band of ``(K, C, B)`` counts: ``Σ n_yb log n_yb − Σ n_y log n_y − Σ n_b log n_b + N log N``.

    ``N · I`` of the plug-in mutual information (``0 log 0 = 0``), and ``N`` into ``total``. Integer
    counts below the size of ``table`` (:data:`N_LOG_N_TABLE`) are looked up, others computed.
    """
    n_classes, n_bands, n_bins = histograms.shape
    per_class = np.zeros(n_classes)
    for c in range(n_bands):
        joint = 0.0
        marginal = 0.0
        for k in range(n_classes):
            per_class[k] = 0.0
        for b in range(n_bins):
            in_bin = 0.0
            for k in range(n_classes):
                n = np.float64(histograms[k, c, b])
                joint += _n_log_n(n, table)
                in_bin += n
                per_class[k] += n
            marginal += _n_log_n(in_bin, table)
        n_all = 0.0
        classes = 0.0
        for k in range(n_classes):
            n_all += per_class[k]
            classes += _n_log_n(per_class[k], table)
        information[c] = joint - classes - marginal + _n_log_n(n_all, table)
        total[c] = n_all
