"""Dataset-wide statistics over a campaign store with Dask: per-chunk partials and a tree reduction.

Each pass is one Dask graph over every acquisition and chunk — a partial per ``(y, x)`` chunk, merged in
a tree of fan-in ``split_every`` — evaluated with ONE ``dask.compute``. With histograms there are two
passes in all: pass 1 gives min/max, moments and the band Gram matrices per class; pass 2 bins the same
pixels on the edges the binning rule (:func:`~bandselect.stats.binning.data_edges`) gives pass 1's min/max
(histograms only, the moments are not recomputed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import dask
import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from bandselect.errors import InputError, ShapeError
from bandselect.names import DIM_BAND, DIM_X, DIM_Y, VAR_CUBE, VAR_MASK, VAR_VALID
from bandselect.stats.binning import (
    DEFAULT_N_BINS,
    NanPolicy,
    data_edges,
    prepare_pixels,
    validate_edges,
)
from bandselect.stats.kernels import ChunkAccumulator, class_layout
from bandselect.stats.partial import BandStatistics
from bandselect.stats.spatial import laplacian_abs_sums_interior

#: Partials merged per node of the reduction tree.
SPLIT_EVERY = 8

HistogramPartial = tuple[np.ndarray, np.ndarray, np.ndarray]  # classes, histograms, clipped


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
) -> BandStatistics:
    pixels, labels, n_nonfinite, n_invalid = _prepared(block, mask, valid, nan_policy, fraction, seed, key)
    return BandStatistics._from_pixels(pixels, labels, edges, n_nonfinite=n_nonfinite, n_invalid=n_invalid)


def _bin_pixels(pixels: np.ndarray, labels: np.ndarray, edges: np.ndarray) -> HistogramPartial:
    classes, class_index = class_layout(labels)
    accumulator = ChunkAccumulator(pixels.shape[1], classes.size, edges, moments=False)
    accumulator.add_all(pixels, class_index)
    result = accumulator.result()
    return classes, result["histograms"], result["n_clipped"]


def _histogram_partial(
    block: np.ndarray,
    mask: np.ndarray | None,
    valid: np.ndarray | None,
    edges: np.ndarray,
    nan_policy: NanPolicy,
    fraction: float | None,
    seed: int,
    key: tuple[int, ...],
) -> HistogramPartial:
    pixels, labels, _, _ = _prepared(block, mask, valid, nan_policy, fraction, seed, key)
    return _bin_pixels(pixels, labels, edges)


def histograms_from_arrays(
    cube: Any, mask: Any = None, *, hist_edges: Any, valid: Any = None, nan_policy: NanPolicy = "raise"
) -> HistogramPartial:
    """Per-class histograms of one chunk, without the moments: the second pass of a streamed job.

    Inputs are as for :meth:`BandStatistics.from_arrays`. Merge the results with
    :func:`merge_histograms` and attach them to the first pass's statistics with
    :meth:`BandStatistics.with_histograms`, so the moments are computed once.

    Returns
    -------
    tuple
        ``classes`` ``(K,)``, ``histograms`` ``(K, C, n_bins)`` and ``n_clipped`` ``(K, C)`` (int64).
    """
    prepared = prepare_pixels(cube, mask, valid=valid, nan_policy=nan_policy)
    edges = validate_edges(hist_edges, prepared.pixels.shape[1])
    return _bin_pixels(prepared.pixels, prepared.labels, edges)


def statistics_of(
    cube: Any,
    mask: Any = None,
    *,
    n_bins: int | None = DEFAULT_N_BINS,
    contrast: bool = False,
    valid: Any = None,
    nan_policy: NanPolicy = "raise",
) -> BandStatistics:
    """Statistics of in-memory arrays, made exactly as :func:`compute_statistics` makes them from a store.

    Moments (and the spatial contrast terms when ``contrast``), then per-class histograms on
    ``data_edges(minimum, maximum, n_bins)`` (the binning rule) of the same pixels (``n_bins=None``:
    none). The same data in memory and in a campaign store therefore gives the same statistics, bins
    included, and the same selection.

    Parameters
    ----------
    cube, mask, valid, nan_policy
        As :meth:`BandStatistics.from_arrays` (``contrast`` needs images ``(..., H, W, C)``).
    n_bins
        Histogram bins per band, or None.
    contrast
        Also sum the spatial contrast terms.
    """
    first = BandStatistics.from_arrays(cube, mask, valid=valid, nan_policy=nan_policy, contrast=contrast)
    if n_bins is None or first.count == 0:
        return first
    edges = data_edges(first.minimum, first.maximum, int(n_bins))
    histograms = histograms_from_arrays(cube, mask, hist_edges=edges, valid=valid, nan_policy=nan_policy)
    return first.with_histograms(edges, *histograms)


def _merge_statistics(*parts: BandStatistics) -> BandStatistics:
    out = parts[0]
    for part in parts[1:]:
        out = out.merge(part)
    return out


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


def _histogram_pass(
    blocks: list[tuple[int, tuple[Any, Any, Any]]],
    edges: np.ndarray,
    nan_policy: NanPolicy,
    fraction: float | None,
    seed: int,
    split_every: int,
    scheduler_address: str | None,
    scheduler: Any,
) -> HistogramPartial:
    """One graph binning every block on ``edges`` (subsample keys as in the moments pass), one compute."""
    edges_node = dask.delayed(edges, pure=True)
    partials = [
        dask.delayed(_histogram_partial, pure=True)(
            cube, mask, valid, edges_node, nan_policy, fraction, seed, (d, i)
        )
        for i, (d, (cube, mask, valid)) in enumerate(blocks)
    ]
    (hist,) = _run([_tree(partials, merge_histograms, int(split_every))], scheduler_address, scheduler)
    return hist


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
) -> BandStatistics:
    """Merged :class:`BandStatistics` of a campaign (or one acquisition Dataset), out of core.

    Parameters
    ----------
    source
        A campaign (``ids()``, ``open(id) -> xarray.Dataset``) or an ``xarray.Dataset`` with a dask-backed
        ``cube`` ``(y, x, band)``, optional ``mask`` ``(y, x)`` labels and ``valid`` ``(y, x)`` bool.
    n_bins
        Histogram bins per band (edges from pass 1's min/max: two passes). None: no histograms (one pass).
    hist_edges
        Fixed ``(C, n_bins + 1)`` edges instead: one pass, values outside counted in ``n_clipped``.
    acquisitions
        Acquisition ids to include (default: all published).
    first_n
        Keep only the first ``n`` of those acquisitions.
    max_pixels
        Approximate pixel budget: each chunk keeps a seeded Bernoulli sample of its pixels.
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
    """
    datasets = _datasets(source, acquisitions, first_n)
    n_bands = _check_bands(datasets)
    fraction = _fraction(datasets, max_pixels)
    blocks = [(d, b) for d, ds in enumerate(datasets) for b in _blocks(ds)]
    edges = None if hist_edges is None else validate_edges(hist_edges, n_bands)
    edges_node = None if edges is None else dask.delayed(edges, pure=True)

    partials = [
        dask.delayed(_moment_partial, pure=True)(
            cube, mask, valid, edges_node, nan_policy, fraction, seed, (d, i)
        )
        for i, (d, (cube, mask, valid)) in enumerate(blocks)
    ]
    graphs = [_tree(partials, _merge_statistics, int(split_every))]
    if contrast:
        # The halo blocks share the chunk reads of the moments graph: one compute, one read of each chunk.
        halo_parts = [
            dask.delayed(laplacian_abs_sums_interior, pure=True)(block)
            for ds in datasets
            for block in _halo_blocks(ds)
        ]
        graphs.append(_tree(halo_parts, _sum_contrast, int(split_every)))
    results = _run(graphs, scheduler_address, scheduler)
    stats = results[0]
    if contrast:
        stats = stats.with_contrast(*results[1])
    if edges is not None or n_bins is None or stats.count == 0:
        return stats

    edges = data_edges(stats.minimum, stats.maximum, int(n_bins))
    hist = _histogram_pass(
        blocks, edges, nan_policy, fraction, seed, split_every, scheduler_address, scheduler
    )
    return stats.with_histograms(edges, *hist)


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
) -> HistogramPartial:
    """Histogram-only pass: ``(classes, histograms (K, C, n_bins), n_clipped (K, C))`` on fixed edges.

    Used to rebuild histograms on new edges without recomputing moments
    (see :meth:`BandStatistics.with_histograms`). Arguments as :func:`compute_statistics`.
    """
    datasets = _datasets(source, acquisitions, first_n)
    edges = validate_edges(hist_edges, _check_bands(datasets))
    fraction = _fraction(datasets, max_pixels)
    blocks = [(d, b) for d, ds in enumerate(datasets) for b in _blocks(ds)]
    return _histogram_pass(
        blocks, edges, nan_policy, fraction, seed, split_every, scheduler_address, scheduler
    )
