"""The Dask graphs of the statistics jobs: chunk blocks of the acquisitions, per-chunk partials, trees.

:mod:`bandselect.stats.compute` assembles these pieces into jobs (one ``dask.compute`` each). A partial is
a pure function of its chunk (and the job's settings), so a lost worker's tasks can be rerun anywhere and
give the same result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import dask
import numpy as np
import xarray as xr
from dask.callbacks import Callback
from threadpoolctl import threadpool_limits

from bandselect.errors import InputError, ShapeError, StoreError
from bandselect.names import (
    ATTR_BAND_MAXIMUM,
    ATTR_BAND_MINIMUM,
    ATTR_CLASS_BAND_MAXIMUM,
    ATTR_CLASS_BAND_MINIMUM,
    ATTR_CLASS_LABELS,
    CLASS_RANGE_ATTRS,
    DIM_BAND,
    DIM_X,
    DIM_Y,
    VAR_CUBE,
    VAR_MASK,
    VAR_VALID,
)
from bandselect.progress import STATISTICS_STEP, report
from bandselect.stats.binning import NanPolicy, prepare_pixels
from bandselect.stats.kernels import column_min_max, range_is_finite
from bandselect.stats.memory import HistogramPartial, bin_pixels, merge_histograms
from bandselect.stats.partial import BandStatistics
from bandselect.stats.spatial import laplacian_abs_sums_interior

Range = tuple[np.ndarray, np.ndarray]  # per-band (minimum, maximum), float64


def subsample(n_pixels: int, fraction: float | None, seed: int, key: tuple[int, ...]) -> np.ndarray | None:
    """Deterministic Bernoulli subsample of a chunk's pixels (the same in both passes)."""
    if fraction is None or fraction >= 1.0:
        return None
    rng = np.random.default_rng([seed, *key])
    return rng.random(n_pixels) < fraction


def prepared(
    block: np.ndarray,
    mask: np.ndarray | None,
    valid: np.ndarray | None,
    nan_policy: NanPolicy,
    fraction: float | None,
    seed: int,
    key: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """A chunk's kept pixels and labels (valid, NaN policy, the seeded subsample) and what was left out."""
    kept = prepare_pixels(block, mask, valid=valid, nan_policy=nan_policy)
    pixels, labels = kept.pixels, kept.labels
    chosen = subsample(pixels.shape[0], fraction, seed, key)
    if chosen is not None:
        pixels, labels = pixels[chosen], labels[chosen]
    return pixels, labels, kept.n_nonfinite, kept.n_invalid


def moment_partial(
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
    """The chunk's :class:`BandStatistics`: moments, Gram matrices, min/max and, on ``edges``, histograms."""
    if fraction is None and device is None:
        # The pass's own min/max shows any NaN/Inf (a minimum or maximum that is not finite): the NaN
        # test, a read of its own, runs only then, and the chunk is accumulated again under the policy.
        kept = prepare_pixels(block, mask, valid=valid, nan_policy=nan_policy, check_finite=False)
        stats = BandStatistics.from_pixels(
            kept.pixels, kept.labels, edges, n_invalid=kept.n_invalid, n_threads=1
        )
        if range_is_finite(stats.class_minimum, stats.class_maximum):
            return stats
    pixels, labels, n_nonfinite, n_invalid = prepared(block, mask, valid, nan_policy, fraction, seed, key)
    return BandStatistics.from_pixels(
        pixels, labels, edges, n_nonfinite=n_nonfinite, n_invalid=n_invalid, n_threads=1, device=device
    )


def histogram_partial(
    block: np.ndarray,
    mask: np.ndarray | None,
    valid: np.ndarray | None,
    edges: np.ndarray,
    nan_policy: NanPolicy,
    fraction: float | None,
    seed: int,
    key: tuple[int, ...],
    device: str | None = None,
    ignore_label: int | None = None,
) -> HistogramPartial:
    """The chunk's per-class histograms on ``edges`` (a re-binning of stored acquisitions), without the
    pixels labelled ``ignore_label`` when one is given."""
    pixels, labels, _, _ = prepared(block, mask, valid, nan_policy, fraction, seed, key)
    if ignore_label is not None:
        counted = labels != int(ignore_label)
        if not bool(counted.all()):
            pixels, labels = pixels[counted], labels[counted]
    return bin_pixels(pixels, labels, edges, device)


def range_partial(
    block: np.ndarray, mask: np.ndarray | None, valid: np.ndarray | None, nan_policy: NanPolicy
) -> Range:
    """Per-band min/max of a chunk's kept pixels (every valid, finite pixel: the range is not sampled)."""
    pixels = prepare_pixels(block, None, valid=valid, nan_policy=nan_policy).pixels
    if pixels.shape[0] == 0:
        return np.full(pixels.shape[1], np.inf), np.full(pixels.shape[1], -np.inf)
    return column_min_max(np.ascontiguousarray(pixels))


def merge_ranges(*parts: Range) -> Range:
    """Per-band min of the minima and max of the maxima."""
    return np.min([p[0] for p in parts], axis=0), np.max([p[1] for p in parts], axis=0)


def merge_statistics(*parts: BandStatistics) -> BandStatistics:
    """Merge partials (one node of the reduction tree)."""
    return BandStatistics.merge_all(parts)


def tree(parts: list[Any], merge: Any, split_every: int) -> Any:
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


def datasets_of(source: Any, acquisitions: Sequence[str] | None, first_n: int | None) -> list[Any]:
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


def _pixel_flags(ds: Any, chunks: tuple[Any, ...]) -> list[Any]:
    """The acquisition's ``mask`` and ``valid`` ``(y, x)`` as dask arrays on the cube's y/x ``chunks``
    (None where absent), so that their blocks line up with the cube's."""
    import dask.array as da

    out = []
    for name in (VAR_MASK, VAR_VALID):
        if name not in ds.data_vars:
            out.append(None)
            continue
        arr = ds[name].transpose(DIM_Y, DIM_X).data
        if not isinstance(arr, da.Array):
            arr = da.from_array(np.asarray(arr))
        out.append(arr.rechunk(chunks))
    return out


def _delayed_blocks(arr: Any) -> Any:
    """``arr.to_delayed()`` without graph optimisation: optimised, each graph (the moments' blocks, the
    halo blocks of the contrast terms) fuses its own copy of the chunk reads under new keys, and a job
    asking for both read every interior chunk twice (60 reads for 48 chunks, measured); unoptimised,
    both graphs share the store's chunk keys and one compute reads each chunk once."""
    return arr.to_delayed(optimize_graph=False)


def blocks_of(ds: Any) -> list[tuple[Any, Any, Any]]:
    """Delayed ``(cube, mask, valid)`` blocks of one acquisition, aligned on the cube's y/x chunks."""
    cube_var = ds[VAR_CUBE].transpose(DIM_Y, DIM_X, DIM_BAND)
    cube = cube_var.data
    if not hasattr(cube, "to_delayed"):
        import dask.array as da

        cube = da.from_array(np.asarray(cube), chunks=(512, 512, -1))
    if cube.numblocks[2] != 1:
        cube = cube.rechunk({2: -1})  # a pixel's whole spectrum must be in one block
    extras = [None if arr is None else _delayed_blocks(arr) for arr in _pixel_flags(ds, cube.chunks[:2])]
    cube_blocks = _delayed_blocks(cube)
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


def halo_blocks_of(ds: Any) -> list[tuple[Any, Any, Any]]:
    """Delayed ``(cube, mask, valid)`` blocks of one acquisition, each ``(h + 2, w + 2, ...)`` with a
    one-pixel halo of its neighbours (edge pixels replicated at the image border), for the spatial
    contrast terms; mask and valid are None where the acquisition has none."""
    import dask.array as da

    cube = ds[VAR_CUBE].transpose(DIM_Y, DIM_X, DIM_BAND).data
    if not isinstance(cube, da.Array):
        cube = da.from_array(np.asarray(cube), chunks=(512, 512, -1))
    cube = cube.rechunk({2: -1})
    padded = da.overlap.overlap(
        cube, depth={0: 1, 1: 1, 2: 0}, boundary={0: "nearest", 1: "nearest", 2: "none"}
    )
    extras = [
        None
        if arr is None
        else _delayed_blocks(da.overlap.overlap(arr, depth={0: 1, 1: 1}, boundary="nearest"))
        for arr in _pixel_flags(ds, cube.chunks[:2])
    ]
    cube_blocks = _delayed_blocks(padded)
    return [
        (
            cube_blocks[iy, ix, 0],
            None if extras[0] is None else extras[0][iy, ix],
            None if extras[1] is None else extras[1][iy, ix],
        )
        for iy in range(padded.numblocks[0])
        for ix in range(padded.numblocks[1])
    ]


def contrast_partial(
    cube: Any, mask: Any, valid: Any, nan_policy: str, ignore_label: int | None
) -> tuple[np.ndarray, int]:
    """Contrast sums of one halo block over the pixels that count, as the in-memory path counts them:
    ``valid``, not labelled ``ignore_label``, and finite under ``nan_policy="omit"``."""
    values = np.asarray(cube)
    keep = None if valid is None else np.asarray(valid, dtype=bool)
    if ignore_label is not None and mask is not None:
        labelled = np.asarray(mask) != int(ignore_label)
        keep = labelled if keep is None else keep & labelled
    if nan_policy == "omit" and np.issubdtype(values.dtype, np.floating):
        finite = np.isfinite(values).all(axis=-1)
        keep = finite if keep is None else keep & finite
    return laplacian_abs_sums_interior(values, keep)


def sum_contrast(*parts: tuple[np.ndarray, int]) -> tuple[np.ndarray, int]:
    """Add spatial-contrast partials ``(sums, count)``."""
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def sample_fraction(datasets: list[Any], max_pixels: int | None) -> float | None:
    """The Bernoulli fraction that keeps about ``max_pixels`` pixels of the datasets (None: all of them,
    also when the budget covers every pixel)."""
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
    if int(max_pixels) >= total:
        return None  # a budget that covers every pixel keeps them all: no sample (and no draws)
    return int(max_pixels) / total


def check_bands(datasets: list[Any]) -> int:
    """The datasets' common band count (a :class:`ShapeError` when they differ)."""
    counts = {int(ds.sizes[DIM_BAND]) for ds in datasets}
    if len(counts) != 1:
        raise ShapeError(
            "acquisitions",
            expected="the same number of bands in every acquisition",
            found=f"band counts {sorted(counts)}",
            fix="reduce acquisitions of one sensor together",
        )
    return counts.pop()


class _ReportProgress(Callback):
    """Reports a local Dask job's finished tasks (:mod:`bandselect.progress`) at every tenth of the job."""

    def __init__(self) -> None:
        super().__init__()
        self.reported = 0

    def _posttask(self, key: Any, result: Any, dsk: Any, state: dict[str, Any], worker_id: Any) -> None:
        total = sum(len(state[part]) for part in ("ready", "waiting", "running", "finished"))
        done = len(state["finished"]) + 1  # this task is marked finished after its callbacks
        tenth = (10 * done) // max(total, 1)
        if tenth > self.reported:
            self.reported = tenth
            report(STATISTICS_STEP, min(done, total), total, f"{min(done, total)} of {total} Dask tasks")


def run_graphs(graphs: list[Any], scheduler_address: str | None, scheduler: Any) -> tuple[Any, ...]:
    """ONE ``dask.compute`` over ``graphs`` on the threaded scheduler or a distributed cluster."""
    if scheduler_address is not None:
        from distributed import Client

        with Client(scheduler_address, set_as_default=False) as client:
            return dask.compute(*graphs, scheduler=client)
    if scheduler in (None, "threads", "threading"):
        # Dask's pool already runs one task per core; BLAS threads on top (OpenBLAS spins while it waits)
        # oversubscribe the cores. Distributed workers get OPENBLAS_NUM_THREADS=1 from their nanny.
        with threadpool_limits(limits=1, user_api="blas"), _ReportProgress():
            return dask.compute(*graphs, scheduler="threads")
    with _ReportProgress():
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
        n_bands = int(ds.sizes[DIM_BAND])
        what = f"recorded band range of acquisition {attrs.get('acquisition_id', position)!r}"
        expected = f"{n_bands} finite minima and maxima with minimum <= maximum"
        fix = "re-ingest the acquisition, or pass use_recorded_ranges=False"
        try:
            lo = np.asarray(attrs[ATTR_BAND_MINIMUM], dtype=np.float64).reshape(-1)
            hi = np.asarray(attrs[ATTR_BAND_MAXIMUM], dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as error:  # an edited attribute: text, nested lists
            raise StoreError(
                what, expected=expected, found=f"values that are not numbers ({error})", fix=fix
            ) from error
        if lo.size == 0 and hi.size == 0:
            continue
        finite = bool(np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)))
        if lo.shape != (n_bands,) or hi.shape != (n_bands,) or np.any(hi < lo) or not finite:
            raise StoreError(what, expected=expected, found=f"{lo.size} minima, {hi.size} maxima", fix=fix)
        low = lo if low is None else np.minimum(low, lo)
        high = hi if high is None else np.maximum(high, hi)
    return (None if low is None or high is None else (low, high)), missing


def recorded_kept_ranges(datasets: Sequence[Any], ignore_label: int) -> tuple[Range | None, bool, list[int]]:
    """The per-band range of the pixels not labelled ``ignore_label``, from the ranges recorded at ingest.

    An acquisition with a mask contributes its recorded per-class ranges
    (:data:`~bandselect.names.ATTR_CLASS_LABELS`) other than the ignored label's; one without a mask
    is all class 0 (its band range counts unless the ignored label is 0).

    Returns
    -------
    tuple
        ``(range, ignored_seen, missing)``: the merged ``(C,)`` float64 range of the kept pixels (None
        when none is recorded), whether any acquisition recorded pixels of the ignored label, and the
        positions in ``datasets`` of those that recorded no per-class (or band) range.

    Raises
    ------
    StoreError
        Recorded class ranges that are not one finite row of minima <= maxima per label.
    """
    label = int(ignore_label)
    parts: list[Range] = []
    seen = False
    missing = []
    for position, ds in enumerate(datasets):
        attrs = ds.attrs
        if VAR_MASK not in ds.data_vars:
            whole, lacking = recorded_ranges([ds])
            if lacking:
                missing.append(position)
            elif whole is not None and label == 0:
                seen = True
            elif whole is not None:
                parts.append(whole)
            continue
        if not all(name in attrs for name in CLASS_RANGE_ATTRS):
            missing.append(position)
            continue
        n_bands = int(ds.sizes[DIM_BAND])
        what = f"recorded class ranges of acquisition {attrs.get('acquisition_id', position)!r}"
        fix = "re-ingest the acquisition (or leave out ignore_label: the job then reads the store twice)"
        try:
            labels = np.asarray(attrs[ATTR_CLASS_LABELS], dtype=np.int64).reshape(-1)
            lo = np.asarray(attrs[ATTR_CLASS_BAND_MINIMUM], dtype=np.float64)
            hi = np.asarray(attrs[ATTR_CLASS_BAND_MAXIMUM], dtype=np.float64)
        except (TypeError, ValueError) as error:  # an edited attribute: text, ragged lists
            raise StoreError(
                what, expected="integer labels and numeric ranges", found=f"other values ({error})", fix=fix
            ) from error
        if labels.size == 0 and np.size(lo) == 0 and np.size(hi) == 0:
            continue  # no valid pixel: nothing kept, nothing ignored
        expected_shape = (labels.size, n_bands)
        if lo.shape != expected_shape or hi.shape != expected_shape:
            raise StoreError(
                what,
                expected=f"{labels.size} rows of {n_bands} minima and maxima",
                found=f"shapes {lo.shape} and {hi.shape}",
                fix=fix,
            )
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))) or np.any(hi < lo):
            raise StoreError(what, expected="finite minima <= maxima", found="other values", fix=fix)
        kept = labels != label
        seen = seen or not bool(kept.all())
        if kept.any():
            parts.append((lo[kept].min(axis=0), hi[kept].max(axis=0)))
    return (merge_ranges(*parts) if parts else None), seen, missing


def datasets_range(
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
            dask.delayed(range_partial, pure=True)(cube, mask, valid, nan_policy)
            for position in missing
            for cube, mask, valid in blocks_of(datasets[position])
        ]
        (scanned,) = run([tree(partials, merge_ranges, int(split_every))])
        parts.append(scanned)
    low, high = merge_ranges(*parts) if parts else (None, None)
    if low is None or not np.all(np.isfinite(low)):
        return None  # no kept pixel anywhere
    return low, high


def moment_graph(
    datasets: list[Any],
    offset: int,
    edges: np.ndarray | None,
    options: dict[str, Any],
    split_every: int,
) -> Any:
    """One delayed BandStatistics of every chunk of ``datasets`` (moments, and histograms on ``edges``)."""
    edges_node = None if edges is None else dask.delayed(edges, pure=True)
    partials = [
        dask.delayed(moment_partial, pure=True)(
            cube, mask, valid, edges_node, options["nan_policy"], options["fraction"], options["seed"],
            (offset + d, i), options["device"],
        )
        for d, ds in enumerate(datasets)
        for i, (cube, mask, valid) in enumerate(blocks_of(ds))
    ]  # fmt: skip
    return tree(partials, merge_statistics, int(split_every))


def histogram_graph(
    datasets: list[Any],
    offset: int,
    edges: np.ndarray,
    options: dict[str, Any],
    split_every: int,
    ignore_label: int | None = None,
) -> Any:
    """One delayed histogram partial of every chunk of ``datasets`` on ``edges`` (without the pixels
    labelled ``ignore_label``, when given)."""
    edges_node = dask.delayed(edges, pure=True)
    partials = [
        dask.delayed(histogram_partial, pure=True)(
            cube, mask, valid, edges_node, options["nan_policy"], options["fraction"], options["seed"],
            (offset + d, i), options["device"], ignore_label,
        )
        for d, ds in enumerate(datasets)
        for i, (cube, mask, valid) in enumerate(blocks_of(ds))
    ]  # fmt: skip
    return tree(partials, merge_histograms, int(split_every))


def contrast_graph(
    datasets: list[Any], split_every: int, nan_policy: str = "raise", ignore_label: int | None = None
) -> Any:
    # The halo blocks share the chunk reads of the moments graph: one compute, one read of each chunk.
    halo_parts = [
        dask.delayed(contrast_partial, pure=True)(cube, mask, valid, nan_policy, ignore_label)
        for ds in datasets
        for cube, mask, valid in halo_blocks_of(ds)
    ]
    return tree(halo_parts, sum_contrast, int(split_every))


def range_relation(stats: BandStatistics, expected: Range) -> Literal["equal", "inside", "outside"]:
    """How the pass's own min/max relate to the range its edges came from (recorded at ingest)."""
    low, high = expected
    if stats.count == 0 or (np.array_equal(stats.minimum, low) and np.array_equal(stats.maximum, high)):
        return "equal"
    if np.all(stats.minimum >= low) and np.all(stats.maximum <= high):
        return "inside"
    return "outside"


def check_range(stats: BandStatistics, expected: Range, sampled: bool) -> None:
    """The pass's own min/max must agree with the range its edges came from (recorded at ingest):
    equal, or for a subsample inside it."""
    relation = range_relation(stats, expected)
    if relation == "equal" or (sampled and relation == "inside"):
        return
    low, high = expected
    raise StoreError(
        "recorded band ranges of the campaign",
        expected="the per-band min/max of the pixels, as ingest recorded them",
        found=f"data range [{stats.minimum.min():g}, {stats.maximum.max():g}] against recorded "
        f"[{low.min():g}, {high.max():g}]",
        fix="re-ingest the acquisitions, or pass use_recorded_ranges=False (reads the store twice)",
    )
