"""Campaign statistics stored next to the campaign and updated when acquisitions are added.

Layout: ``<store>/.bandselect_stats/manifest.json`` (format version, acquisition ids covered, n_bins,
nan_policy, the contrast rule, the statistics file's name), ``statistics-<token>.npz``
(:meth:`BandStatistics.save`) and, beside it, what was derived from that version
(``statistics-<token>.derived/without-<label>[.contrast].npz``, :func:`statistics_without`).
The campaign store skips dot-directories, so the sidecar is never mistaken for an acquisition.
Writes are atomic: a new statistics file under a fresh name, then the manifest replaced (``os.replace``
locally, one PUT on an object store, which readers see whole or not at); a failure leaves the previous
good state. The sidecar lives next to the campaign, in its folder or under its URL.

Histogram edges follow the statistics engine's one binning rule, :func:`~bandselect.stats.binning.data_edges`
of the campaign's per-band min/max (the range snapped outward to "nice" steps), so the stored statistics
have exactly the bins that ``fit()`` or ``compute_statistics`` give the same pixels — and the same
scores. The new acquisitions' ranges were recorded at ingest, so the edges of the merged range are known
before any pixel is read (:func:`~bandselect.stats.compute.compute_update`): acquisitions whose values
stay inside the snapped range keep the bins and are read once; when the merged range needs other edges,
the same single pass also re-bins the stored acquisitions (histograms only; moments are merged, not
recomputed). We chose this over clip-with-count because clipped values would pile up in the end bins and
bias AUC and MI exactly for the bands whose range moved; the cost is paid only when the range grows.

An acquisition removed from the campaign, or replaced by a new version of its source file (see
:mod:`bandselect.store.archive`), makes the stored statistics cover ids that are no longer published: they
are then recomputed from the published acquisitions. The sidecar keeps merged statistics only, no
per-acquisition partials, and a removed acquisition's share cannot be subtracted from them in general (its
minimum and maximum may be the campaign's, and the histogram edges derive from those), so recomputing is
the one exact answer.

A full disk while writing the sidecar is a :class:`~bandselect.errors.ResourceError`; the previous
statistics stay in force (the manifest is replaced last).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bandselect import storage
from bandselect.errors import FileFormatError, InputError, ResourceError, StoreError
from bandselect.stats.binning import DEFAULT_N_BINS, NanPolicy, data_edges
from bandselect.stats.classes import present_classes, without_classes
from bandselect.stats.compute import (
    SPLIT_EVERY,
    CampaignReader,
    compute_update,
    compute_without,
    statistics_job,
)
from bandselect.stats.graph import (
    Range,
    contrast_graph,
    histogram_graph,
    merge_ranges,
    recorded_kept_ranges,
    recorded_ranges,
    sum_contrast,
)
from bandselect.stats.memory import merge_histograms
from bandselect.stats.partial import BandStatistics
from bandselect.storage import StoreLocation

_LOG = logging.getLogger(__name__)
SIDECAR_DIR = ".bandselect_stats"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
#: How the stored spatial contrast terms were summed: 2 = over the pixels that count (a left-out pixel
#: adds nothing, :func:`~bandselect.stats.spatial.laplacian_abs_sums`); manifests without the key hold
#: rule 1 (every pixel, invalid ones included) and their contrast is recomputed when it is used.
CONTRAST_RULE = 2


@dataclass(frozen=True, eq=False)
class CampaignStatistics:
    """Statistics of a campaign and the acquisitions they cover.

    Attributes
    ----------
    stats
        Merged statistics (with histograms).
    acquisition_ids
        Sorted ids covered.
    n_bins
        Histogram bins per band.
    nan_policy
        NaN policy they were computed with.
    computed_ids
        Ids whose pixels were read by the call that returned this object (empty when up to date).
    histograms_rebuilt
        Whether that call rebuilt the histograms on widened edges.
    statistics_file
        The sidecar file holding ``stats`` (its random token names this version of them).
    contrast_rule
        How the stored contrast terms were summed (:data:`CONTRAST_RULE`).
    """

    stats: BandStatistics
    acquisition_ids: tuple[str, ...]
    n_bins: int
    nan_policy: str
    computed_ids: tuple[str, ...] = ()
    histograms_rebuilt: bool = False
    #: The sidecar file holding ``stats`` (its random token names this version of them); None before
    #: they are written.
    statistics_file: str | None = None
    #: :data:`CONTRAST_RULE` of the stored contrast terms.
    contrast_rule: int = CONTRAST_RULE


@dataclass(frozen=True)
class StatisticsSummary:
    """A small description of a campaign's statistics (the statistics themselves stay in the store).

    What a flow step passes on and logs: the ids covered and read, the bins, the classes and pixels.
    """

    store: str
    acquisition_ids: tuple[str, ...]
    computed_ids: tuple[str, ...]
    n_bins: int
    classes: tuple[int, ...]
    class_counts: tuple[int, ...]
    count: int
    histograms_rebuilt: bool
    contrast: bool
    scheduler: str
    #: Pixels flagged invalid (the acquisitions' ``valid`` False: no data), left out of every statistic.
    n_invalid: int = 0

    @classmethod
    def of(cls, result: CampaignStatistics, store: str, scheduler: str) -> StatisticsSummary:
        """The summary of ``result`` (statistics of ``store`` computed on ``scheduler``)."""
        stats = result.stats
        return cls(
            store=str(store),
            acquisition_ids=tuple(result.acquisition_ids),
            computed_ids=tuple(result.computed_ids),
            n_bins=result.n_bins,
            classes=tuple(int(c) for c in stats.classes),
            class_counts=tuple(int(stats.class_count(int(c))) for c in stats.classes),
            count=int(stats.count),
            histograms_rebuilt=result.histograms_rebuilt,
            contrast=stats.has_contrast,
            scheduler=scheduler,
            n_invalid=int(stats.n_invalid),
        )


@runtime_checkable
class CampaignStore(CampaignReader, Protocol):
    """A campaign in a folder or on an object store: ids, acquisitions, and where its sidecar lives."""

    @property
    def path(self) -> StoreLocation:
        """The store's root: a local path or an object-store URL."""
        ...


def statistics_dir(campaign: CampaignStore | str | os.PathLike[str]) -> StoreLocation:
    """Sidecar directory of a campaign or a store location (``<store>/.bandselect_stats``)."""
    path = campaign.path if isinstance(campaign, CampaignStore) else campaign
    return storage.join(path, SIDECAR_DIR)


def load_campaign_statistics(campaign: Any) -> CampaignStatistics | None:
    """Stored statistics of ``campaign`` (an object with ``path``, or the store path); None if absent.

    Raises
    ------
    FileFormatError
        A manifest that cannot be read, of another version, or pointing to a missing file.
    """
    directory = statistics_dir(campaign)
    manifest_path = storage.join(directory, MANIFEST)
    try:
        text = storage.read_bytes(manifest_path).decode("utf-8")
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(text)
        version = int(manifest["version"])
        name = str(manifest["statistics_file"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FileFormatError(
            f"statistics manifest {manifest_path}",
            expected="a JSON manifest",
            found=f"{type(exc).__name__}: {exc}",
            fix=f"delete {directory} to recompute the statistics",
        ) from exc
    if version != MANIFEST_VERSION or os.path.basename(name) != name or name in ("", ".", ".."):
        raise FileFormatError(
            f"statistics manifest {manifest_path}",
            expected=f"version {MANIFEST_VERSION}",
            found=f"version {version}, file {name!r}",
            fix=f"delete {directory} to recompute the statistics",
        )
    stats = BandStatistics.load(storage.join(directory, name))
    return CampaignStatistics(
        stats=stats,
        acquisition_ids=tuple(manifest["acquisition_ids"]),
        n_bins=int(manifest["n_bins"]),
        nan_policy=str(manifest["nan_policy"]),
        statistics_file=name,
        contrast_rule=int(manifest.get("contrast_rule", 1)),
    )


def _current_file(directory: StoreLocation) -> str | None:
    """The statistics file the manifest names now (None: no readable manifest)."""
    try:
        return str(json.loads(storage.read_bytes(storage.join(directory, MANIFEST)))["statistics_file"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(stats: BandStatistics, path: StoreLocation, directory: StoreLocation) -> None:
    try:
        stats.save(path)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        storage.remove_tree(path)
        raise ResourceError(
            f"campaign statistics in {directory}",
            expected=f"free space in {directory}",
            found=f"{error.strerror or error} [{errno.errorcode.get(error.errno or 0, '?')}]",
            fix="free disk space (or raise the quota); the previous statistics are kept",
        ) from error


def _save(campaign: Any, result: CampaignStatistics) -> CampaignStatistics:
    directory = statistics_dir(campaign)
    manifest_path = storage.join(directory, MANIFEST)
    previous = _current_file(directory)
    name = f"statistics-{secrets.token_hex(8)}.npz"
    _write(result.stats, storage.join(directory, name), directory)
    manifest = {
        "version": MANIFEST_VERSION,
        "statistics_file": name,
        "acquisition_ids": list(result.acquisition_ids),
        "n_bins": result.n_bins,
        "nan_policy": result.nan_policy,
        "count": result.stats.count,
        "contrast_rule": CONTRAST_RULE,
    }
    # The manifest is the commit point: the new file exists before it names it.
    storage.write_bytes(manifest_path, json.dumps(manifest, indent=1).encode("utf-8"))
    if previous and previous != name and os.path.basename(previous) == previous:
        storage.remove_tree(storage.join(directory, previous))
    # Derived results of every other version go (also one a slow reader wrote after its version left).
    for folder in storage.child_names(directory):
        if folder.endswith(_DERIVED) and folder != _derived_dir(name):
            storage.remove_tree(storage.join(directory, folder))
    return replace(result, statistics_file=name, contrast_rule=CONTRAST_RULE)


def update_campaign_statistics(
    campaign: Any,
    *,
    n_bins: int = DEFAULT_N_BINS,
    nan_policy: NanPolicy = "raise",
    acquisitions: Sequence[str] | None = None,
    scheduler_address: str | None = None,
    scheduler: Any = None,
    contrast: bool = False,
    device: str | None = None,
    ignore_label: int | None = None,
) -> CampaignStatistics:
    """Bring the campaign's stored statistics up to date, reading only acquisitions not yet covered.

    Parameters
    ----------
    campaign
        A campaign (``path``, ``ids()``, ``open(id)``), e.g. ``bandselect.store.open_campaign(path)``.
    n_bins
        Histogram bins per band. Stored statistics with another bin count (or NaN policy) are recomputed.
    nan_policy
        ``"raise"`` or ``"omit"``.
    acquisitions
        Ids that must be covered (default: all published). Stored ids outside this set are kept.
    scheduler_address, scheduler
        As :func:`~bandselect.stats.compute_statistics`.
    contrast
        Also keep the spatial contrast terms (HighContrast selectors need them); stored statistics without
        them are recomputed when they are asked for.
    device
        Where each chunk's partial is computed: None (NumPy) or a torch device (``"cuda"``).
    ignore_label
        A label whose pixels the selection will leave out: the same read also makes
        :func:`statistics_without`'s result for it (the kept pixels binned on their own range, and
        their contrast terms with ``contrast``) and keeps it in the sidecar of the new version, so
        neither that call nor the selection reads the store again. The kept range comes from the
        per-class ranges recorded at ingest; acquisitions without them (older stores) leave it to
        :func:`statistics_without`'s own pass.

    Returns
    -------
    CampaignStatistics
        Also written to ``<store>/.bandselect_stats``.
    """
    if not isinstance(campaign, CampaignStore):
        raise InputError(
            "campaign",
            expected="a campaign with path, ids() and open(id)",
            found=type(campaign).__name__,
            fix="pass bandselect.store.open_campaign(path)",
        )
    wanted = sorted(campaign.ids() if acquisitions is None else set(acquisitions))
    stored = load_campaign_statistics(campaign)
    published = set(campaign.ids())
    if stored is not None and (
        stored.n_bins != int(n_bins)
        or stored.nan_policy != nan_policy
        or not set(stored.acquisition_ids) <= published
        or (contrast and not stored.stats.has_contrast)
        or (stored.stats.has_contrast and stored.contrast_rule != CONTRAST_RULE)
    ):
        stored = None  # different settings, or acquisitions removed: start again
    run = {
        "nan_policy": nan_policy,
        "scheduler_address": scheduler_address,
        "scheduler": scheduler,
        "device": device,
    }
    if stored is None:
        kept = _KeptJob(campaign, None, ignore_label, n_bins, contrast, run)
        stats, extra = statistics_job(
            campaign,
            n_bins=int(n_bins),
            acquisitions=wanted,
            contrast=contrast,
            extra=None if ignore_label is None else kept.graphs,
            **run,
        )
        result = CampaignStatistics(
            stats=stats,
            acquisition_ids=tuple(wanted),
            n_bins=int(n_bins),
            nan_policy=nan_policy,
            computed_ids=tuple(wanted),
        )
        return _save_with_kept(campaign, result, kept.plan, extra)
    new = [i for i in wanted if i not in set(stored.acquisition_ids)]
    if not new:
        return stored
    kept = _KeptJob(campaign, stored, ignore_label, n_bins, contrast, run)
    update = compute_update(
        campaign,
        stored.stats,
        stored.acquisition_ids,
        new,
        n_bins=int(n_bins),
        contrast=stored.stats.has_contrast,
        extra=None if ignore_label is None else kept.graphs,
        **run,
    )
    result = CampaignStatistics(
        stats=update.stats,
        acquisition_ids=tuple(sorted({*stored.acquisition_ids, *new})),
        n_bins=int(n_bins),
        nan_policy=nan_policy,
        computed_ids=tuple(new),
        histograms_rebuilt=update.rebuilt,
    )
    return _save_with_kept(campaign, result, kept.plan, update.extra)


@dataclass(frozen=True, eq=False)
class _KeptPlan:
    """What a statistics job also computes for the pixels not labelled ``label``: the histograms on
    their own edges (when those differ from the job's) and their contrast sums, for the read
    acquisitions and, in an update, for the stored ones unless the previous version's result for the
    label (``previous``) already holds them."""

    label: int
    kept_range: Range
    edges: np.ndarray | None  # None: the kept pixels' edges are the job's own (nothing to re-bin)
    contrast: bool
    nan_policy: str
    device: str | None
    stored: bool  # an update: stored acquisitions beside the read ones
    previous: BandStatistics | None

    @property
    def stored_histograms(self) -> bool:
        return self.stored and self.edges is not None and self.previous is None

    @property
    def stored_contrast(self) -> bool:
        return self.stored and self.contrast and (self.previous is None or not self.previous.has_contrast)

    def graphs(self, read: list[Any], stored: Callable[[], list[Any]]) -> list[Any]:
        """The job's extra graphs (:data:`~bandselect.stats.compute.ExtraGraphs`)."""
        options = {"nan_policy": self.nan_policy, "fraction": None, "seed": 0, "device": self.device}
        out = []
        if self.edges is not None:
            out.append(histogram_graph(read, 0, self.edges, options, SPLIT_EVERY, self.label))
            if self.stored_histograms:
                out.append(histogram_graph(stored(), len(read), self.edges, options, SPLIT_EVERY, self.label))
        if self.contrast:
            out.append(contrast_graph(read, SPLIT_EVERY, self.nan_policy, self.label))
            if self.stored_contrast:
                out.append(contrast_graph(stored(), SPLIT_EVERY, self.nan_policy, self.label))
        return out

    def result(self, full: BandStatistics, extra: list[Any]) -> BandStatistics | None:
        """:func:`statistics_without`'s answer from the job's statistics and extra results; None (and a
        warning) when the kept pixels' range is not the one recorded at ingest (their edges would not
        be fit()'s: :func:`statistics_without` then bins them on their own range)."""
        results = list(extra)
        kept = _without_contrast(without_classes(full, [self.label]))
        if not (
            np.array_equal(kept.minimum, self.kept_range[0])
            and np.array_equal(kept.maximum, self.kept_range[1])
        ):
            _LOG.warning(
                "the per-class ranges recorded at ingest do not describe the pixels without label %d: "
                "they are binned in a pass of their own",
                self.label,
            )
            return None
        if self.edges is None and not np.array_equal(
            data_edges(*self.kept_range, full.n_bins), full.hist_edges
        ):
            _LOG.warning(
                "the job's edges are not those of the pixels without label %d (ranges recorded at ingest "
                "do not describe the pixels): they are binned in a pass of their own",
                self.label,
            )
            return None  # the kept classes' stored histograms are not on their own edges
        if self.edges is not None:
            parts = [results.pop(0)]
            if self.stored_histograms:
                parts.append(results.pop(0))
            elif self.stored:
                previous = self.previous
                assert previous is not None and previous.histograms is not None
                parts.append((previous.classes, previous.histograms, previous.n_clipped))
            kept = kept.with_histograms(self.edges, *merge_histograms(*parts))
        if self.contrast:
            sums = [results.pop(0)]
            if self.stored_contrast:
                sums.append(results.pop(0))
            elif self.stored:
                assert self.previous is not None and self.previous.laplacian_abs_sum is not None
                sums.append((self.previous.laplacian_abs_sum, self.previous.laplacian_count))
            kept = kept.with_contrast(*sum_contrast(*sums))
        return kept


class _KeptJob:
    """The :class:`_KeptPlan` of a job, made when the job hands over the datasets it reads (their
    recorded ranges give the plan: no second opening of the acquisitions)."""

    def __init__(
        self,
        campaign: Any,
        stored: CampaignStatistics | None,
        ignore_label: int | None,
        n_bins: int,
        contrast: bool,
        run: dict[str, Any],
    ) -> None:
        self.campaign, self.stored, self.ignore_label = campaign, stored, ignore_label
        self.n_bins, self.contrast, self.run = n_bins, contrast, run
        self.plan: _KeptPlan | None = None

    def graphs(self, read: list[Any], stored: Callable[[], list[Any]]) -> list[Any]:
        """The job's extra graphs (:data:`~bandselect.stats.compute.ExtraGraphs`): none without a plan."""
        self.plan = _kept_plan(
            self.campaign, read, self.stored, self.ignore_label, self.n_bins, self.contrast, self.run
        )
        return [] if self.plan is None else self.plan.graphs(read, stored)


def _kept_plan(
    campaign: Any,
    read: list[Any],
    stored: CampaignStatistics | None,
    ignore_label: int | None,
    n_bins: int,
    contrast: bool,
    run: dict[str, Any],
) -> _KeptPlan | None:
    """How a job makes :func:`statistics_without`'s result for ``ignore_label`` in its own read, or
    None: no label, nothing left out or to redo, or acquisitions that recorded no per-class ranges."""
    if ignore_label is None:
        return None
    label = int(ignore_label)
    try:
        kept_read, seen, missing = recorded_kept_ranges(read, label)
    except StoreError as error:  # the job itself does not need them: it goes on, the kept pixels wait
        _LOG.warning("%s: the pixels without label %d are binned in a pass of their own", error, label)
        return None
    full_read, full_missing = recorded_ranges(read)
    missing = sorted({*missing, *full_missing})  # without band ranges the job's edges are not known yet
    if missing:
        _LOG.info(
            "%d acquisition(s) recorded no per-class (or band) ranges at ingest: the pixels without "
            "label %d are binned in a pass of their own",
            len(missing),
            label,
        )
        return None
    full_parts = [part for part in (full_read,) if part is not None]
    kept_parts = [part for part in (kept_read,) if part is not None]
    if stored is not None:
        kept_stored = without_classes(stored.stats, [label])
        seen = seen or bool(np.isin(label, present_classes(stored.stats)))
        full_parts.append((stored.stats.minimum, stored.stats.maximum))
        kept_parts.append((kept_stored.minimum, kept_stored.maximum))
    if not seen or not kept_parts:
        return None  # nothing to leave out (statistics_without returns the statistics as they are)
    kept_range = merge_ranges(*kept_parts)
    if not np.all(np.isfinite(kept_range[0])):
        return None  # no kept pixel: nothing to bin
    edges = data_edges(*kept_range, int(n_bins))
    if np.array_equal(edges, data_edges(*merge_ranges(*full_parts), int(n_bins))):
        edges = None
    if edges is None and not contrast:
        return None  # the stored histograms of the kept classes are already fit()'s
    previous = None
    if stored is not None and stored.statistics_file is not None:
        previous = _derived(campaign, stored.statistics_file, label, contrast)
        if previous is not None and edges is not None and not np.array_equal(previous.hist_edges, edges):
            previous = None  # binned on other edges: the stored acquisitions are re-binned
    return _KeptPlan(
        label=label,
        kept_range=kept_range,
        edges=edges,
        contrast=contrast,
        nan_policy=str(run["nan_policy"]),
        device=run["device"],
        stored=stored is not None,
        previous=previous,
    )


def _save_with_kept(
    campaign: Any, result: CampaignStatistics, plan: _KeptPlan | None, extra: list[Any]
) -> CampaignStatistics:
    """:func:`_save` of ``result``, then the plan's result for its label (made first: an error there
    comes before the new version is committed) kept in the sidecar of the new version."""
    kept = None if plan is None else plan.result(result.stats, extra)
    saved = _save(campaign, result)
    if plan is not None and kept is not None:
        path = _derived_path(campaign, str(saved.statistics_file), plan.label, plan.contrast)
        _keep_derived(campaign, saved, kept, path)
    return saved


_DERIVED = ".derived"


def _derived_dir(statistics_file: str) -> str:
    # Results derived from one version of the statistics live in a folder named after its file, and
    # go with it when a new version replaces it.
    return statistics_file.removesuffix(".npz") + _DERIVED


def statistics_without(
    campaign: Any,
    stored: CampaignStatistics,
    ignore_label: int,
    *,
    contrast: bool = False,
    scheduler_address: str | None = None,
    scheduler: Any = None,
    device: str | None = None,
) -> BandStatistics:
    """The stored statistics without the pixels labelled ``ignore_label``, binned as ``fit()`` bins them.

    Moments, min/max and histogram counts of the other classes are exact from the stored statistics
    (:func:`~bandselect.stats.classes.without_classes`). The histogram *edges*, though, follow the
    binning rule on the range of the pixels that count: ``data_edges`` of the kept pixels' min/max, the
    edges :func:`~bandselect.stats.classes.labelled_statistics` gives the same data in memory. The
    ignored pixels (often an unlabelled background far outside the labelled values) would otherwise set
    the bin width, and AUC and MI of the kept classes would be computed on a few coarse bins. The
    spatial contrast terms mix each pixel with its neighbours: with ``contrast`` they are summed again
    without the ignored pixels (:func:`~bandselect.stats.spatial.laplacian_abs_sums`' rule); without
    it the result carries none (the stored ones count the ignored pixels). When the edges move or
    there is contrast to redo, one pass over the covered acquisitions
    (:func:`~bandselect.stats.compute.compute_without`) gives them; the result is kept in the sidecar
    beside that version of the statistics (``statistics-<token>.derived/without-<label>[.contrast].npz``,
    written atomically, removed with it), so later runs read it instead. A store that cannot be
    written (read-only) gets a logged warning and the pass again next time, not an error.

    Parameters
    ----------
    campaign
        The campaign the statistics describe.
    stored
        Its stored statistics (:func:`load_campaign_statistics` or :func:`update_campaign_statistics`).
    ignore_label
        The class whose pixels do not count. Absent from the statistics: nothing is left out.
    contrast
        Also the spatial contrast terms without the class (the stored statistics must have them).
    scheduler_address, scheduler, device
        Where a pass runs, as :func:`~bandselect.stats.compute_statistics`.

    Returns
    -------
    BandStatistics
        Without the class; its pixels are added to ``n_invalid``.

    Raises
    ------
    InputError
        ``contrast`` asked of statistics stored without it.
    """
    full = stored.stats
    if contrast and not full.has_contrast:
        raise InputError(
            "contrast",
            expected="stored statistics with the spatial contrast terms",
            found="statistics stored without them",
            fix="update them with contrast=True first (update_campaign_statistics)",
        )
    label = int(ignore_label)
    kept = without_classes(full, [label])
    if kept.count == full.count:
        return kept  # the class is absent: nothing left out, the stored contrast holds
    if not contrast:
        kept = _without_contrast(kept)
    if kept.count == 0:
        return kept  # nothing left to bin
    edges = None if full.hist_edges is None else data_edges(kept.minimum, kept.maximum, full.n_bins)
    if edges is not None and np.array_equal(edges, full.hist_edges):
        edges = None
    if edges is None and not contrast:
        return kept
    cached = None
    if stored.statistics_file is not None:
        found = _derived(campaign, stored.statistics_file, label, contrast)
        if found is not None:
            return found if contrast else _without_contrast(found)
        cached = _derived_path(campaign, stored.statistics_file, label, contrast)
    histograms, sums = compute_without(
        campaign,
        label,
        hist_edges=edges,
        contrast=contrast,
        acquisitions=stored.acquisition_ids,
        nan_policy=stored.nan_policy,  # type: ignore[arg-type]
        scheduler_address=scheduler_address,
        scheduler=scheduler,
        device=device,
    )
    result = full if histograms is None else full.with_histograms(edges, *histograms)
    result = _without_contrast(without_classes(result, [label]))
    if sums is not None:
        result = result.with_contrast(*sums)
    if cached is not None:
        _keep_derived(campaign, stored, result, cached)
    return result


def _derived_path(campaign: Any, statistics_file: str, label: int, contrast: bool) -> StoreLocation:
    """Where :func:`statistics_without`'s result for ``label`` from that version is kept."""
    folder = storage.join(statistics_dir(campaign), _derived_dir(statistics_file))
    return storage.join(folder, f"without-{label}{'.contrast' if contrast else ''}.npz")


def _derived(campaign: Any, statistics_file: str, label: int, contrast: bool) -> BandStatistics | None:
    """The kept result for ``label`` of that version (with contrast terms when ``contrast``; else
    either file), or None."""
    for with_contrast in (True,) if contrast else (False, True):
        path = _derived_path(campaign, statistics_file, label, with_contrast)
        if storage.exists(path):
            return BandStatistics.load(path)
    return None


def _without_contrast(stats: BandStatistics) -> BandStatistics:
    # Contrast terms summed over the ignored pixels too would be wrong for the kept ones: none at all.
    return replace(stats, laplacian_abs_sum=None, laplacian_count=0)


def _keep_derived(
    campaign: Any, stored: CampaignStatistics, result: BandStatistics, path: StoreLocation
) -> None:
    # Best effort: the result is right either way; a store that cannot take it recomputes next time.
    # (The write is atomic, a temporary and a rename or one PUT: nothing partial stays behind.)
    try:
        result.save(path)
    except (OSError, StoreError) as error:  # a local file, an object store
        _LOG.warning("could not keep %s (%s): it will be computed again next time", path, error)
        return
    directory = statistics_dir(campaign)
    if _current_file(directory) != stored.statistics_file:
        # A new version replaced ours meanwhile (and removed the derived folders): ours must not stay.
        storage.remove_tree(storage.join(directory, _derived_dir(str(stored.statistics_file))))
