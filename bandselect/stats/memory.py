"""Statistics of in-memory arrays: the twin of :func:`~bandselect.stats.compute_statistics` behind ``fit()``.

This module imports neither Dask nor xarray, so a notebook's first ``fit()`` pays for the arithmetic
only. :func:`statistics_of` reads the pixels twice, once for the moments and once for the histograms: the
moments pass's per-band min/max gives the histogram edges by the one binning rule
(:func:`~bandselect.stats.binning.data_edges`), as a campaign store's recorded ranges give them to the
Dask job, so no range scan of its own is needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bandselect.stats.binning import (
    DEFAULT_N_BINS,
    NanPolicy,
    PreparedPixels,
    data_edges,
    prepare_pixels,
    validate_edges,
)
from bandselect.stats.kernels import (
    ClassLayout,
    accumulate_split,
    class_layout,
    column_min_max,
    layout_of,
    parallel_threads,
    range_is_finite,
)
from bandselect.stats.partial import BandStatistics
from bandselect.stats.spatial import laplacian_abs_sums

__all__ = ["HistogramPartial", "histograms_from_arrays", "merge_histograms", "statistics_of"]

HistogramPartial = tuple[np.ndarray, np.ndarray, np.ndarray]  # classes, histograms, clipped


def bin_pixels(
    pixels: np.ndarray,
    labels: np.ndarray,
    edges: np.ndarray,
    device: str | None = None,
    n_threads: int = 1,
    layout: ClassLayout | None = None,
) -> HistogramPartial:
    """Per-class histograms of prepared ``(N, C)`` pixels on ``edges`` (NumPy, or torch on ``device``).

    ``n_threads`` > 1 splits the rows of the NumPy kernels over threads (the in-memory entry; a Dask
    chunk's task stays on one); ``layout``: ``class_layout(labels)`` when the caller has it (its
    moments pass over the same pixels). The histograms and clipped counts are fresh read-only arrays
    (:class:`~bandselect.stats.BandStatistics` keeps such arrays without copying them).
    """
    if device is not None:
        from bandselect.stats import torch_backend

        resolved = torch_backend.resolve_device(device)  # "auto" without CUDA: the CPU kernels
        if resolved is not None:
            classes, histograms, clipped = torch_backend.class_histograms(pixels, labels, edges, resolved)
            return classes, _read_only(histograms), _read_only(clipped)
    classes, class_index = layout_of(labels, layout)
    accumulator = accumulate_split(
        pixels, class_index, classes.size, edges, moments=False, n_threads=n_threads
    )
    result = accumulator.result()
    return classes, _read_only(result["histograms"]), _read_only(result["n_clipped"])


def _read_only(array: Any) -> np.ndarray:
    out = np.asarray(array)
    out.setflags(write=False)
    return out


def histograms_from_arrays(
    cube: Any,
    mask: Any = None,
    *,
    hist_edges: Any,
    valid: Any = None,
    nan_policy: NanPolicy = "raise",
    device: str | None = None,
) -> HistogramPartial:
    """Per-class histograms of one chunk, without the moments (a histogram-only pass of a streamed job).

    Inputs are as for :meth:`BandStatistics.from_arrays`. Merge the results with
    :func:`merge_histograms` and attach them to the first pass's statistics with
    :meth:`BandStatistics.with_histograms`, so the moments are computed once.

    Returns
    -------
    tuple
        ``classes`` ``(K,)``, ``histograms`` ``(K, C, n_bins)`` and ``n_clipped`` ``(K, C)`` (int64,
        read-only).
    """
    prepared = prepare_pixels(cube, mask, valid=valid, nan_policy=nan_policy)
    edges = validate_edges(hist_edges, prepared.pixels.shape[1])
    return bin_pixels(prepared.pixels, prepared.labels, edges, device)


def merge_histograms(*parts: HistogramPartial) -> HistogramPartial:
    """Sum histogram partials (:func:`histograms_from_arrays`) over any split of the pixels."""
    classes = np.unique(np.concatenate([p[0] for p in parts])).astype(np.int64)
    n_bands, n_bins = parts[0][1].shape[1:]
    hist = np.zeros((classes.size, n_bands, n_bins), np.int64)
    clipped = np.zeros((classes.size, n_bands), np.int64)
    for part_classes, part_hist, part_clipped in parts:
        pos = np.searchsorted(classes, part_classes)
        hist[pos] += part_hist
        clipped[pos] += part_clipped
    return classes, hist, clipped


def _on_device(
    cube: Any, mask: Any, valid: Any, nan_policy: NanPolicy, n_bins: int | None, device: str
) -> tuple[BandStatistics, PreparedPixels]:
    """:func:`statistics_of` on a torch device: the range first (one CPU scan, which also shows NaN),
    then one accumulation of the moments and histograms on the device (the pixels go there once)."""
    prepared = prepare_pixels(cube, mask, valid=valid, nan_policy=nan_policy, check_finite=n_bins is None)
    edges = None
    if n_bins is not None and prepared.pixels.shape[0]:
        threads = parallel_threads(prepared.pixels.size)
        low, high = column_min_max(np.ascontiguousarray(prepared.pixels), threads)
        if not range_is_finite(low, high):
            prepared = prepare_pixels(cube, mask, valid=valid, nan_policy=nan_policy)
            low, high = column_min_max(np.ascontiguousarray(prepared.pixels), threads)
        if prepared.pixels.shape[0]:
            edges = data_edges(low, high, int(n_bins))
    return BandStatistics.from_prepared(prepared, edges, device=device), prepared


def _on_cpu(
    cube: Any, mask: Any, valid: Any, nan_policy: NanPolicy, n_bins: int | None
) -> tuple[BandStatistics, PreparedPixels]:
    """:func:`statistics_of` on the CPU kernels: the moments pass also gives each class's min/max, so
    the histogram edges (by the one binning rule) need no range scan of their own; a second,
    histogram-only pass bins on them. The pixels are in memory, and both passes together cost what one
    pass doing both did (measured), less the scan. A min or max that is not finite shows NaN/Inf (the
    pass stops at the first such block), so the NaN test (a read of its own) and the policy run only
    then, and the moments are accumulated again on the kept pixels."""
    prepared = prepare_pixels(cube, mask, valid=valid, nan_policy=nan_policy, check_finite=False)
    layout = class_layout(prepared.labels)  # once for both passes
    out = BandStatistics.from_prepared(prepared, layout=layout)
    if prepared.pixels.shape[0] and not range_is_finite(out.class_minimum, out.class_maximum):
        prepared = prepare_pixels(cube, mask, valid=valid, nan_policy=nan_policy)
        layout = class_layout(prepared.labels)
        out = BandStatistics.from_prepared(prepared, layout=layout)
    if n_bins is not None and prepared.pixels.shape[0]:
        edges = data_edges(out.minimum, out.maximum, int(n_bins))
        edges.setflags(write=False)
        threads = parallel_threads(prepared.pixels.size)
        histograms = bin_pixels(prepared.pixels, prepared.labels, edges, None, threads, layout=layout)
        out = out.with_histograms(edges, *histograms)
    return out, prepared


def statistics_of(
    cube: Any,
    mask: Any = None,
    *,
    n_bins: int | None = DEFAULT_N_BINS,
    contrast: bool = False,
    valid: Any = None,
    nan_policy: NanPolicy = "raise",
    device: str | None = None,
) -> BandStatistics:
    """Statistics of in-memory arrays, made exactly as :func:`compute_statistics` makes them from a store.

    Moments and per-class histograms on ``data_edges(minimum, maximum, n_bins)`` (the binning rule) of
    the same pixels (``n_bins=None``: no histograms), and the spatial contrast terms
    when ``contrast``. The same data in memory and in a campaign store therefore gives the same
    statistics, bins included, and the same selection.

    Parameters
    ----------
    cube, mask, valid, nan_policy
        As :meth:`BandStatistics.from_arrays` (``contrast`` needs images ``(..., H, W, C)``).
    n_bins
        Histogram bins per band, or None.
    contrast
        Also sum the spatial contrast terms.
    device
        None: the CPU kernels. A torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``): the partials are
        computed by :mod:`bandselect.stats.torch_backend` on it (same answers within rounding).

    Examples
    --------
    >>> import numpy as np
    >>> cube = np.random.default_rng(0).normal(size=(40, 50, 6)).astype(np.float32)
    >>> mask = np.zeros((40, 50), bool); mask[:8] = True; cube[:8, :, 2] += 3.0
    >>> stats = statistics_of(cube, mask, n_bins=64)
    >>> stats.count, stats.n_bins, int(np.argmax(stats.auc))
    (2000, 64, 2)
    """
    on_device = False
    if device is not None:
        from bandselect.stats import torch_backend

        on_device = torch_backend.resolve_device(device) is not None  # "auto" without CUDA: the CPU
    if on_device:
        out, prepared = _on_device(cube, mask, valid, nan_policy, n_bins, str(device))
    else:
        out, prepared = _on_cpu(cube, mask, valid, nan_policy, n_bins)
    if contrast:
        out = out.with_contrast(*laplacian_abs_sums(cube, prepared.kept))  # kept pixels only
    return out
