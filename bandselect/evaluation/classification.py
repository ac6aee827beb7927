"""Multi-class measures of a band selection: overall accuracy and Cohen's kappa on held-out spatial blocks.

A selection for a classification scene is judged by what a classifier does with only the selected
bands, on pixels of blocks it (and the selector) never saw:

- :func:`block_folds`: the scene's block grid (:func:`~bandselect.evaluation.block_grid`) dealt into
  ``n_folds`` folds of whole blocks; every pixel is tested exactly once;
- :func:`classification_scores`: a classifier fitted on the train pixels of one split, scored on its test
  pixels;
- :func:`cross_validated_classification`: for each fold, the bands are selected on the fold's train
  pixels only (a callback), the classifier is fitted there, and the test predictions of all folds are
  pooled into one overall accuracy and one kappa.

Classifiers (:data:`CLASSIFIERS`): ``"logistic"`` (standardised multinomial logistic regression, the
default) and ``"lda"`` (linear discriminant analysis). Labels are integer class ids; ``ignore_label``
pixels take part in nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, cohen_kappa_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from bandselect.errors import ConfigError, InputError, LabelError
from bandselect.evaluation.metrics import DEFAULT_BLAS_THREADS, DEFAULT_MAX_ITER, _features, _pixel_values
from bandselect.evaluation.split import SpatialSplit, block_grid
from bandselect.labels import check_label_roles, integer_labels

__all__ = [
    "CLASSIFIERS",
    "ClassificationScores",
    "block_folds",
    "classification_scores",
    "cross_validated_classification",
]

CLASSIFIERS: tuple[str, ...] = ("logistic", "lda")
#: Draws of a fold assignment tried before giving up on one that trains every class in every fold.
_MAX_DRAWS = 200

#: ``select(train) -> band indices`` (None: all bands), given a fold's ``(H, W)`` train mask.
SelectOnTrain = Callable[[np.ndarray], Sequence[int] | np.ndarray | None]


@dataclass(frozen=True)
class ClassificationScores:
    """Overall accuracy and Cohen's kappa of the test predictions, with the pixel and class counts."""

    overall_accuracy: float
    kappa: float
    n_test_pixels: int
    n_classes: int


def _model(classifier: str, max_iter: int) -> Pipeline:
    if classifier == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    if classifier == "lda":
        return make_pipeline(StandardScaler(), LinearDiscriminantAnalysis())
    raise ConfigError(
        "classifier", expected=f"one of {list(CLASSIFIERS)}", found=repr(classifier), fix="pass 'logistic'"
    )


def _class_ids(labels: np.ndarray, cube_shape: tuple[int, ...], ignore_label: int | None) -> tuple:
    flat = integer_labels(_pixel_values(labels, cube_shape, "labels"), what="labels").astype(np.int64)
    _, ignore = check_label_roles(None, ignore_label, what="labels")
    counted = np.ones(flat.shape, bool) if ignore is None else flat != ignore
    return flat, counted


def classification_scores(
    cube: np.ndarray,
    labels: np.ndarray,
    indices: Sequence[int] | np.ndarray | None,
    train: np.ndarray,
    test: np.ndarray,
    *,
    classifier: str = "logistic",
    ignore_label: int | None = None,
    max_iter: int = DEFAULT_MAX_ITER,
    blas_threads: int | None = DEFAULT_BLAS_THREADS,
) -> ClassificationScores:
    """Overall accuracy and kappa on ``test`` of a classifier fitted on ``train``, on the selected bands.

    Parameters
    ----------
    cube
        ``(H, W, C)`` or ``(N, C)``.
    labels
        Integer class ids of the same pixels.
    indices
        Bands to use; None: all bands.
    train, test
        Disjoint boolean pixel masks.
    classifier
        ``"logistic"`` or ``"lda"``.
    ignore_label
        Pixels of this class are neither trained on nor scored.

    Raises
    ------
    LabelError
        Fewer than two classes among the train pixels, or no test pixel.
    InputError
        Overlapping train and test masks.
    """
    predicted, truth = _fit_predict(
        cube, labels, indices, train, test, classifier, ignore_label, max_iter, blas_threads
    )
    return _scores(truth, predicted)


def _fit_predict(
    cube: np.ndarray,
    labels: np.ndarray,
    indices: Sequence[int] | np.ndarray | None,
    train: np.ndarray,
    test: np.ndarray,
    classifier: str,
    ignore_label: int | None,
    max_iter: int,
    blas_threads: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    array = np.asarray(cube)
    features = _features(array, indices)
    classes, counted = _class_ids(labels, array.shape, ignore_label)
    train_flat = _pixel_values(train, array.shape, "train").astype(bool) & counted
    test_flat = _pixel_values(test, array.shape, "test").astype(bool) & counted
    if np.any(train_flat & test_flat):
        raise InputError(
            "train/test masks",
            expected="disjoint pixel sets",
            found=f"{int(np.count_nonzero(train_flat & test_flat))} pixels in both",
            fix="build them with block_folds or spatial_block_split",
        )
    trained_classes = np.unique(classes[train_flat])
    if trained_classes.size < 2 or not test_flat.any():
        raise LabelError(
            "train/test pixels",
            expected="at least two classes among the train pixels and at least one test pixel",
            found=f"train classes {trained_classes.tolist()[:10]}, {int(test_flat.sum())} test pixels",
            fix="use more (smaller) blocks or another seed",
        )
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        model = _model(classifier, max_iter).fit(features[train_flat], classes[train_flat])
        predicted = model.predict(features[test_flat])
    return predicted, classes[test_flat]


def _scores(truth: np.ndarray, predicted: np.ndarray) -> ClassificationScores:
    return ClassificationScores(
        overall_accuracy=float(accuracy_score(truth, predicted)),
        kappa=float(cohen_kappa_score(truth, predicted)),
        n_test_pixels=int(truth.size),
        n_classes=int(np.unique(truth).size),
    )


def block_folds(
    labels: np.ndarray,
    *,
    n_blocks: int | Sequence[int] = (5, 5),
    n_folds: int = 5,
    seed: int = 0,
    ignore_label: int | None = None,
) -> list[SpatialSplit]:
    """Deal the scene's blocks into ``n_folds`` folds; fold ``i`` tests on its blocks, trains on the rest.

    The blocks are shuffled (seeded) and dealt round-robin, so fold sizes differ by at most one block.
    Draws are repeated (from the same generator) until every fold's train part holds every class of the
    scene.

    Parameters
    ----------
    labels
        ``(H, W)`` integer class ids.
    n_blocks
        The block grid ``(rows, columns)``.
    n_folds
        Folds, ``2 <= n_folds <= number of blocks``.
    seed
        Seed of the deal.
    ignore_label
        A class that does not need to be trained on.

    Raises
    ------
    ConfigError
        Fewer blocks than folds.
    LabelError
        No deal of the blocks trains every class in every fold (a class lives in a single block).
    """
    grid_labels = integer_labels(labels, what="labels")
    if grid_labels.ndim != 2:
        raise ConfigError(
            "labels", expected="(H, W) class ids", found=f"shape {grid_labels.shape}", fix="pass one scene"
        )
    _, ignore = check_label_roles(None, ignore_label, what="labels")
    blocks = block_grid(*grid_labels.shape, n_blocks=n_blocks)
    count = int(blocks.max()) + 1
    if not 2 <= int(n_folds) <= count:
        raise ConfigError(
            "n_folds",
            expected=f"an integer in [2, {count}] (the number of blocks)",
            found=n_folds,
            fix="use fewer folds or more blocks",
        )
    classes = [c for c in np.unique(grid_labels).tolist() if c != ignore]
    rng = np.random.default_rng(seed)
    for _ in range(_MAX_DRAWS):
        fold_of_block = np.empty(count, np.int64)
        fold_of_block[rng.permutation(count)] = np.arange(count) % int(n_folds)
        fold = fold_of_block[blocks]
        splits = [SpatialSplit(train=fold != i, test=fold == i) for i in range(int(n_folds))]
        if all(set(classes) <= set(np.unique(grid_labels[s.train]).tolist()) for s in splits):
            return splits
    raise LabelError(
        "labels",
        expected=f"a deal of {count} blocks into {n_folds} folds that trains every class in every fold",
        found=f"none in {_MAX_DRAWS} draws (a class lies in too few blocks)",
        fix="use more (smaller) blocks or fewer folds",
    )


def cross_validated_classification(
    cube: np.ndarray,
    labels: np.ndarray,
    select: SelectOnTrain,
    folds: Sequence[SpatialSplit],
    *,
    classifier: str = "logistic",
    ignore_label: int | None = None,
    max_iter: int = DEFAULT_MAX_ITER,
    blas_threads: int | None = DEFAULT_BLAS_THREADS,
) -> ClassificationScores:
    """Select on each fold's train blocks, classify its test blocks, pool the predictions of all folds.

    Parameters
    ----------
    cube
        ``(H, W, C)``.
    labels
        ``(H, W)`` integer class ids.
    select
        ``select(train_mask) -> band indices`` (None: all bands): the selection made on the train pixels.
    folds
        Splits from :func:`block_folds`.
    classifier, ignore_label, max_iter, blas_threads
        As in :func:`classification_scores`.

    Returns
    -------
    ClassificationScores
        Of the pooled test predictions (each counted pixel predicted once when the folds partition the
        scene).
    """
    predicted_parts, truth_parts = [], []
    for split in folds:
        indices = select(split.train)
        predicted, truth = _fit_predict(
            cube, labels, indices, split.train, split.test, classifier, ignore_label, max_iter, blas_threads
        )
        predicted_parts.append(predicted)
        truth_parts.append(truth)
    return _scores(np.concatenate(truth_parts), np.concatenate(predicted_parts))
