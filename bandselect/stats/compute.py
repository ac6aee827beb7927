"""Dataset-wide statistics over a campaign store with Dask: per-chunk partials and a tree reduction.

A job is one Dask graph over every acquisition and chunk — a partial per ``(y, x)`` chunk, merged in a
tree of fan-in ``split_every`` — evaluated with ONE ``dask.compute``, and it reads the store once: each
chunk's partial holds its per-class counts, means, co-moments (the band Gram matrices), min/max *and*
histograms. The histogram edges must be known before the pass; the binning rule
(:func:`~bandselect.stats.binning.data_edges`) takes them from the per-band range of the pixels, which
ingest recorded in each acquisition's attributes (``band_minimum``/``band_maximum``, see
:mod:`bandselect.store.writer`) and which are merged here without reading a pixel. Only acquisitions
without recorded ranges (stores written before they were recorded, Datasets built by hand) cost a
range-only pass over their chunks first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from bandselect.stats.binning import DEFAULT_N_BINS, NanPolicy, data_edges, validate_edges
from bandselect.stats.graph import (
    CampaignReader,
    check_bands,
    check_range,
    contrast_graph,
    datasets_of,
    datasets_range,
    histogram_graph,
    merge_ranges,
    moment_graph,
    range_relation,
    recorded_ranges,
    run_graphs,
    sample_fraction,
)
from bandselect.stats.memory import (
    HistogramPartial,
    histograms_from_arrays,
    merge_histograms,
    statistics_of,
)
from bandselect.stats.partial import BandStatistics

_LOG = logging.getLogger(__name__)

__all__ = [
    "SPLIT_EVERY",
    "CampaignReader",
    "ExtraGraphs",
    "HistogramPartial",
    "UpdateResult",
    "compute_histograms",
    "compute_statistics",
    "compute_update",
    "compute_without",
    "histograms_from_arrays",
    "merge_histograms",
    "recorded_ranges",
    "statistics_job",
    "statistics_of",
]

#: Partials merged per node of the reduction tree.
SPLIT_EVERY = 8

#: More graphs for a job's own ``dask.compute``: called with the datasets the job reads for its moments
#: and a function that opens those of the other acquisitions it covers (an update's stored ones; none in
#: a first job; opened once, on demand), the same objects the job uses, so that the graphs share the
#: chunk reads; returns delayed graphs.
ExtraGraphs = Callable[[list[Any], Callable[[], list[Any]]], list[Any]]


class UpdateResult(NamedTuple):
    """:func:`compute_update`'s result.

    Attributes
    ----------
    stats
        The merged statistics of the stored and the new acquisitions.
    rebuilt
        Whether the stored histograms were rebuilt on new edges.
    extra
        The results of the ``extra`` graphs, in their order.
    """

    stats: BandStatistics
    rebuilt: bool
    extra: list[Any]


def compute_statistics(
    source: Any,
    *,
    n_bins: int | None = DEFAULT_N_BINS,
    hist_edges: Any = None,
    acquisitions: Sequence[str] | None = None,
    first_n: int | None = None,
    max_pixels: int | None = None,
    seed: int = 0,
    nan_policy: NanPolicy = "raise",
    scheduler_address: str | None = None,
    scheduler: Any = None,
    split_every: int = SPLIT_EVERY,
    contrast: bool = False,
    device: str | None = None,
    use_recorded_ranges: bool = True,
) -> BandStatistics:
    """Merged :class:`BandStatistics` of a campaign (or one acquisition Dataset), out of core, in one read.

    Parameters
    ----------
    source
        A campaign (``ids()``, ``open(id) -> xarray.Dataset``) or an ``xarray.Dataset`` with a dask-backed
        ``cube`` ``(y, x, band)``, optional ``mask`` ``(y, x)`` labels and ``valid`` ``(y, x)`` bool.
    n_bins
        Histogram bins per band, on ``data_edges(minimum, maximum, n_bins)`` of the acquisitions' per-band
        range: recorded at ingest (no pass), else scanned first (a range-only pass over the acquisitions
        without one). None: no histograms.
    hist_edges
        Fixed ``(C, n_bins + 1)`` edges instead: values outside counted in ``n_clipped``.
    acquisitions
        Acquisition ids to include (default: all published).
    first_n
        Keep only the first ``n`` of those acquisitions.
    max_pixels
        Approximate pixel budget: each chunk keeps a seeded Bernoulli sample of its pixels (binned on the
        edges of the acquisitions' whole range).
    seed
        Seed of that subsample.
    nan_policy
        ``"raise"`` or ``"omit"`` (NaN/Inf pixels left out and counted).
    scheduler_address
        ``"tcp://host:port"`` of a ``dask.distributed`` scheduler; None uses ``scheduler``.
    scheduler
        Any ``dask.compute`` scheduler (default ``"threads"``).
    split_every
        Fan-in of the reduction tree.
    contrast
        Also sum the spatial contrast terms (``BandStatistics.laplacian_abs_sum``) over the pixels that
        count (``valid``, finite under ``"omit"``) of every acquisition (not subsampled; each chunk read
        with a one-pixel halo of its neighbours, so the result equals the whole-image value whatever the
        chunking; a neighbour that does not count adds nothing, see
        :func:`~bandselect.stats.spatial.laplacian_abs_sums_interior`).
    device
        None: the CPU kernels in each task. A torch device (``"cuda"``, ``"cpu"``): each task computes its
        partial with :mod:`bandselect.stats.torch_backend` on that device.
    use_recorded_ranges
        Take the edges' range from the acquisitions' attributes (default). False scans it (two reads).

    Raises
    ------
    StoreError
        Pixels fall outside the range recorded at ingest (a damaged store). Unsampled pixels whose range
        lies inside the recorded one without reaching it (a part of an acquisition, ``ds.isel(y=...)``,
        which keeps its attributes) are binned on their own range instead, in a second,
        histogram-only read.
    """
    return statistics_job(
        source, n_bins=n_bins, hist_edges=hist_edges, acquisitions=acquisitions, first_n=first_n,
        max_pixels=max_pixels, seed=seed, nan_policy=nan_policy, scheduler_address=scheduler_address,
        scheduler=scheduler, split_every=split_every, contrast=contrast, device=device,
        use_recorded_ranges=use_recorded_ranges,
    )[0]  # fmt: skip


def statistics_job(
    source: Any,
    *,
    extra: ExtraGraphs | None = None,
    n_bins: int | None = DEFAULT_N_BINS,
    hist_edges: Any = None,
    acquisitions: Sequence[str] | None = None,
    first_n: int | None = None,
    max_pixels: int | None = None,
    seed: int = 0,
    nan_policy: NanPolicy = "raise",
    scheduler_address: str | None = None,
    scheduler: Any = None,
    split_every: int = SPLIT_EVERY,
    contrast: bool = False,
    device: str | None = None,
    use_recorded_ranges: bool = True,
) -> tuple[BandStatistics, list[Any]]:
    """:func:`compute_statistics` with ``extra`` graphs in the same ``dask.compute``: their results too.

    Parameters
    ----------
    source
        As :func:`compute_statistics`.
    extra
        ``extra(datasets, list)`` is given the very datasets the job reads (so its graphs share their
        chunk reads) and a function giving no other datasets (a first job covers no stored ones), and
        returns delayed graphs. None: none.
    n_bins, hist_edges, acquisitions, first_n, max_pixels, seed, nan_policy, scheduler_address, \
scheduler, split_every, contrast, device, use_recorded_ranges
        As :func:`compute_statistics`.

    Returns
    -------
    tuple
        The statistics, and the results of ``extra``'s graphs in their order.
    """
    datasets = datasets_of(source, acquisitions, first_n)
    n_bands = check_bands(datasets)
    fraction = sample_fraction(datasets, max_pixels)
    options = {"nan_policy": nan_policy, "fraction": fraction, "seed": seed, "device": device}

    def run(graphs: list[Any]) -> tuple[Any, ...]:
        return run_graphs(graphs, scheduler_address, scheduler)

    edges = None if hist_edges is None else validate_edges(hist_edges, n_bands)
    data_range = None
    if edges is None and n_bins is not None:
        data_range = datasets_range(datasets, use_recorded_ranges, nan_policy, split_every, run)
        if data_range is not None:
            edges = data_edges(*data_range, int(n_bins))
    graphs = [moment_graph(datasets, 0, edges, options, split_every)]
    if contrast:
        graphs.append(contrast_graph(datasets, split_every, nan_policy))
    extras = [] if extra is None else extra(datasets, list)
    results = list(run(graphs + extras))
    stats = results.pop(0)
    if contrast:
        stats = stats.with_contrast(*results.pop(0))
    sampled = fraction is not None
    relation = None if data_range is None else range_relation(stats, data_range)
    if relation == "inside" and not sampled:
        # The recorded ranges are the whole acquisitions' and these pixels' range lies strictly inside:
        # a part of one (``ds.isel(y=...)`` keeps the attributes). The rule's edges of the pixels' own
        # range, in a second, histogram-only read: the same bins as fit() on them. (Pixels outside the
        # recorded range cannot come from the acquisition ingest saw: that stays a StoreError.)
        _LOG.info("recorded band ranges do not describe these pixels: binning on their own range")
        edges = data_edges(stats.minimum, stats.maximum, int(n_bins))
        (histograms,) = run([histogram_graph(datasets, 0, edges, options, split_every)])
        stats = stats.with_histograms(edges, *histograms)
    elif data_range is not None:
        check_range(stats, data_range, sampled=sampled)
    return stats, results


def compute_update(
    source: Any,
    stored: BandStatistics,
    stored_ids: Sequence[str],
    new_ids: Sequence[str],
    *,
    n_bins: int = DEFAULT_N_BINS,
    nan_policy: NanPolicy = "raise",
    scheduler_address: str | None = None,
    scheduler: Any = None,
    split_every: int = SPLIT_EVERY,
    contrast: bool = False,
    device: str | None = None,
    use_recorded_ranges: bool = True,
    extra: ExtraGraphs | None = None,
) -> UpdateResult:
    """Statistics of ``stored_ids`` and ``new_ids`` from the stored ones, reading each new chunk once.

    The binning rule is applied to the merged range (the stored statistics' min/max and the new
    acquisitions' recorded ranges). When it gives the stored edges, only the new acquisitions are read
    (moments and histograms in one pass). When the edges move, the same single ``dask.compute`` also
    re-bins the stored acquisitions' chunks on the new edges (histograms only; their moments are merged,
    not recomputed), so the result equals a from-scratch :func:`compute_statistics` of all of them.

    Parameters
    ----------
    source
        The campaign.
    stored
        Statistics of ``stored_ids`` (with histograms on the rule's edges of their range, or of no pixel).
    stored_ids, new_ids
        Acquisitions covered by ``stored`` and acquisitions to add (disjoint).
    n_bins, nan_policy, scheduler_address, scheduler, split_every, contrast, device, use_recorded_ranges
        As :func:`compute_statistics` (``contrast`` must match the stored statistics).
    extra
        More graphs for the same ``dask.compute``: ``extra(new_datasets, stored_datasets)`` is given the
        new acquisitions' datasets and a function opening the stored ones (the objects this job uses:
        the graphs share the chunk reads) and returns delayed graphs, whose results come back in
        :attr:`UpdateResult.extra`.

    Returns
    -------
    UpdateResult
        The merged statistics, whether the stored histograms were rebuilt on new edges, the extra results.
    """
    new = datasets_of(source, new_ids, None)
    check_bands(new)

    def run(graphs: list[Any]) -> tuple[Any, ...]:
        return run_graphs(graphs, scheduler_address, scheduler)

    new_range = datasets_range(new, use_recorded_ranges, nan_policy, split_every, run)
    parts = [part for part in ((stored.minimum, stored.maximum), new_range) if part is not None]
    low, high = merge_ranges(*parts)
    edges = data_edges(low, high, int(n_bins)) if np.all(np.isfinite(low)) else None
    rebuilt = edges is not None and (
        stored.hist_edges is None or not np.array_equal(edges, stored.hist_edges)
    )
    options = {"nan_policy": nan_policy, "fraction": None, "seed": 0, "device": device}
    graphs = [moment_graph(new, 0, edges, options, split_every)]
    if contrast:
        graphs.append(contrast_graph(new, split_every, nan_policy))
    opened: list[list[Any]] = []

    def stored_datasets() -> list[Any]:
        # Opened once, and only for graphs that read the stored acquisitions (opening checks each one).
        if not opened:
            opened.append(datasets_of(source, stored_ids, None))
        return opened[0]

    if rebuilt:
        graphs.append(histogram_graph(stored_datasets(), len(new), edges, options, split_every))
    extras = [] if extra is None else extra(new, stored_datasets)
    results = list(run(graphs + extras))
    part = results.pop(0)
    if contrast:
        part = part.with_contrast(*results.pop(0))
    if new_range is not None:
        check_range(part, new_range, sampled=False)
    base = stored.with_histograms(edges, *results.pop(0)) if rebuilt else stored
    return UpdateResult(base.merge(part), rebuilt, results)


def compute_histograms(
    source: Any,
    hist_edges: Any,
    *,
    acquisitions: Sequence[str] | None = None,
    first_n: int | None = None,
    max_pixels: int | None = None,
    seed: int = 0,
    nan_policy: NanPolicy = "raise",
    scheduler_address: str | None = None,
    scheduler: Any = None,
    split_every: int = SPLIT_EVERY,
    device: str | None = None,
) -> HistogramPartial:
    """Histogram-only pass: ``(classes, histograms (K, C, n_bins), n_clipped (K, C))`` on fixed edges.

    Used to rebuild histograms on new edges without recomputing moments
    (see :meth:`BandStatistics.with_histograms`). Arguments as :func:`compute_statistics`.
    """
    datasets = datasets_of(source, acquisitions, first_n)
    edges = validate_edges(hist_edges, check_bands(datasets))
    fraction = sample_fraction(datasets, max_pixels)
    options = {"nan_policy": nan_policy, "fraction": fraction, "seed": seed, "device": device}
    graph = histogram_graph(datasets, 0, edges, options, split_every)
    (hist,) = run_graphs([graph], scheduler_address, scheduler)
    return hist


def compute_without(
    source: Any,
    ignore_label: int,
    *,
    hist_edges: Any = None,
    contrast: bool = False,
    acquisitions: Sequence[str] | None = None,
    nan_policy: NanPolicy = "raise",
    scheduler_address: str | None = None,
    scheduler: Any = None,
    split_every: int = SPLIT_EVERY,
    device: str | None = None,
) -> tuple[HistogramPartial | None, tuple[np.ndarray, int] | None]:
    """What the pixels labelled ``ignore_label`` change beyond their own moments, in one read.

    The histograms of every class on ``hist_edges`` (the kept pixels' edges; None: none) and the
    spatial contrast sums without the ignored pixels (``contrast``; a neighbour left out adds nothing):
    the two parts of the statistics that dropping a class from stored statistics cannot give exactly
    (:func:`~bandselect.stats.incremental.statistics_without`). Other arguments as
    :func:`compute_statistics`.

    Returns
    -------
    tuple
        ``(classes, histograms, n_clipped)`` or None, and ``(laplacian_abs_sum, laplacian_count)`` or None.
    """
    datasets = datasets_of(source, acquisitions, None)
    n_bands = check_bands(datasets)
    options = {"nan_policy": nan_policy, "fraction": None, "seed": 0, "device": device}
    graphs = []
    if hist_edges is not None:
        graphs.append(histogram_graph(datasets, 0, validate_edges(hist_edges, n_bands), options, split_every))
    if contrast:
        graphs.append(contrast_graph(datasets, split_every, nan_policy, int(ignore_label)))
    results = list(run_graphs(graphs, scheduler_address, scheduler)) if graphs else []
    hist = results.pop(0) if hist_edges is not None else None
    return hist, (results.pop(0) if contrast else None)
