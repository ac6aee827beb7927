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

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import dask
import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from bandselect.errors import InputError, ShapeError, StoreError
from bandselect.names import (
    ATTR_BAND_MAXIMUM,
    ATTR_BAND_MINIMUM,
    DIM_BAND,
    DIM_X,
    DIM_Y,
    VAR_CUBE,
    VAR_MASK,
    VAR_VALID,
)
from bandselect.stats.binning import (
    DEFAULT_N_BINS,
    NanPolicy,
    data_edges,
    prepare_pixels,
    validate_edges,
)
from bandselect.stats.kernels import column_min_max
from bandselect.stats.memory import (
    HistogramPartial,
    bin_pixels,
    histograms_from_arrays,
    merge_histograms,
    statistics_of,
)
from bandselect.stats.partial import BandStatistics
from bandselect.stats.spatial import laplacian_abs_sums_interior

__all__ = [
    "SPLIT_EVERY",
    "CampaignReader",
    "HistogramPartial",
    "compute_histograms",
    "compute_statistics",
    "compute_update",
    "histograms_from_arrays",
    "merge_histograms",
    "recorded_ranges",
    "statistics_of",
]

#: Partials merged per node of the reduction tree.
SPLIT_EVERY = 8

Range = tuple[np.ndarray, np.ndarray]  # per-band (minimum, maximum), float64


def _subsample(n_pixels: int, fraction: float | None, seed: int, key: tuple[int, ...]) -> np.ndarray | None:
    """Deterministic Bernoulli subsample of a chunk's pixels (the same in both passes)."""
    if fraction is None or fraction >= 1.0:
        return None
    rng = np.random.default_rng([seed, *key])
    return rng.random(n_pixels) < fraction


def _prepared(
    block: np.ndarray,
    mask: np.ndarray | None,
    valid: np.ndarray | None,
    nan_policy: NanPolicy,
    fraction: float | None,
    seed: int,
    key: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray, int, int]:
    prepared = prepare_pixels(block, mask, valid=valid, nan_policy=nan_policy)
    pixels, labels = prepared.pixels, prepared.labels
    chosen = _subsample(pixels.shape[0], fraction, seed, key)
    if chosen is not None:
        pixels, labels = pixels[chosen], labels[chosen]
    return pixels, labels, prepared.n_nonfinite, prepared.n_invalid


def _moment_partial(
    block: np.ndarray,
    mask: np.ndarray | None,
    valid: np.ndarray | None,
    edges: np.ndarray | None,
    nan_policy: NanPolicy,
    fraction: float | None,
    seed: int,
    key: tuple[int, ...],
    device: str | None = None,
) -> BandStatistics:
    pixels, labels, n_nonfinite, n_invalid = _prepared(block, mask, valid, nan_policy, fraction, seed, key)
    return BandStatistics.from_pixels(
        pixels, labels, edges, n_nonfinite=n_nonfinite, n_invalid=n_invalid, n_threads=1, device=device
    )


def _histogram_partial(
    block: np.ndarray,
    mask: np.ndarray | None,
    valid: np.ndarray | None,
    edges: np.ndarray,
    nan_policy: NanPolicy,
    fraction: float | None,
    seed: int,
    key: tuple[int, ...],
    device: str | None = None,
) -> HistogramPartial:
    pixels, labels, _, _ = _prepared(block, mask, valid, nan_policy, fraction, seed, key)
    return bin_pixels(pixels, labels, edges, device)


def _range_partial(
    block: np.ndarray, mask: np.ndarray | None, valid: np.ndarray | None, nan_policy: NanPolicy
) -> Range:
    """Per-band min/max of a chunk's kept pixels (every valid, finite pixel: the range is not sampled)."""
    pixels = prepare_pixels(block, None, valid=valid, nan_policy=nan_policy).pixels
    if pixels.shape[0] == 0:
        return np.full(pixels.shape[1], np.inf), np.full(pixels.shape[1], -np.inf)
    return column_min_max(np.ascontiguousarray(pixels))


def _merge_ranges(*parts: Range) -> Range:
    return np.min([p[0] for p in parts], axis=0), np.max([p[1] for p in parts], axis=0)


def _merge_statistics(*parts: BandStatistics) -> BandStatistics:
    out = parts[0]
    for part in parts[1:]:
        out = out.merge(part)
    return out


def _tree(parts: list[Any], merge: Any, split_every: int) -> Any:
    """Merge delayed partials in a tree of fan-in ``split_every`` (depth log_f(n))."""
    # Checked here, where a fan-in below 2 would loop forever, so every entry point is covered.
    if int(split_every) < 2:
        raise InputError("split_every", expected="an integer >= 2", found=split_every, fix="pass 8")
    while len(parts) > 1:
        groups = [parts[i : i + split_every] for i in range(0, len(parts), split_every)]
        parts = [dask.delayed(merge, pure=True)(*group) if len(group) > 1 else group[0] for group in groups]
    return parts[0]


@runtime_checkable
class CampaignReader(Protocol):
    """What the statistics engine needs of a campaign: its acquisition ids and each one as a Dataset
    (:class:`bandselect.store.Campaign` is one; ``stats`` does not import ``store``)."""

    def ids(self) -> list[str]:
        """Published acquisition ids."""
        ...

    def open(self, acquisition_id: str) -> xr.Dataset:
        """One acquisition, lazily."""
        ...


def _datasets(source: Any, acquisitions: Sequence[str] | None, first_n: int | None) -> list[Any]:
    """The xarray Datasets to reduce: a single Dataset, or a campaign's acquisitions."""
    if isinstance(source, xr.Dataset) and VAR_CUBE in source.data_vars:
        if acquisitions is not None:
            raise InputError(
                "acquisitions",
                expected="None for a single Dataset",
                found=list(acquisitions),
                fix="pass a campaign to select acquisitions",
            )
        return [source]
    if not isinstance(source, CampaignReader):
        raise InputError(
            "source",
            expected=f"a campaign (ids(), open(id)) or an xarray.Dataset with '{VAR_CUBE}'",
            found=type(source).__name__,
            fix="pass bandselect.store.open_campaign(path) or an acquisition Dataset",
        )
    available = list(source.ids())
    if acquisitions is None:
        ids = available
    else:
        ids = list(acquisitions)
        unknown = [i for i in ids if i not in set(available)]
        if unknown:
            raise InputError(
                "acquisitions",
                expected=f"ids of the campaign ({len(available)} published)",
                found=f"unknown ids {unknown[:5]}",
                fix="pass ids from campaign.ids()",
            )
    if first_n is not None:
        if int(first_n) < 1:
            raise InputError("first_n", expected="an integer >= 1", found=first_n, fix="pass e.g. first_n=4")
        ids = ids[: int(first_n)]
    if not ids:
        raise InputError(
            "source",
            expected="at least one acquisition",
            found="none",
            fix="append acquisitions to the campaign, or check the acquisitions argument",
        )
    return [source.open(i) for i in ids]


def _blocks(ds: Any) -> list[tuple[Any, Any, Any]]:
    """Delayed ``(cube, mask, valid)`` blocks of one acquisition, aligned on the cube's y/x chunks."""
    cube_var = ds[VAR_CUBE].transpose(DIM_Y, DIM_X, DIM_BAND)
    cube = cube_var.data
    if not hasattr(cube, "to_delayed"):
        import dask.array as da

        cube = da.from_array(np.asarray(cube), chunks=(512, 512, -1))
    if cube.numblocks[2] != 1:
        cube = cube.rechunk({2: -1})  # a pixel's whole spectrum must be in one block
    extras = []
    for name in (VAR_MASK, VAR_VALID):
        if name in ds.data_vars:
            arr = ds[name].transpose(DIM_Y, DIM_X).data
            if not hasattr(arr, "rechunk"):
                import dask.array as da

                arr = da.from_array(np.asarray(arr))
            extras.append(arr.rechunk(cube.chunks[:2]).to_delayed())
        else:
            extras.append(None)
    cube_blocks = cube.to_delayed()
    out = []
    for iy in range(cube.numblocks[0]):
        for ix in range(cube.numblocks[1]):
            out.append(
                (
                    cube_blocks[iy, ix, 0],
                    None if extras[0] is None else extras[0][iy, ix],
                    None if extras[1] is None else extras[1][iy, ix],
                )
            )
    return out


def _halo_blocks(ds: Any) -> list[Any]:
    """Delayed ``(h + 2, w + 2, C)`` blocks of one acquisition's cube, each with a one-pixel halo of its
    neighbours (edge pixels replicated at the image border), for the spatial contrast terms."""
    import dask.array as da

    cube = ds[VAR_CUBE].transpose(DIM_Y, DIM_X, DIM_BAND).data
    if not isinstance(cube, da.Array):
        cube = da.from_array(np.asarray(cube), chunks=(512, 512, -1))
    cube = cube.rechunk({2: -1})
    padded = da.overlap.overlap(
        cube, depth={0: 1, 1: 1, 2: 0}, boundary={0: "nearest", 1: "nearest", 2: "none"}
    )
    return list(padded.to_delayed().ravel())


def _sum_contrast(*parts: tuple[np.ndarray, int]) -> tuple[np.ndarray, int]:
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def _fraction(datasets: list[Any], max_pixels: int | None) -> float | None:
    if max_pixels is None:
        return None
    if int(max_pixels) < 1:
        raise InputError(
            "max_pixels",
            expected="an integer >= 1 or None",
            found=max_pixels,
            fix="pass e.g. max_pixels=1_000_000",
        )
    total = sum(int(ds.sizes[DIM_Y]) * int(ds.sizes[DIM_X]) for ds in datasets)
    return min(1.0, int(max_pixels) / max(total, 1))


def _check_bands(datasets: list[Any]) -> int:
    counts = {int(ds.sizes[DIM_BAND]) for ds in datasets}
    if len(counts) != 1:
        raise ShapeError(
            "acquisitions",
            expected="the same number of bands in every acquisition",
            found=f"band counts {sorted(counts)}",
            fix="reduce acquisitions of one sensor together",
        )
    return counts.pop()


def _run(graphs: list[Any], scheduler_address: str | None, scheduler: Any) -> tuple[Any, ...]:
    """ONE ``dask.compute`` over ``graphs`` on the threaded scheduler or a distributed cluster."""
    if scheduler_address is not None:
        from distributed import Client

        with Client(scheduler_address, set_as_default=False) as client:
            return dask.compute(*graphs, scheduler=client)
    if scheduler in (None, "threads", "threading"):
        # Dask's pool already runs one task per core; BLAS threads on top (OpenBLAS spins while it waits)
        # oversubscribe the cores. Distributed workers get OPENBLAS_NUM_THREADS=1 from their nanny.
        with threadpool_limits(limits=1, user_api="blas"):
            return dask.compute(*graphs, scheduler="threads")
    return dask.compute(*graphs, scheduler=scheduler)


def recorded_ranges(datasets: Sequence[Any]) -> tuple[Range | None, list[int]]:
    """The per-band range recorded in the datasets' attributes, merged, and the datasets without one.

    Ingest records ``band_minimum``/``band_maximum`` over each acquisition's valid pixels (empty lists
    for an acquisition without a valid pixel, which adds nothing to the range).

    Returns
    -------
    tuple
        ``((minimum, maximum), missing)``: the merged ``(C,)`` float64 range (None when no dataset
        recorded a non-empty one) and the positions in ``datasets`` of those that recorded none.

    Raises
    ------
    StoreError
        A recorded range of the wrong length or with minimum > maximum.
    """
    low = high = None
    missing = []
    for position, ds in enumerate(datasets):
        attrs = ds.attrs
        if ATTR_BAND_MINIMUM not in attrs or ATTR_BAND_MAXIMUM not in attrs:
            missing.append(position)
            continue
        lo = np.asarray(attrs[ATTR_BAND_MINIMUM], dtype=np.float64).reshape(-1)
        hi = np.asarray(attrs[ATTR_BAND_MAXIMUM], dtype=np.float64).reshape(-1)
        if lo.size == 0 and hi.size == 0:
            continue
        n_bands = int(ds.sizes[DIM_BAND])
        if lo.shape != (n_bands,) or hi.shape != (n_bands,) or np.any(hi < lo) or not np.all(np.isfinite(lo)):
            raise StoreError(
                f"recorded band range of acquisition {attrs.get('acquisition_id', position)!r}",
                expected=f"{n_bands} finite minima and maxima with minimum <= maximum",
                found=f"{lo.size} minima, {hi.size} maxima",
                fix="re-ingest the acquisition, or pass use_recorded_ranges=False",
            )
        low = lo if low is None else np.minimum(low, lo)
        high = hi if high is None else np.maximum(high, hi)
    return (None if low is None or high is None else (low, high)), missing


def _datasets_range(
    datasets: list[Any], use_recorded: bool, nan_policy: NanPolicy, split_every: int, run: Any
) -> Range | None:
    """Per-band range of the datasets' kept pixels: recorded ranges merged, a range pass for the rest."""
    if use_recorded:
        recorded, missing = recorded_ranges(datasets)
    else:
        recorded, missing = None, list(range(len(datasets)))
    parts = [] if recorded is None else [recorded]
    if missing:
        partials = [
            dask.delayed(_range_partial, pure=True)(cube, mask, valid, nan_policy)
            for position in missing
            for cube, mask, valid in _blocks(datasets[position])
        ]
        (scanned,) = run([_tree(partials, _merge_ranges, int(split_every))])
        parts.append(scanned)
    low, high = _merge_ranges(*parts) if parts else (None, None)
    if low is None or not np.all(np.isfinite(low)):
        return None  # no kept pixel anywhere
    return low, high


def _moment_graph(
    datasets: list[Any],
    offset: int,
    edges: np.ndarray | None,
    options: dict[str, Any],
    split_every: int,
) -> Any:
    """One delayed BandStatistics of every chunk of ``datasets`` (moments, and histograms on ``edges``)."""
    edges_node = None if edges is None else dask.delayed(edges, pure=True)
    partials = [
        dask.delayed(_moment_partial, pure=True)(
            cube, mask, valid, edges_node, options["nan_policy"], options["fraction"], options["seed"],
            (offset + d, i), options["device"],
        )
        for d, ds in enumerate(datasets)
        for i, (cube, mask, valid) in enumerate(_blocks(ds))
    ]  # fmt: skip
    return _tree(partials, _merge_statistics, int(split_every))


def _histogram_graph(
    datasets: list[Any], offset: int, edges: np.ndarray, options: dict[str, Any], split_every: int
) -> Any:
    """One delayed histogram partial of every chunk of ``datasets`` on ``edges``."""
    edges_node = dask.delayed(edges, pure=True)
    partials = [
        dask.delayed(_histogram_partial, pure=True)(
            cube, mask, valid, edges_node, options["nan_policy"], options["fraction"], options["seed"],
            (offset + d, i), options["device"],
        )
        for d, ds in enumerate(datasets)
        for i, (cube, mask, valid) in enumerate(_blocks(ds))
    ]  # fmt: skip
    return _tree(partials, merge_histograms, int(split_every))


def _contrast_graph(datasets: list[Any], split_every: int) -> Any:
    # The halo blocks share the chunk reads of the moments graph: one compute, one read of each chunk.
    halo_parts = [
        dask.delayed(laplacian_abs_sums_interior, pure=True)(block)
        for ds in datasets
        for block in _halo_blocks(ds)
    ]
    return _tree(halo_parts, _sum_contrast, int(split_every))


def _check_range(stats: BandStatistics, expected: Range, sampled: bool) -> None:
    """The pass's own min/max must agree with the range its edges came from (recorded at ingest)."""
    low, high = expected
    if stats.count == 0:
        return
    inside = np.all(stats.minimum >= low) and np.all(stats.maximum <= high)
    exact = np.array_equal(stats.minimum, low) and np.array_equal(stats.maximum, high)
    if inside if sampled else exact:
        return
    raise StoreError(
        "recorded band ranges of the campaign",
        expected="the per-band min/max of the pixels, as ingest recorded them",
        found=f"data range [{stats.minimum.min():g}, {stats.maximum.max():g}] against recorded "
        f"[{low.min():g}, {high.max():g}]",
        fix="re-ingest the acquisitions, or pass use_recorded_ranges=False (reads the store twice)",
    )


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
        Also sum the spatial contrast terms (``BandStatistics.laplacian_abs_sum``) over every pixel of
        every acquisition (not subsampled; each chunk read with a one-pixel halo of its neighbours, so the
        result equals the whole-image value whatever the chunking).
    device
        None: NumPy kernels in each task. A torch device (``"cuda"``, ``"cpu"``): each task computes its
        partial with :mod:`bandselect.stats.torch_backend` on that device.
    use_recorded_ranges
        Take the edges' range from the acquisitions' attributes (default). False scans it (two reads).

    Raises
    ------
    StoreError
        The pixels fall outside (or, unsampled, do not reach) the range recorded at ingest.
    """
    datasets = _datasets(source, acquisitions, first_n)
    n_bands = _check_bands(datasets)
    fraction = _fraction(datasets, max_pixels)
    options = {"nan_policy": nan_policy, "fraction": fraction, "seed": seed, "device": device}

    def run(graphs: list[Any]) -> tuple[Any, ...]:
        return _run(graphs, scheduler_address, scheduler)

    edges = None if hist_edges is None else validate_edges(hist_edges, n_bands)
    data_range = None
    if edges is None and n_bins is not None:
        data_range = _datasets_range(datasets, use_recorded_ranges, nan_policy, split_every, run)
        if data_range is not None:
            edges = data_edges(*data_range, int(n_bins))
    graphs = [_moment_graph(datasets, 0, edges, options, split_every)]
    if contrast:
        graphs.append(_contrast_graph(datasets, split_every))
    results = run(graphs)
    stats = results[0]
    if contrast:
        stats = stats.with_contrast(*results[1])
    if data_range is not None:
        _check_range(stats, data_range, sampled=fraction is not None)
    return stats


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
) -> tuple[BandStatistics, bool]:
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

    Returns
    -------
    tuple
        The merged statistics and whether the stored histograms were rebuilt on new edges.
    """
    new = _datasets(source, new_ids, None)
    _check_bands(new)

    def run(graphs: list[Any]) -> tuple[Any, ...]:
        return _run(graphs, scheduler_address, scheduler)

    new_range = _datasets_range(new, use_recorded_ranges, nan_policy, split_every, run)
    parts = [part for part in ((stored.minimum, stored.maximum), new_range) if part is not None]
    low, high = _merge_ranges(*parts)
    edges = data_edges(low, high, int(n_bins)) if np.all(np.isfinite(low)) else None
    rebuilt = edges is not None and (
        stored.hist_edges is None or not np.array_equal(edges, stored.hist_edges)
    )
    options = {"nan_policy": nan_policy, "fraction": None, "seed": 0, "device": device}
    graphs = [_moment_graph(new, 0, edges, options, split_every)]
    if contrast:
        graphs.append(_contrast_graph(new, split_every))
    if rebuilt:
        rebin = _datasets(source, stored_ids, None)
        graphs.append(_histogram_graph(rebin, len(new), edges, options, split_every))
    results = list(run(graphs))
    part = results.pop(0)
    if contrast:
        part = part.with_contrast(*results.pop(0))
    if new_range is not None:
        _check_range(part, new_range, sampled=False)
    base = stored.with_histograms(edges, *results.pop(0)) if rebuilt else stored
    return base.merge(part), rebuilt


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
    datasets = _datasets(source, acquisitions, first_n)
    edges = validate_edges(hist_edges, _check_bands(datasets))
    options = {"nan_policy": nan_policy, "fraction": _fraction(datasets, max_pixels), "seed": seed}
    options["device"] = device
    (hist,) = _run([_histogram_graph(datasets, 0, edges, options, split_every)], scheduler_address, scheduler)
    return hist
