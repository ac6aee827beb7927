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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bandselect import storage
from bandselect.errors import FileFormatError, InputError, ResourceError
from bandselect.stats.binning import DEFAULT_N_BINS, NanPolicy, data_edges
from bandselect.stats.classes import without_classes
from bandselect.stats.compute import (
    CampaignReader,
    compute_statistics,
    compute_update,
    compute_without,
)
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
        stats = compute_statistics(
            campaign, n_bins=int(n_bins), acquisitions=wanted, contrast=contrast, **run
        )
        result = CampaignStatistics(
            stats=stats,
            acquisition_ids=tuple(wanted),
            n_bins=int(n_bins),
            nan_policy=nan_policy,
            computed_ids=tuple(wanted),
        )
        return _save(campaign, result)
    new = [i for i in wanted if i not in set(stored.acquisition_ids)]
    if not new:
        return stored
    merged, rebuilt = compute_update(
        campaign,
        stored.stats,
        stored.acquisition_ids,
        new,
        n_bins=int(n_bins),
        contrast=stored.stats.has_contrast,
        **run,
    )
    result = CampaignStatistics(
        stats=merged,
        acquisition_ids=tuple(sorted({*stored.acquisition_ids, *new})),
        n_bins=int(n_bins),
        nan_policy=nan_policy,
        computed_ids=tuple(new),
        histograms_rebuilt=rebuilt,
    )
    return _save(campaign, result)


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
        folder = storage.join(statistics_dir(campaign), _derived_dir(stored.statistics_file))
        with_contrast = storage.join(folder, f"without-{label}.contrast.npz")
        cached = with_contrast if contrast else storage.join(folder, f"without-{label}.npz")
        for candidate in (cached,) if contrast else (cached, with_contrast):
            if storage.exists(candidate):
                found = BandStatistics.load(candidate)
                return found if contrast else _without_contrast(found)
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
    except OSError as error:
        _LOG.warning("could not keep %s (%s): it will be computed again next time", path, error)
        return
    directory = statistics_dir(campaign)
    if _current_file(directory) != stored.statistics_file:
        # A new version replaced ours meanwhile (and removed the derived folders): ours must not stay.
        storage.remove_tree(storage.join(directory, _derived_dir(str(stored.statistics_file))))
