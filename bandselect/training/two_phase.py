"""The two-phase recipe, one entry point: statistical initialisation → ``unfreeze()`` → gradient training.

:func:`train_two_phase` is what the flows, the CLI and notebooks call. Phase 1 runs
:class:`~bandselect.training.StatisticalTrainer` over the training rows for the nodes that are not yet
initialised (the flows leave a training pipeline's nodes to it: its start sees neither the validation nor
the test rows). Phase 2 unfreezes every :class:`~bandselect.pipeline.node.Freezable` node, runs
:class:`~bandselect.training.GradientTrainer` on random training patches and freezes them back, so the
trained pipeline has the structure of an initialised one (same ``state_dict`` keys, buffers). With the
shipped recipe the selection feeds an RX detector (``background="batch"``, so RX always sees the
statistics of the currently weighted data), a score-to-logit head and a BCE loss against the anomaly mask,
plus the entropy and diversity regularizers.

Before and after, the selector's :class:`~bandselect.selection.BandSelection` is judged the same way:
global RX on only those bands, background statistics from the training rows' negative pixels, AUROC on
the validation rows and on the test rows (a spatial split in three parts, see
:class:`~bandselect.training.config.TrainingConfig`). The validation rows picked the kept epoch, so
their AUROC is the best of many candidates; the test rows, which neither training nor the epoch choice
saw, give the number to report (:attr:`TwoPhaseResult.test_auroc_after`). The same measure on the
validation rows is recorded every epoch as :data:`SELECTION_AUROC`, the recipe's monitor.

Label roles belong to the data (:class:`TrainingData`): ``positive_label`` makes one class the target of
both phases; ``ignore_label`` leaves its pixels out of phase 1's statistics, of the before/after AUROC
and of the search after training. In phase 2 the batches carry ``data.valid``: the nodes it feeds (the
recipe's RX background, score head, loss and metric) leave the ignored pixels out, whose values are then
set to 0. A pipeline that would count them (a node reading the mask or batch statistics without
``data.valid``, :func:`~bandselect.training.gradient.validity_gaps`) is refused before phase 1, naming
the connection to make.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bandselect import storage
from bandselect.errors import ConfigError, LabelError, TrainingError
from bandselect.names import PORT_CUBE, PORT_MASK, PORT_VALID
from bandselect.pipeline import Pipeline
from bandselect.pipeline.config import AUTO, load_yaml, resolve_pipeline_band_counts
from bandselect.pipeline.node import BandSelector, Freezable, needs_statistics
from bandselect.selection import BandSelection
from bandselect.storage import StoreLocation
from bandselect.training.config import DEFAULT_RECIPE, TrainingConfig, load_recipe, training_config
from bandselect.training.gradient import GradientTrainer, require_validity, trained_nodes, validity_gaps
from bandselect.training.patches import PatchDataModule
from bandselect.training.records import EpochRecord
from bandselect.training.roles import selector_node
from bandselect.training.statistical import StatisticalTrainer

__all__ = [
    "AUTO",
    "DEFAULT_RECIPE",
    "SELECTION_AUROC",
    "SelectionAUROC",
    "TrainingData",
    "TwoPhaseResult",
    "load_recipe",
    "resolve_pipeline",
    "selection_auroc",
    "train_two_phase",
]


#: The per-epoch metric of :func:`train_two_phase` that is the reported measure on the validation rows:
#: RX on the selector's hard selection, background from the training rows' negatives, AUROC on the
#: validation rows (:func:`selection_auroc`). The recipe's monitor: the in-pipeline ``auroc.auroc:hard``
#: takes RX's background from the validation rows themselves, so it scores the selection in-sample and
#: saturates (0.9998-0.9999 for every candidate of samson water, whose held-out AUROC spans 0.26-0.87).
SELECTION_AUROC = "selection.rx_auroc"


@dataclass(frozen=True, eq=False)
class TrainingData:
    """Where the training data comes from: a campaign store (and acquisition ids) or in-memory arrays.

    Build one with :meth:`from_store` or :meth:`from_arrays`; :meth:`datamodule` cuts it into patches
    as a :class:`~bandselect.training.config.TrainingConfig` says. ``positive_label`` and
    ``ignore_label`` are the label roles of its masks (:mod:`bandselect.labels`), passed to the
    datamodule.

    Examples
    --------
    >>> import numpy as np
    >>> data = TrainingData.from_arrays(np.zeros((8, 8, 4), np.float32), wavelengths_nm=[1, 2, 3, 4])
    >>> data.store is None, data.cube.shape
    (True, (8, 8, 4))
    """

    store: StoreLocation | None = None
    acquisition_ids: tuple[str, ...] | None = None
    cube: np.ndarray | None = None
    mask: np.ndarray | None = None
    wavelengths_nm: np.ndarray | None = None
    positive_label: int | None = None
    ignore_label: int | None = None

    @classmethod
    def from_store(
        cls,
        path: str | os.PathLike[str],
        acquisition_ids: Sequence[str] | None = None,
        *,
        positive_label: int | None = None,
        ignore_label: int | None = None,
    ) -> TrainingData:
        """The acquisitions ``acquisition_ids`` (default: all) of the campaign store ``path``."""
        ids = None if acquisition_ids is None else tuple(str(i) for i in acquisition_ids)
        if ids is not None and not ids:
            raise ConfigError(
                f"training data from {path}",
                expected="at least one acquisition id, or None for all",
                found="an empty list",
                fix="pass acquisition_ids=None to train on every acquisition",
            )
        return cls(
            store=storage.location(path),
            acquisition_ids=ids,
            positive_label=positive_label,
            ignore_label=ignore_label,
        )

    @classmethod
    def from_arrays(
        cls,
        cube: Any,
        mask: Any = None,
        *,
        wavelengths_nm: Any,
        positive_label: int | None = None,
        ignore_label: int | None = None,
    ) -> TrainingData:
        """An ``(H, W, C)`` or ``(B, H, W, C)`` cube, its ``(H, W)`` / ``(B, H, W)`` mask and ``(C,)`` nm."""
        return cls(
            cube=np.asarray(cube, dtype=np.float32),
            mask=None if mask is None else np.asarray(mask),
            wavelengths_nm=np.asarray(wavelengths_nm, dtype=np.float64),
            positive_label=positive_label,
            ignore_label=ignore_label,
        )

    def datamodule(self, config: TrainingConfig) -> PatchDataModule:
        """Random training patches and whole validation regions, as ``config`` says."""
        options = {
            **config.patch_options(),
            "positive_label": self.positive_label,
            "ignore_label": self.ignore_label,
        }
        if self.store is not None:
            ids = None if self.acquisition_ids is None else list(self.acquisition_ids)
            return PatchDataModule.from_store(self.store, ids, **options)
        return PatchDataModule.from_arrays(self.cube, self.mask, wavelengths=self.wavelengths_nm, **options)


@dataclass(frozen=True, eq=False)
class TwoPhaseResult:
    """What :func:`train_two_phase` returns.

    Attributes
    ----------
    pipeline
        The trained pipeline: on the CPU, in evaluation mode, every freezable node frozen again.
    selector
        The name of the selector node whose selections are reported.
    config
        The training configuration used.
    history
        The gradient phase's :class:`~bandselect.training.records.EpochRecord` per epoch.
    selection_before, selection_after
        The selector's :class:`~bandselect.selection.BandSelection` after phase 1 (e.g. the variance
        initialisation) and after phase 2 (the kept epoch's weights, refined: ``refine_moves``).
    val_auroc_before, val_auroc_after
        Validation AUROC of global RX on those bands (background from the training rows' negatives),
        averaged over acquisitions; None without validation rows or with ``evaluate=False``. The kept
        epoch was picked on these rows: optimistic.
    best_epoch
        The epoch whose weights were kept (by ``monitor``); None when the last epoch was kept.
    test_auroc_before, test_auroc_after
        The same on the test rows, which neither training nor the epoch choice saw: the number to
        report. None without test rows or with ``evaluate=False``.
    trained_selection
        The kept epoch's selection before the refinement (None: not recorded).
    refine_moves
        The moves ``(old band, new band)`` of :func:`refine_selection` (``refine_window``), in order.
    initialised
        The nodes phase 1 initialised from the training rows' statistics, in dependency order (empty:
        none needed it).
    """

    pipeline: Pipeline
    selector: str
    config: TrainingConfig
    history: list[EpochRecord]
    selection_before: BandSelection
    selection_after: BandSelection
    val_auroc_before: float | None
    val_auroc_after: float | None
    best_epoch: int | None = None
    test_auroc_before: float | None = None
    test_auroc_after: float | None = None
    trained_selection: BandSelection | None = None
    refine_moves: tuple[tuple[int, int], ...] = ()
    initialised: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # What a notebook wants to read at a glance; the pipeline, the config and the per-epoch records
        # (hundreds of weights each) are attributes.
        def auroc(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.4f}"

        kept = "last" if self.best_epoch is None else str(self.best_epoch)
        before = repr(self.selection_before)
        if prefers_no_band(self.selection_before):
            # A uniform start (the recipe's) prefers no band: its top-k are the tie rule's first bands,
            # which would otherwise read as a choice.
            tie_rule = self.selection_before.indices
            before = f"uniform start, no band preferred (the tie rule's bands {tie_rule})"
        lines = [
            f"TwoPhaseResult(selector={self.selector!r}, {len(self.history)} epochs, kept epoch {kept}",
            f"  before: {before}  AUROC validation {auroc(self.val_auroc_before)}, "
            f"test {auroc(self.test_auroc_before)}",
            f"  after:  {self.selection_after!r}  AUROC validation {auroc(self.val_auroc_after)}, "
            f"test {auroc(self.test_auroc_after)}",
        ]
        if self.trained_selection is not None:
            lines.append(f"  trained: {self.trained_selection!r}, refine moves {list(self.refine_moves)}")
        return "\n".join(lines) + ")"


def prefers_no_band(selection: BandSelection) -> bool:
    """Whether every score of ``selection`` is one value for all bands (a start that prefers none)."""
    return bool(selection.scores) and all(len(set(values)) == 1 for values in selection.scores.values())


@dataclass(frozen=True)
class _TrainingRows:
    """The training rows in exact row blocks, as a datamodule (phase 1 statistics, one block in memory)."""

    batches: Sequence[dict[str, Any]]

    def train_dataloader(self) -> Sequence[dict[str, Any]]:
        return self.batches


def resolve_pipeline(
    source: Pipeline | Mapping[str, Any] | str | os.PathLike[str] | None, n_bands: int
) -> Pipeline:
    """The pipeline to train: a :class:`Pipeline` as it is, or built from its configuration.

    Parameters
    ----------
    source
        A :class:`Pipeline` (used as it is, trained in place); a mapping in the seed's form, or a recipe
        mapping with a ``pipeline`` section; a YAML path or text of either; None: the shipped recipe's
        pipeline. In a configuration, ``input_channels: auto`` and ``num_spectral_bands: auto`` become
        ``n_bands``.
    n_bands
        The data's band count.
    """
    if isinstance(source, Pipeline):
        return source
    if source is None:
        config: dict[str, Any] = load_recipe()["pipeline"]
    elif isinstance(source, Mapping):
        config = dict(source)
    else:
        config = load_yaml(source)
    config = resolve_pipeline_band_counts(config, n_bands)
    return Pipeline.from_config(config)


def selection_auroc(
    datamodule: PatchDataModule, indices: Sequence[int], rows: tuple[float, float] | None = None
) -> float | None:
    """Mean over acquisitions of the AUROC of global RX on the bands ``indices``, on the rows ``rows``.

    The RX background is the training rows' negative pixels (known targets left out, as in the
    comparison's RX measure); the AUROC is computed on ``rows`` (fractions of each acquisition's height;
    default the datamodule's validation rows). None when ``rows`` is None (and the datamodule has no
    validation rows). Acquisitions whose evaluated rows hold one class only are skipped; None when every
    acquisition is. For many band sets on the same rows use :class:`SelectionAUROC` (reads once).

    Raises
    ------
    LabelError
        The data has no mask to compute an AUROC against.
    """
    rows = datamodule.val_rows if rows is None else rows
    if rows is None:
        return None
    return SelectionAUROC(datamodule, rows)(indices)


class SelectionAUROC:
    """:func:`selection_auroc` on one datamodule's ``rows`` as a function of the band set.

    The regions are read, and each acquisition's background mean and covariance over every band
    estimated, at the first call (:class:`~bandselect.evaluation.metrics.SubsetRX`); each band set is
    then scored once. One instance serves the epoch metric and the refinement of a training, which
    score hundreds to thousands of sets of the same rows.
    """

    def __init__(self, datamodule: PatchDataModule, rows: tuple[float, float]) -> None:
        self.datamodule, self.rows = datamodule, rows
        self._scorers: list[Any] | None = None
        self._seen: dict[tuple[int, ...], float | None] = {}

    def _build(self) -> list[Any]:
        # Imported here: the evaluation stack (scikit-learn) is only needed once a selection is scored,
        # and `bandselect run` of a statistics-only pipeline never loads it.
        from bandselect.evaluation.metrics import SubsetRX

        datamodule, scorers = self.datamodule, []
        for source in range(len(datamodule.source.shapes)):
            train = datamodule.region(datamodule.train_rows, source)
            evaluated = datamodule.region(self.rows, source)
            if PORT_MASK not in train:
                raise LabelError(
                    "two-phase evaluation",
                    expected="a label mask to compute the validation and test AUROC against",
                    found="data without a mask",
                    fix="give the training data its anomaly mask, or set val_rows and test_rows to null",
                )
            labels = evaluated[PORT_MASK][0, ..., 0].numpy()
            # Ignored pixels (ignore_label) are neither background nor evaluated.
            counted = _valid_of(evaluated, labels.shape)
            if labels[counted].all() or not labels[counted].any():
                continue
            train_labels = train[PORT_MASK][0, ..., 0].numpy()
            background = (train_labels <= 0) & _valid_of(train, train_labels.shape)
            scorers.append(
                SubsetRX(
                    train[PORT_CUBE][0].numpy()[background],
                    evaluated[PORT_CUBE][0].numpy()[counted],
                    labels[counted],
                )
            )
        return scorers

    def __call__(self, bands: Sequence[int]) -> float | None:
        """The mean AUROC over the acquisitions that hold both classes (None: none does)."""
        key = tuple(sorted(int(b) for b in bands))
        if key not in self._seen:
            if self._scorers is None:
                self._scorers = self._build()
            values = [scorer.auroc(key) for scorer in self._scorers]
            self._seen[key] = float(np.mean(values)) if values else None
        return self._seen[key]


def _valid_of(batch: Mapping[str, Any], shape: tuple[int, ...]) -> np.ndarray:
    """The first frame's validity of a one-frame batch (all True without ``ignore_label``)."""
    valid = batch.get(PORT_VALID)
    return np.ones(shape, bool) if valid is None else valid[0, ..., 0].numpy()


def _check_ignored_pixels(pipeline: Pipeline, datamodule: PatchDataModule) -> None:
    """Refuse, before any work, data with ignored or invalid pixels for a gradient phase that would
    count them (:func:`~bandselect.training.gradient.validity_gaps`;
    :meth:`GradientTrainer._with_validity` checks every batch)."""
    source, ignore = datamodule.source, datamodule.ignore_label
    if ignore is not None and source.has_mask and ignore in source.classes():
        require_validity(
            pipeline,
            what=f"two-phase training with ignore_label={ignore}",
            found=f"class {ignore} in the masks; ",
        )
    # The invalid pixels are counted (a read of every validity flag) only for a pipeline that would
    # count them; with data.valid connected (the recipe) nothing is read here.
    if any(source.flagged) and validity_gaps(pipeline, trained_nodes(pipeline)):
        invalid = sum(source.invalid_pixels())
        if invalid:
            require_validity(
                pipeline,
                what="two-phase training on acquisitions with invalid pixels",
                found=f"{invalid} pixels flagged invalid (the acquisitions' valid variable); ",
            )


def _selection_metric(node: BandSelector, wavelengths: np.ndarray, auroc: SelectionAUROC) -> Any:
    """A function returning ``auroc`` of ``node``'s current hard selection (memoised by the band set:
    at the temperature floor the selection rarely changes)."""

    def measure() -> float | None:
        return auroc(node.selection(wavelengths).indices)

    return measure


#: A refinement move must raise the validation AUROC by at least this much: near a saturated AUROC a
#: smaller gain is a handful of pixel pairs (the planted demo campaign's 550 nm band went to 542 nm for
#: less), and every setting measured on the shared scenes met the goal on the same tasks with it.
REFINE_MIN_GAIN = 1e-4

#: ``refine_window`` that lets each band move to any band of the spectrum (the recipe's default).
REFINE_ALL = "all"


def refine_selection(
    auroc: SelectionAUROC, node: BandSelector, wavelengths: np.ndarray, window: int | None
) -> list[tuple[int, int]]:
    """Local search of ``node``'s hard selection on ``auroc`` (the validation rows' measure), in place.

    Best improvement over single-band moves: of every move of one selected band to an unselected band
    (within ``±window`` of the band the *training* gave at that position; any band when ``window`` is
    None), the one that raises the AUROC most is made, if by at least :data:`REFINE_MIN_GAIN` (ties: the
    lowest position, then the lowest band), until no move does. The result is a local optimum of the
    validation AUROC under single-band moves, reached from the trained subset; the test rows stay
    unseen. Each move gains ``REFINE_MIN_GAIN`` on an AUROC in [0, 1], so the search ends after at most
    ``1 / REFINE_MIN_GAIN`` moves. The moves are applied by
    :meth:`~bandselect.selectors.annealing.AnnealedSelector.move_band`.

    Parameters
    ----------
    auroc
        :func:`selection_auroc` of the validation rows, as a :class:`SelectionAUROC` (shared with the
        epoch metric: each band set is scored once).
    node, wavelengths
        The trained selector and its band grid.
    window
        How far a band may move from the trained one; None: anywhere.

    Returns
    -------
    list
        The moves ``(old, new)`` made, in order (empty: the selection was already a local optimum).

    Raises
    ------
    TrainingError
        The node's selection does not follow a move (a selector whose hard selection is not its top
        logits).
    """

    def score(bands: Sequence[int]) -> float:
        value = auroc(bands)
        return -np.inf if value is None else float(value)

    trained = sorted(int(b) for b in node.selection(wavelengths).indices)
    bands = list(trained)  # position p holds the band that trained[p] became
    channels = int(wavelengths.size)
    best = score(bands)
    moves: list[tuple[int, int]] = []
    for _ in range(round(1 / REFINE_MIN_GAIN) + 1):
        choice, value = None, -np.inf
        for position, centre in enumerate(trained):
            low, high = (
                (0, channels)
                if window is None
                else (max(0, centre - window), min(channels, centre + window + 1))
            )
            for candidate in range(low, high):
                if candidate in bands:
                    continue
                trial = score([*bands[:position], candidate, *bands[position + 1 :]])
                if trial > value:
                    choice, value = (position, candidate), trial
        if choice is None or value < best + REFINE_MIN_GAIN:
            break
        position, candidate = choice
        moves.append((bands[position], candidate))
        bands[position], best = candidate, value
    for old, new in moves:
        node.move_band(old, new)  # type: ignore[attr-defined]
    got = sorted(int(b) for b in node.selection(wavelengths).indices)
    if got != sorted(bands):
        raise TrainingError(
            f"refining the selection of {type(node).__name__}",
            expected=f"bands {sorted(bands)} after the moves {moves}",
            found=f"bands {got}",
            fix="set refine_window: 0 for this selector",
        )
    return moves


def train_two_phase(
    pipeline: Pipeline | Mapping[str, Any] | str | os.PathLike[str] | None,
    data: TrainingData | str | os.PathLike[str],
    training: TrainingConfig | Mapping[str, Any] | None = None,
    *,
    selector: str | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = False,
    evaluate: bool = True,
) -> TwoPhaseResult:
    """Train a pipeline in two phases and report its selection before and after.

    Phase 1 initialises from the training rows' statistics; phase 2 trains by gradient and keeps the
    epoch best on the validation rows; the kept subset is then refined on those rows
    (:func:`refine_selection`, ``refine_window``); the test rows give the number reported.

    Parameters
    ----------
    pipeline
        A :class:`Pipeline` (trained in place), its configuration (mapping, YAML path or text; ``auto``
        channel counts take the data's band count, see :func:`resolve_pipeline`), or None for the shipped
        recipe's pipeline.
    data
        :class:`TrainingData`, or the path of a campaign store (every acquisition).
    training
        A :class:`~bandselect.training.config.TrainingConfig`, a mapping of fields overriding the recipe's
        defaults, or None (the defaults).
    selector
        The selector node whose selection is reported; None: the pipeline's only learnable selector.
    checkpoint_dir
        Where the gradient trainer writes ``last.pt`` after every epoch (and ``best.pt``).
    resume
        Continue the interrupted run in ``checkpoint_dir`` (phase 1 is skipped for nodes already
        initialised; the checkpoint restores the rest).
    progress
        Progress bars for both phases.
    evaluate
        Compute the before/after validation and test AUROC (False: skip them, e.g. when the caller
        evaluates).

    Returns
    -------
    TwoPhaseResult

    Raises
    ------
    ConfigError
        Invalid training settings (each named).
    PipelineError
        The selector is missing, not a selector, or ambiguous.
    TrainingError, LabelError
        From the trainers (non-finite loss, frozen nodes, missing labels, ...).

    Examples
    --------
    >>> from bandselect.synthetic import make_scene
    >>> scene = make_scene(48, 48, n_bands=16, seed=0, anomaly_fraction=0.02)
    >>> data = TrainingData.from_arrays(scene.cube, scene.mask, wavelengths_nm=scene.wavelengths_nm)
    >>> result = train_two_phase(None, data, {"epochs": 2, "patch_size": 16, "batches_per_epoch": 2})
    >>> len(result.history), len(result.selection_after.indices)
    (2, 3)
    """
    config = training_config(training)
    if isinstance(data, TrainingData):
        source = data
    elif isinstance(data, str | os.PathLike):
        source = TrainingData.from_store(data)
    else:
        raise ConfigError(
            "train_two_phase data",
            expected="TrainingData or the path of a campaign store",
            found=type(data).__name__,
            fix="pass TrainingData.from_arrays(cube, mask, wavelengths_nm=...) or a store path",
        )
    datamodule = source.datamodule(config)
    wavelengths = datamodule.wavelengths
    trained = resolve_pipeline(pipeline, int(wavelengths.size))
    name = selector_node(trained, selector, learnable=True)
    _check_ignored_pixels(trained, datamodule)
    node = trained.nodes[name]
    assert isinstance(node, BandSelector)  # checked by selector_node

    # Phase 1: statistical initialisation over the training rows, only where still needed.
    pending = [n for n in trained.topological_order() if needs_statistics(trained.nodes[n])]
    if pending:
        region = _TrainingRows(datamodule.region_batches(config.train_rows, datamodule.patch_size[0]))
        StatisticalTrainer(trained, region, nodes=pending, progress=progress).fit()
    trained.eval()
    before = node.selection(wavelengths)

    # Phase 2: unfreeze → gradient training → freeze back (saved like an initialised pipeline).
    freezable = [n for n in trained.nodes.values() if isinstance(n, Freezable)]
    for each in freezable:
        each.unfreeze()
    # The reported measure on the validation rows, every epoch (a monitor key, and a training curve);
    # the refinement and the report share it (each band set scored once).
    validation = None if config.val_rows is None else SelectionAUROC(datamodule, config.val_rows)
    labelled = validation is not None and datamodule.source.has_mask
    epoch_metrics = {SELECTION_AUROC: _selection_metric(node, wavelengths, validation)} if labelled else {}
    try:
        trainer = GradientTrainer.from_config(
            trained,
            datamodule,
            config,
            checkpoint_dir=checkpoint_dir,
            progress=progress,
            epoch_metrics=epoch_metrics,
        )
        history = trainer.fit(resume=resume)
    finally:
        trained.to("cpu")
        for each in freezable:
            each.freeze()
        trained.eval()
    trained_selection = node.selection(wavelengths)
    moves: list[tuple[int, int]] = []
    if config.refine_window != 0 and labelled and hasattr(node, "move_band"):
        window = None if config.refine_window == REFINE_ALL else int(config.refine_window)
        moves = refine_selection(validation, node, wavelengths, window)
    after = node.selection(wavelengths)

    test = None if config.test_rows is None else SelectionAUROC(datamodule, config.test_rows)

    def measured(selection: BandSelection, scorer: SelectionAUROC | None) -> float | None:
        return scorer(selection.indices) if evaluate and scorer is not None else None

    return TwoPhaseResult(
        pipeline=trained,
        selector=name,
        config=config,
        history=history,
        selection_before=before,
        selection_after=after,
        val_auroc_before=measured(before, validation),
        val_auroc_after=measured(after, validation),
        best_epoch=trainer.best_epoch if config.restore_best else None,
        test_auroc_before=measured(before, test),
        test_auroc_after=measured(after, test),
        trained_selection=trained_selection,
        refine_moves=tuple(moves),
        initialised=tuple(pending),
    )
