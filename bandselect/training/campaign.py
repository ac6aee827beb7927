"""Selection on a campaign store: initialise a pipeline from the campaign statistics, train it, report it.

The steps the flows run between the statistics and the export, as library calls (the tasks wrap them):

1. :func:`initialise_on_campaign`: build the pipeline from its configuration (``auto`` band counts from
   the store), initialise every node that asks for statistics from the campaign's stored statistics
   (Dask over the store, :mod:`bandselect.stats.incremental`), save it. A learnable pipeline is saved
   uninitialised: its statistics would cover the validation and test rows of its training.
2. :func:`train_on_campaign`: when the pipeline is learnable, the two-phase recipe on the store
   (:func:`bandselect.training.train_two_phase`, the one entry point): phase 1 from the statistics of
   the training rows only, as on arrays, then the gradient phase; save it with its history.
3. :func:`saved_selection`: the selector's :class:`~bandselect.selection.BandSelection` on the store's grid.

Each saved pipeline lives under ``<work>/pipelines/<step>-<key>``, where ``key`` is a digest of everything
the result depends on (store, acquisition ids, statistics settings, pipeline config, label roles; plus
the training settings for a trained pipeline). An existing directory *is* the finished work: a re-run with
the same content loads it instead of recomputing. Directories are written under a temporary name and
published by one rename, so a crash never leaves half a pipeline.

Label roles: the campaign statistics keep every class; ``ignore_label`` drops its class from them
(:func:`~bandselect.stats.statistics_without`: exact for every moment, and the histograms binned on the
kept pixels' range as ``fit()`` bins them, rebuilt once per version of the statistics when the ignored
pixels had set the edges) before ``positive_label`` makes one class against the rest. An
``ignore_label`` absent from the campaign leaves nothing out. Both roles reach the gradient phase's
datamodule (:class:`~bandselect.training.TrainingData`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bandselect import storage
from bandselect.errors import PipelineError
from bandselect.labels import check_ignore_label, check_label_roles, check_positive_label
from bandselect.pipeline import CONFIG_FILE, Pipeline
from bandselect.pipeline.config import resolve_pipeline_band_counts
from bandselect.pipeline.node import Annealed, BandSelector, Freezable, is_loss_node
from bandselect.selection import BandSelection
from bandselect.stats import BandStatistics, load_campaign_statistics, statistics_without
from bandselect.stats.classes import present_classes
from bandselect.stats.incremental import CampaignStatistics
from bandselect.store import Campaign, open_campaign
from bandselect.training.config import TrainingConfig
from bandselect.training.records import EpochRecord
from bandselect.training.roles import selector_node
from bandselect.training.statistical import initialize_from_statistics
from bandselect.training.two_phase import TrainingData, prefers_no_band, train_two_phase

__all__ = [
    "SavedPipeline",
    "TrainedPipeline",
    "content_key",
    "initialise_on_campaign",
    "is_learnable",
    "needs_contrast",
    "saved_selection",
    "train_on_campaign",
]

STATE_FILE = "state.json"
HISTORY_FILE = "history.json"
#: Part of a learnable pipeline's content key: its statistical start is made on the training rows.
TRAINING_ROWS_START = "start: training rows"


@dataclass(frozen=True)
class SavedPipeline:
    """A pipeline saved under a content key: where, and what it holds.

    Attributes
    ----------
    directory
        The folder with ``pipeline.yaml`` and ``weights.pt``.
    key
        The content key the folder is named by.
    selector, selector_type
        The selector node's name and class.
    learnable
        Whether the pipeline has a freezable node and a loss (gradient training applies).
    initialised
        The nodes initialised from the campaign statistics.
    """

    directory: str
    key: str
    selector: str
    selector_type: str
    learnable: bool
    initialised: tuple[str, ...]

    def to_json(self) -> str:
        """JSON text (``state.json``)."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> SavedPipeline:
        """Rebuild from :meth:`to_json` text."""
        content = json.loads(text)
        return cls(**{**content, "initialised": tuple(content["initialised"])})


@dataclass(frozen=True)
class TrainedPipeline:
    """A trained pipeline and its per-epoch history.

    Attributes
    ----------
    saved
        The trained pipeline's folder (same structure as the initialised one).
    history
        One :class:`~bandselect.training.records.EpochRecord` per epoch.
    temperature_min
        The selector's annealing floor, when it anneals (drawn in the temperature plot).
    best_epoch
        The epoch whose weights were kept, or None (the last).
    val_auroc, test_auroc
        RX AUROC of the kept selection (background: the training rows' negatives) on the validation
        rows, which picked the epoch (optimistic), and on the test rows, which neither training nor that
        choice saw (the number to report); None without those rows.
    trained_bands, refine_moves
        The kept epoch's bands before the refinement on the validation rows, and its moves
        ``(old, new)`` (:func:`~bandselect.training.two_phase.refine_selection`).
    start_bands
        The selector's bands after phase 1 (its statistical start on the training rows); None when
        the start prefers no band (the recipe's uniform start).
    """

    saved: SavedPipeline
    history: tuple[EpochRecord, ...]
    temperature_min: float | None = None
    best_epoch: int | None = None
    val_auroc: float | None = None
    test_auroc: float | None = None
    trained_bands: tuple[int, ...] | None = None
    refine_moves: tuple[tuple[int, int], ...] = ()
    start_bands: tuple[int, ...] | None = None

    def to_json(self) -> str:
        """JSON text (``history.json``)."""
        return json.dumps(
            {
                "saved": asdict(self.saved),
                "history": [record.to_dict() for record in self.history],
                "temperature_min": self.temperature_min,
                "best_epoch": self.best_epoch,
                "val_auroc": self.val_auroc,
                "test_auroc": self.test_auroc,
                "trained_bands": None if self.trained_bands is None else list(self.trained_bands),
                "refine_moves": [list(move) for move in self.refine_moves],
                "start_bands": None if self.start_bands is None else list(self.start_bands),
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> TrainedPipeline:
        """Rebuild from :meth:`to_json` text."""
        content = json.loads(text)
        saved = content["saved"]
        return cls(
            saved=SavedPipeline(**{**saved, "initialised": tuple(saved["initialised"])}),
            history=tuple(EpochRecord.from_dict(row) for row in content["history"]),
            temperature_min=content.get("temperature_min"),
            best_epoch=content.get("best_epoch"),
            val_auroc=content.get("val_auroc"),
            test_auroc=content.get("test_auroc"),
            trained_bands=None if content.get("trained_bands") is None else tuple(content["trained_bands"]),
            refine_moves=tuple((int(a), int(b)) for a, b in content.get("refine_moves", [])),
            start_bands=None if content.get("start_bands") is None else tuple(content["start_bands"]),
        )


def content_key(*parts: Any) -> str:
    """A 24-hex-digit digest of JSON-able parts (sorted keys)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def is_learnable(pipeline: Pipeline) -> bool:
    """Whether gradient training applies: a freezable node and a loss node."""
    nodes = list(pipeline.nodes.values())
    return any(isinstance(n, Freezable) for n in nodes) and any(is_loss_node(n) for n in nodes)


def needs_contrast(pipeline: Pipeline) -> bool:
    """Whether a node of ``pipeline`` asks for the spatial contrast terms."""
    requests = [node.statistics_request() for node in pipeline.nodes.values()]
    return any(request is not None and request.contrast for request in requests)


def _label_roles(positive_label: int | None, ignore_label: int | None) -> list[dict[str, int | None]]:
    """The label roles as part of a content key: nothing without roles (keys of earlier runs hold)."""
    if positive_label is None and ignore_label is None:
        return []
    return [{"positive_label": positive_label, "ignore_label": ignore_label}]


def _stored_statistics(
    store: str, ids: Sequence[str], positive_label: int | None, ignore_label: int | None
) -> tuple[Campaign, CampaignStatistics, int | None, int | None]:
    """The campaign, its stored statistics (covering ``ids``) and the label roles checked against them."""
    campaign = open_campaign(store)
    stored = load_campaign_statistics(campaign)
    if stored is None or not set(ids) <= set(stored.acquisition_ids):
        raise PipelineError(
            f"statistics of {store}",
            expected=f"statistics covering the {len(ids)} acquisitions to select on",
            found="none stored" if stored is None else f"{len(stored.acquisition_ids)} acquisitions covered",
            fix="bring them up to date first (bandselect.stats.update_campaign_statistics)",
        )
    what = f"label masks of {store}"
    positive, ignore = check_label_roles(positive_label, ignore_label, what=what)
    classes = present_classes(stored.stats).tolist()
    check_positive_label(classes, positive, what=what)
    if ignore is not None:
        check_ignore_label(classes, ignore, positive_label=positive, what=what)
    return campaign, stored, positive, ignore


def _campaign_statistics(
    store: str,
    ids: Sequence[str],
    positive_label: int | None,
    ignore_label: int | None = None,
    contrast: bool = False,
) -> BandStatistics:
    campaign, stored, positive, ignore = _stored_statistics(store, ids, positive_label, ignore_label)
    stats = stored.stats
    if ignore is not None:
        # Binned on the kept pixels' range, as fit() bins them (a histogram pass when that moves).
        stats = statistics_without(campaign, stored, ignore, contrast=contrast)
    return stats if positive is None else stats.one_vs_rest(positive)


def _publish(pipeline: Pipeline, directory: Path, files: Mapping[str, str]) -> None:
    """Save ``pipeline`` and ``files`` under a temporary name, then rename into place; a concurrent
    identical result already there wins."""
    staging = directory.with_name(f".{directory.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    pipeline.save(staging)
    for name, text in files.items():
        (staging / name).write_text(text, encoding="utf-8")
    try:
        os.rename(staging, directory)
    except OSError:
        if not (directory / CONFIG_FILE).is_file():
            raise
        shutil.rmtree(staging, ignore_errors=True)


def initialise_on_campaign(
    store: str,
    pipeline_config: Mapping[str, Any],
    work_dir: str | os.PathLike[str],
    acquisition_ids: Sequence[str],
    *,
    selector: str | None = None,
    positive_label: int | None = None,
    n_bins: int = 0,
    ignore_label: int | None = None,
) -> SavedPipeline:
    """Build the pipeline, initialise its nodes from the campaign statistics and save it (or reuse it).

    A learnable pipeline (:func:`is_learnable`) is saved as built: :func:`train_on_campaign` initialises
    it from the statistics of its training rows, which the whole acquisitions' statistics are not (they
    hold the validation and test rows its report is made on).

    Parameters
    ----------
    store
        The campaign store; its statistics must cover ``acquisition_ids``.
    pipeline_config
        The pipeline in the seed's YAML form (``auto`` band counts take the store's).
    work_dir
        Where ``pipelines/init-<key>`` is saved.
    acquisition_ids
        The acquisitions the selection is made on.
    selector
        The selector node's name (None: the first selector).
    positive_label
        Which class is positive for supervised nodes (None: labels > 0).
    n_bins
        The statistics' histogram bins (part of the content key).
    ignore_label
        The class left out of the statistics (None: none; see the module docstring).

    Raises
    ------
    LabelError
        ``positive_label`` absent or equal to ``ignore_label``; ``ignore_label`` the only class.
    """
    wavelengths = open_campaign(store).wavelengths
    if wavelengths is None:
        raise PipelineError(
            f"campaign {store}", expected="at least one acquisition", found="none", fix="ingest data first"
        )
    mapping = resolve_pipeline_band_counts(pipeline_config, int(wavelengths.size))
    pipeline = Pipeline.from_config(mapping)
    learnable = is_learnable(pipeline)
    key = content_key(
        "init",
        _store_key(store),
        sorted(acquisition_ids),
        n_bins,
        mapping,
        positive_label,
        *([] if ignore_label is None else [{"ignore_label": ignore_label}]),
        # Not the key of the campaign-initialised training pipelines of earlier versions: reused, their
        # start would have seen the validation and test rows.
        *([TRAINING_ROWS_START] if learnable else []),
    )
    directory = Path(work_dir) / "pipelines" / f"init-{key}"
    if (directory / STATE_FILE).is_file():
        return SavedPipeline.from_json((directory / STATE_FILE).read_text(encoding="utf-8"))
    name = selector_node(pipeline, selector)
    if learnable:
        # Phase 1 is train_on_campaign's, on the training rows (the label roles are checked here all
        # the same: a wrong positive_label fails before the training reads the store).
        _stored_statistics(store, acquisition_ids, positive_label, ignore_label)
        initialised: list[str] = []
    else:
        stats = _campaign_statistics(
            store, acquisition_ids, positive_label, ignore_label, needs_contrast(pipeline)
        )
        initialised = initialize_from_statistics(pipeline, stats, wavelengths)
    saved = SavedPipeline(
        directory=str(directory),
        key=key,
        selector=name,
        selector_type=type(pipeline.nodes[name]).__name__,
        learnable=learnable,
        initialised=tuple(initialised),
    )
    _publish(pipeline, directory, {STATE_FILE: saved.to_json()})
    return saved


def train_on_campaign(
    store: str,
    saved: SavedPipeline,
    work_dir: str | os.PathLike[str],
    acquisition_ids: Sequence[str],
    training: TrainingConfig,
    *,
    positive_label: int | None = None,
    ignore_label: int | None = None,
) -> TrainedPipeline:
    """Gradient phase of the two-phase recipe on the store's patches; save the result (or reuse it).

    ``positive_label`` and ``ignore_label`` are the label roles of the patches' masks (as for
    :func:`initialise_on_campaign`); a loss or metric reading the mask refuses ignored pixels.

    The pipeline :func:`initialise_on_campaign` saved is trained by
    :func:`bandselect.training.train_two_phase`: phase 1 initialises its statistical nodes from the
    training rows of the acquisitions (one block of rows in memory at a time), phase 2 trains; it is
    saved under ``pipelines/trained-<key>`` with its history and the honest report of its selection:
    the AUROC on the validation rows (which picked the epoch) and on the test rows (which nothing saw).
    """
    key = content_key(
        "train", saved.key, training.model_dump(mode="json"), *_label_roles(positive_label, ignore_label)
    )
    directory = Path(work_dir) / "pipelines" / f"trained-{key}"
    if (directory / HISTORY_FILE).is_file():
        return TrainedPipeline.from_json((directory / HISTORY_FILE).read_text(encoding="utf-8"))
    result = train_two_phase(
        Pipeline.load(saved.directory),
        TrainingData.from_store(
            store, acquisition_ids, positive_label=positive_label, ignore_label=ignore_label
        ),
        training,
        selector=saved.selector,
    )
    node = result.pipeline.nodes[saved.selector]
    before = result.selection_before
    initialised = (*saved.initialised, *result.initialised)
    trained = TrainedPipeline(
        saved=SavedPipeline(
            **{**asdict(saved), "directory": str(directory), "key": key, "initialised": initialised}
        ),
        history=tuple(result.history),
        temperature_min=float(node.temperature_min) if isinstance(node, Annealed) else None,
        best_epoch=result.best_epoch,
        val_auroc=result.val_auroc_after,
        test_auroc=result.test_auroc_after,
        trained_bands=None
        if result.trained_selection is None
        else tuple(int(b) for b in result.trained_selection.indices),
        refine_moves=tuple(result.refine_moves),
        start_bands=None if prefers_no_band(before) else tuple(int(b) for b in before.indices),
    )
    _publish(
        result.pipeline, directory, {STATE_FILE: trained.saved.to_json(), HISTORY_FILE: trained.to_json()}
    )
    return trained


def saved_selection(store: str, saved: SavedPipeline) -> BandSelection:
    """The selection of a saved pipeline's selector on the campaign's wavelength grid."""
    pipeline = Pipeline.load(saved.directory)
    pipeline.eval()
    node = pipeline.nodes[saved.selector]
    if not isinstance(node, BandSelector):
        raise PipelineError(
            f"selector node {saved.selector!r} ({saved.selector_type})",
            expected="a band selector",
            found=saved.selector_type,
            fix="name the selector node in `selector:`",
        )
    return node.selection(open_campaign(store).wavelengths)


def _store_key(store: str | os.PathLike[str]) -> str:
    """The store's part of a content key: the resolved folder, or the URL as given (a URL resolved as a
    path would depend on the working directory)."""
    where = storage.location(store)
    return str(where.resolve()) if isinstance(where, Path) else where
