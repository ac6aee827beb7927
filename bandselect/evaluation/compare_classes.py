"""Compare band selectors on a multi-class scene: overall accuracy and kappa on held-out spatial blocks.

:func:`compare_classes` is the multi-class half of the ``compare_selectors`` flow (no Prefect, no MLflow),
the counterpart of :func:`bandselect.evaluation.compare.compare_selections` for binary tasks:

1. The scene's block grid (``split.n_blocks``) is dealt into ``folds`` folds of whole blocks
   (:func:`~bandselect.evaluation.classification.block_folds`); every labelled pixel is tested once.
2. In each fold every selector is fitted on the **train blocks only**, through the same path as the
   binary comparison (:func:`~bandselect.evaluation.compare.select_bands`: equal train tiles, the
   statistics the node requests, ``ignore_label`` pixels left out), with the class ids as labels.
3. A classifier (standardised logistic regression by default) is fitted on the train pixels of the
   selected bands and predicts the test blocks; the predictions of all folds give one overall accuracy
   and one Cohen's kappa per selector (:data:`~bandselect.evaluation.leaderboard.CLASSIFICATION_MEASURES`).
4. Baselines under the same folds: all bands, and ``n_random_draws`` random draws of ``k`` bands (mean ±
   standard deviation) for every ``k`` used by a selector.
5. Band stability (optional) as in the binary comparison, bootstrapping the train tiles of the first fold.

Selectors compare as in the binary comparison: a selector whose windows the sensor does not cover stays
in the leaderboard as ``"not applicable: <message>"``. The default set
(:func:`default_multiclass_selector_specs`) holds the multi-class supervised selectors, the unsupervised
ones and the variance initialisation for each ``k``, and the fixed three-band composites.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from bandselect.errors import ConfigError, LabelError, ShapeError
from bandselect.evaluation.classification import (
    CLASSIFIERS,
    ClassificationScores,
    block_folds,
    cross_validated_classification,
)
from bandselect.evaluation.compare import (
    ScoredSelection,
    SelectorSpec,
    SplitSettings,
    StabilitySettings,
    _tiles,
    compare_selections,
    selector_rows,
)
from bandselect.evaluation.leaderboard import (
    CLASSIFICATION_MEASURES,
    MEASURE_LABELS,
    Leaderboard,
    all_bands_row,
    random_bands_row,
    ranked_rows,
)
from bandselect.evaluation.scene import LabelledScene
from bandselect.evaluation.selecting import as_selector_spec, select_bands
from bandselect.evaluation.split import SpatialSplit, block_grid
from bandselect.labels import check_label_roles, integer_labels
from bandselect.selection import BandSelection
from bandselect.spectral import validate_wavelengths

__all__ = ["DEFAULT_KS", "compare_classes", "compare_scene", "default_multiclass_selector_specs"]

#: Selector types that compare classes (they need ``multiclass: true`` here).
SUPERVISED_TYPES: tuple[str, ...] = (
    "SupervisedCIRBandSelector",
    "SupervisedWindowedFalseRGBSelector",
    "SupervisedFullSpectrumBandSelector",
)
#: Band counts of the default multi-class comparison.
DEFAULT_KS: tuple[int, ...] = (3, 5, 10)


def default_multiclass_selector_specs(ks: Sequence[int] = DEFAULT_KS) -> dict[str, SelectorSpec]:
    """The selectors of a multi-class comparison, for every ``k`` in ``ks`` where ``k`` is configurable.

    Returns
    -------
    dict of str to SelectorSpec
        Per ``k``: the multi-class supervised full-spectrum selector with ``criterion="separability"``
        and ``"mrmr"``, the orthogonal-projection and correlation-cluster selectors, the variance
        initialisation (hard top-``k``); once: true colour, CIR and high contrast.
    """
    specs: dict[str, SelectorSpec] = {
        "baseline_rgb": SelectorSpec("BaselineFalseRGBSelector"),
        "cir_false_color": SelectorSpec("CIRFalseColorSelector"),
        "high_contrast": SelectorSpec("HighContrastBandSelector"),
    }
    for k in ks:
        for criterion in ("separability", "mrmr"):
            specs[f"supervised_{criterion}_k{k}"] = SelectorSpec(
                "SupervisedFullSpectrumBandSelector", {"criterion": criterion, "k": k, "multiclass": True}
            )
        specs[f"orthogonal_projection_k{k}"] = SelectorSpec("OrthogonalProjectionBandSelector", {"k": k})
        specs[f"correlation_clusters_k{k}"] = SelectorSpec("CorrelationClusterBandSelector", {"k": k})
        specs[f"soft_variance_topk_k{k}"] = SelectorSpec(
            "SoftChannelSelector", {"n_select": k, "init_method": "variance"}, train=False
        )
    return specs


def _check(cube: np.ndarray, labels: np.ndarray, ignore_label: int | None) -> tuple[np.ndarray, np.ndarray]:
    array = np.asarray(cube)
    if array.ndim != 3:
        raise ShapeError("cube", expected="(H, W, C)", found=f"shape {array.shape}", fix="pass one scene")
    ids = integer_labels(labels, what="labels").astype(np.int64)
    if ids.shape != array.shape[:2]:
        raise ShapeError(
            "labels",
            expected=f"shape {array.shape[:2]} (one class id per pixel)",
            found=f"shape {ids.shape}",
            fix="pass the (H, W) class ids of the scene",
        )
    check_label_roles(None, ignore_label, what="labels")
    return array.astype(np.float32, copy=False), ids


class _FoldSelector:
    """Fits one selector spec on the train tiles of each fold (cached per fold: the measure asks once)."""

    def __init__(
        self,
        spec: SelectorSpec,
        cube: np.ndarray,
        labels: np.ndarray,
        blocks: np.ndarray,
        wavelengths_nm: np.ndarray,
        ignore_label: int | None,
    ) -> None:
        self.spec, self.cube, self.labels, self.blocks = spec, cube, labels, blocks
        self.wavelengths_nm, self.ignore_label = wavelengths_nm, ignore_label
        self.selections: list[BandSelection] = []

    def train_tiles(self, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _tiles(self.cube, self.labels, self.blocks, np.unique(self.blocks[train]))

    def __call__(self, train: np.ndarray) -> np.ndarray:
        tiles, tile_labels = self.train_tiles(train)
        selection = select_bands(
            self.spec,
            tiles,
            tile_labels,
            self.wavelengths_nm,
            multiclass=True,
            ignore_label=self.ignore_label,
        )
        self.selections.append(selection)
        return np.asarray(selection.indices, dtype=np.int64)


def _row_scores(result: ClassificationScores) -> dict[str, float]:
    return {"overall_accuracy": result.overall_accuracy, "kappa": result.kappa}


def compare_classes(
    cube: np.ndarray,
    labels: np.ndarray,
    wavelengths: Sequence[float] | np.ndarray,
    selectors: Mapping[str, SelectorSpec | Mapping[str, Any]],
    *,
    ignore_label: int | None = None,
    split: SplitSettings | None = None,
    folds: int = 5,
    classifier: str = "logistic",
    n_random_draws: int = 20,
    stability: StabilitySettings | None = None,
    measures: Sequence[str] = CLASSIFICATION_MEASURES,
    seed: int = 0,
    baselines: bool = True,
    random_ks: Sequence[int] = (),
) -> Leaderboard:
    """Fit each selector inside each block fold; score its bands by overall accuracy and kappa.

    Parameters
    ----------
    cube
        ``(H, W, C)`` scene.
    labels
        ``(H, W)`` integer class ids (any set of them).
    wavelengths
        ``(C,)`` band centres in nm.
    selectors
        Leaderboard name → :class:`~bandselect.evaluation.compare.SelectorSpec` (or a mapping
        ``{"type": ..., "config": {...}}``); supervised selectors need ``multiclass: true``.
    ignore_label
        Label of unlabelled pixels: left out of every statistic, never trained on, never scored.
    split
        The block grid (``n_blocks``) and the seed of the deal into folds (``test_fraction`` is unused:
        every block is held out once).
    folds
        Number of block folds.
    classifier
        ``"logistic"`` or ``"lda"``.
    n_random_draws
        Draws of the random baseline (one baseline per distinct ``k`` of the selections).
    stability
        Bootstrap settings (over the first fold's train tiles); ``n_bootstrap=0`` skips it.
    measures
        Names from :data:`~bandselect.evaluation.leaderboard.CLASSIFICATION_MEASURES`; the first ranks.
    seed
        Seed of the random draws and the bootstrap.
    baselines
        Score the all-bands and random-bands baselines (``False``: the selector rows only, e.g. one
        selector of a mapped comparison; :func:`~bandselect.evaluation.leaderboard.merge_leaderboards`
        joins the parts).
    random_ks
        Band counts of random baselines besides the selections' own (a baselines-only part of a mapped
        comparison gets the ``k`` of every selector).

    Returns
    -------
    Leaderboard
        Ranked by ``measures[0]``; ``summary`` holds the classes and their pixel counts.

    Raises
    ------
    ConfigError
        Unknown classifier or selector type, bad names or arguments, a supervised selector without
        ``multiclass: true``.
    LabelError
        Fewer than two classes, or a class in too few blocks for every fold to train on it.
    """
    split = split or SplitSettings()
    stability = stability or StabilitySettings(n_bootstrap=0)
    array, ids = _check(cube, labels, ignore_label)
    height, width, n_bands = array.shape
    wavelengths_nm = validate_wavelengths(wavelengths, n_bands)
    if classifier not in CLASSIFIERS:
        raise ConfigError(
            "classifier",
            expected=f"one of {list(CLASSIFIERS)}",
            found=repr(classifier),
            fix="pass 'logistic'",
        )
    measures = tuple(measures)
    if not measures or any(m not in CLASSIFICATION_MEASURES for m in measures):
        raise ConfigError(
            "measures",
            expected=f"a non-empty subset of {CLASSIFICATION_MEASURES}",
            found=list(measures),
            fix="drop the binary (AUROC) measures for a multi-class scene",
        )
    specs = {str(name): as_selector_spec(name, spec) for name, spec in selectors.items()}
    if not specs and not baselines:
        raise ConfigError(
            "selectors", expected="at least one selector", found="none", fix="name some selectors"
        )
    binary = [n for n, s in specs.items() if s.type in SUPERVISED_TYPES and not s.config.get("multiclass")]
    if binary:
        raise ConfigError(
            f"supervised selectors {binary} in a multi-class comparison",
            expected="multiclass: true in their config (compare every class)",
            found="the binary rule (class 0 against labels > 0)",
            fix="add multiclass: true, or compare one class against the rest (scene.label)",
        )
    counted = np.ones(ids.shape, bool) if ignore_label is None else ids != int(ignore_label)
    classes, counts = np.unique(ids[counted], return_counts=True)
    if classes.size < 2:
        raise LabelError(
            "labels",
            expected="at least two classes to compare",
            found=f"classes {classes.tolist()}"
            + ("" if ignore_label is None else f" besides {ignore_label}"),
            fix="pass a multi-class label map, or compare one class against the rest (binary)",
        )
    fold_splits = block_folds(
        ids, n_blocks=split.n_blocks, n_folds=folds, seed=split.seed, ignore_label=ignore_label
    )
    blocks = block_grid(height, width, n_blocks=split.n_blocks)
    options: dict[str, Any] = {"classifier": classifier, "ignore_label": ignore_label}

    def measure(select: Callable[[np.ndarray], Any]) -> dict[str, float]:
        scores = _row_scores(cross_validated_classification(array, ids, select, fold_splits, **options))
        return {m: scores[m] for m in measures}

    def score(name: str, spec: SelectorSpec) -> ScoredSelection:
        fold_selector = _FoldSelector(spec, array, ids, blocks, wavelengths_nm, ignore_label)
        scores = measure(fold_selector)
        stability_result = None
        if stability.n_bootstrap > 0:
            tiles, tile_labels = fold_selector.train_tiles(fold_splits[0].train)
            pairs = [(tiles[i], tile_labels[i]) for i in range(tiles.shape[0])]
            stability_result = stability.bootstrap(
                _stability_function(spec, ignore_label), pairs, wavelengths_nm, ignore_label
            )
        return ScoredSelection(
            scores=scores, selection=fold_selector.selections[0], stability=stability_result
        )

    rows, ks = selector_rows(specs, measures, score)
    ks |= {int(k) for k in random_ks}
    if baselines:
        rows.append(all_bands_row(n_bands, measure(lambda train: None)))
        rng = np.random.default_rng(seed)
        for k in sorted(ks):
            draws = [np.sort(rng.choice(n_bands, size=k, replace=False)) for _ in range(int(n_random_draws))]
            rows.append(random_bands_row(k, [measure(lambda train, bands=draw: bands) for draw in draws]))
    summary = {
        "task": "multiclass",
        "height": height,
        "width": width,
        "n_bands": n_bands,
        "classes": classes.tolist(),
        "class_pixels": counts.tolist(),
        "ignore_label": ignore_label,
        "labelled_pixels": int(counted.sum()),
        "classifier": classifier,
        "folds": folds,
        "split": {"n_blocks": list(split.n_blocks), "seed": split.seed},
        "stability": {
            "n_bootstrap": stability.n_bootstrap,
            "tolerance_bands": stability.tolerance_bands,
            "seed": stability.seed,
        },
        "n_random_draws": n_random_draws,
        "measure_labels": {m: MEASURE_LABELS[m] for m in measures},
    }
    return Leaderboard(
        rows=ranked_rows(rows, measures[0]),
        measures=measures,
        wavelengths_nm=wavelengths_nm,
        split=SpatialSplit(train=fold_splits[0].train, test=fold_splits[0].test),
        summary=summary,
    )


def _stability_function(
    spec: SelectorSpec, ignore_label: int | None
) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    def select(cube: np.ndarray, labels: np.ndarray, wavelengths_nm: np.ndarray) -> np.ndarray:
        selection = select_bands(
            spec, cube, labels, wavelengths_nm, multiclass=True, ignore_label=ignore_label
        )
        return np.asarray(selection.indices, dtype=np.int64)

    return select


def compare_scene(
    scene: LabelledScene,
    selectors: Mapping[str, SelectorSpec | Mapping[str, Any]],
    *,
    measures: Sequence[str] | None = None,
    classifier: str = "logistic",
    **options: Any,
) -> Leaderboard:
    """The comparison a labelled scene calls for: :func:`compare_classes` for a multi-class scene,
    :func:`~bandselect.evaluation.compare.compare_selections` for a binary one.

    ``options`` (``split``, ``stability``, ``n_random_draws``, ``folds``, ``seed``) and ``measures``
    (None: the task's own) go to either; ``classifier`` only to the multi-class one.
    """
    extra = {} if measures is None else {"measures": tuple(measures)}
    if scene.labels is not None:
        return compare_classes(
            scene.cube,
            scene.labels,
            scene.wavelengths_nm,
            selectors,
            ignore_label=scene.ignore_label,
            classifier=classifier,
            **options,
            **extra,
        )
    return compare_selections(
        scene.cube, scene.positive, scene.wavelengths_nm, selectors, valid=scene.valid, **options, **extra
    )
