"""Multi-class measures: accuracy and kappa on held-out blocks, block folds, selection inside each fold."""

from __future__ import annotations

import numpy as np
import pytest
from multiclass_scenes import planted_pair_scene
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bandselect.errors import ConfigError, InputError, LabelError
from bandselect.evaluation.classification import (
    block_folds,
    classification_scores,
    cross_validated_classification,
)
from bandselect.stats import separability_select
from bandselect.stats.classes import labelled_statistics

SCENE = planted_pair_scene(size=50)


def test_block_folds_test_every_pixel_once_and_train_every_class() -> None:
    folds = block_folds(SCENE.labels, n_blocks=(5, 5), n_folds=5, seed=1, ignore_label=0)
    tested = np.sum([split.test for split in folds], axis=0)
    assert np.all(tested == 1)
    for split in folds:
        assert not np.any(split.train & split.test)
        assert set(np.unique(SCENE.labels[split.train])) >= {3, 7, 12, 40}
    assert [int(s.test.sum()) for s in folds] == [500] * 5  # 5 whole 10 x 10 blocks each
    with pytest.raises(ConfigError, match="n_folds"):
        block_folds(SCENE.labels, n_blocks=(2, 2), n_folds=5)
    lonely = np.zeros((20, 20), int)
    lonely[:2, :2] = 1  # class 1 lives in one block: some fold must test all of it
    with pytest.raises(LabelError, match="every class in every fold"):
        block_folds(lonely, n_blocks=(4, 4), n_folds=4)


def test_classification_scores_on_the_planted_bands() -> None:
    split = block_folds(SCENE.labels, n_folds=5, seed=0)[0]
    planted = classification_scores(SCENE.cube, SCENE.labels, list(SCENE.planted), *split, ignore_label=0)
    noise = classification_scores(SCENE.cube, SCENE.labels, [0, 1, 3], *split, ignore_label=0)
    assert planted.overall_accuracy > 0.97 and planted.kappa > 0.95
    assert noise.overall_accuracy < 0.4 and abs(noise.kappa) < 0.1  # four balanced classes: chance 0.25
    counted = split.test & (SCENE.labels != 0)
    assert planted.n_test_pixels == int(counted.sum()) and planted.n_classes == 4
    lda = classification_scores(SCENE.cube, SCENE.labels, list(SCENE.planted), *split, classifier="lda")
    assert lda.n_classes == 5  # without ignore_label the unlabelled pixels are a class of their own
    with pytest.raises(ConfigError, match="classifier"):
        classification_scores(SCENE.cube, SCENE.labels, None, *split, classifier="svm")
    with pytest.raises(InputError, match="disjoint"):
        classification_scores(SCENE.cube, SCENE.labels, None, split.train, split.train | split.test)


def test_cross_validation_selects_inside_each_fold_and_pools_the_predictions() -> None:
    folds = block_folds(SCENE.labels, n_folds=4, seed=0, ignore_label=0)
    seen: list[np.ndarray] = []

    def select(train: np.ndarray) -> np.ndarray:
        seen.append(train)
        stats = labelled_statistics(SCENE.cube[train], SCENE.labels[train], ignore_label=0)
        return separability_select(stats, 6, multiclass=True).indices

    pooled = cross_validated_classification(SCENE.cube, SCENE.labels, select, folds, ignore_label=0)
    assert len(seen) == 4 and all(np.array_equal(a, f.train) for a, f in zip(seen, folds, strict=True))
    assert pooled.n_test_pixels == int((SCENE.labels != 0).sum())
    assert pooled.overall_accuracy > 0.97
    # Pooled: one accuracy and one kappa of all the folds' test predictions together.
    truth, predicted = [], []
    for split, train in zip(folds, list(seen), strict=True):
        bands = select(train)
        fit = (split.train & (SCENE.labels != 0)).reshape(-1)
        test = (split.test & (SCENE.labels != 0)).reshape(-1)
        pixels, labels = SCENE.cube.reshape(-1, SCENE.cube.shape[-1])[:, bands], SCENE.labels.reshape(-1)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(
            pixels[fit], labels[fit]
        )
        truth.append(labels[test])
        predicted.append(model.predict(pixels[test]))
    assert pooled.kappa == pytest.approx(cohen_kappa_score(np.concatenate(truth), np.concatenate(predicted)))
