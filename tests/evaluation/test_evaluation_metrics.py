"""Downstream measures: RX AUROC on planted anomalies, logistic AUROC against sklearn, baselines."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bandselect.errors import ConfigError, InputError, LabelError, NonFiniteError, ShapeError
from bandselect.evaluation import (
    all_bands_baseline,
    logistic_auroc,
    logistic_holdout_auroc,
    random_band_baseline,
    rx_auroc,
    spatial_block_split,
)

PLANTED = [3, 7, 11]
DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, np.ndarray]:
    """A 40 x 40 x 16 cube of correlated background with 40 anomalies shifted in bands 3, 7, 11."""
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(16, 16)) * 0.3 + np.eye(16)
    cube = rng.normal(size=(40, 40, 16)) @ mixing
    mask = np.zeros((40, 40), dtype=bool)
    mask.ravel()[rng.choice(1600, size=40, replace=False)] = True
    cube[mask] += np.where(np.isin(np.arange(16), PLANTED), 5.0, 0.0)
    return cube, mask


def test_rx_auroc_high_on_planted_bands_and_chance_on_noise(planted) -> None:
    cube, mask = planted
    assert rx_auroc(cube, mask, PLANTED) > 0.97
    noise = rx_auroc(cube, mask, [0, 1, 2])
    assert abs(noise - 0.5) < 0.1
    assert rx_auroc(cube, mask) > 0.9  # all bands still find them


def test_rx_auroc_matches_a_direct_mahalanobis(planted) -> None:
    cube, mask = planted
    train, test = spatial_block_split(40, 40, n_blocks=(4, 4), seed=1, mask=mask)
    pixels = cube[..., PLANTED].reshape(-1, 3)
    background = pixels[train.ravel()]
    inverse = np.linalg.inv(np.cov(background, rowvar=False))
    centred = pixels[test.ravel()] - background.mean(axis=0)
    expected = roc_auc_score(mask[test], np.einsum("ij,jk,ik->i", centred, inverse, centred))
    found = rx_auroc(cube, mask, PLANTED, background=train, evaluate=test, ridge=0.0)
    assert found == pytest.approx(expected, abs=1e-12)


def test_logistic_auroc_equals_sklearn(planted) -> None:
    cube, mask = planted
    features = cube[..., [0, 3, 5]].reshape(-1, 3)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=7)
    expected = cross_val_score(model, features, mask.ravel(), cv=folds, scoring="roc_auc").mean()
    assert logistic_auroc(cube, mask, [0, 3, 5], seed=7) == pytest.approx(expected, abs=1e-12)
    # (N, C) input and (H, W, 1) masks are the same measure
    flat = logistic_auroc(cube.reshape(-1, 16), mask.reshape(-1), [0, 3, 5], seed=7)
    assert flat == pytest.approx(expected, abs=1e-12)
    assert logistic_auroc(cube, mask[..., None], [0, 3, 5], seed=7) == pytest.approx(expected, abs=1e-12)


def test_logistic_holdout_auroc_equals_sklearn(planted) -> None:
    cube, mask = planted
    train, test = spatial_block_split(40, 40, seed=2, mask=mask)
    features = cube[..., PLANTED]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(
        features[train], mask[train]
    )
    expected = roc_auc_score(mask[test], model.decision_function(features[test]))
    assert logistic_holdout_auroc(cube, mask, PLANTED, train, test) == pytest.approx(expected, abs=1e-12)


def test_baselines(planted) -> None:
    cube, mask = planted
    measure = partial(rx_auroc, ridge=1e-6)
    result = random_band_baseline(cube, mask, k=3, n_draws=6, seed=0, measure=measure)
    assert result.draws.shape == (6, 3) and result.scores.shape == (6,)
    assert all(np.unique(draw).size == 3 for draw in result.draws)
    assert result.mean == pytest.approx(result.scores.mean()) and result.std == pytest.approx(
        result.scores.std()
    )
    expected = [rx_auroc(cube, mask, draw) for draw in result.draws]
    np.testing.assert_allclose(result.scores, expected)
    again = random_band_baseline(cube, mask, k=3, n_draws=6, seed=0, measure=measure)
    np.testing.assert_array_equal(again.draws, result.draws)
    assert all_bands_baseline(cube, mask, measure=rx_auroc) == pytest.approx(rx_auroc(cube, mask))
    with pytest.raises(ConfigError, match=r"\[1, 16\]"):
        random_band_baseline(cube, mask, k=17)


def test_typed_errors(planted) -> None:
    cube, mask = planted
    with pytest.raises(LabelError, match="0 positive"):
        logistic_auroc(cube, np.zeros_like(mask), [0])
    with pytest.raises(LabelError, match="0 positive"):
        rx_auroc(cube, np.zeros_like(mask), [0])
    few = np.zeros_like(mask)
    few[0, :3] = True
    with pytest.raises(LabelError, match="at least 5 positive"):
        logistic_auroc(cube, few, [0])
    with pytest.raises(ShapeError, match="mask"):
        rx_auroc(cube, mask[:-1], [0])
    with pytest.raises(InputError, match=r"\[0, 16\)"):
        logistic_auroc(cube, mask, [16])
    with pytest.raises(LabelError, match="one class against the rest"):
        logistic_auroc(cube, mask.astype(int) * 2 + (np.arange(40) % 2)[None, :], [0])
    broken = cube.copy()
    broken[0, 0, 3] = np.nan
    with pytest.raises(NonFiniteError):
        rx_auroc(broken, mask, PLANTED)


@pytest.mark.realdata
def test_logistic_auroc_all_bands_on_pavia() -> None:
    path = DATA / "pavia_rosis_abu_beach4" / "pavia_rosis_abu_beach4.npz"
    if not path.is_file():
        pytest.skip(f"real data not available: {path} is missing (../shared/data is outside the checkout)")
    with np.load(path) as data:
        cube, labels = data["cube"], data["gt"]
    assert logistic_auroc(cube, labels > 0) > 0.95


def test_subset_rx_equals_rx_auroc_on_every_subset_and_refuses_bad_input(planted) -> None:
    from bandselect.evaluation import SubsetRX

    cube, mask = planted
    train, test = spatial_block_split(40, 40, n_blocks=(4, 4), seed=1, mask=mask)
    pixels, labels = cube.reshape(-1, 16), mask.reshape(-1)
    background = train.ravel() & ~labels
    scorer = SubsetRX(pixels[background], pixels[test.ravel()], labels[test.ravel()])
    rng = np.random.default_rng(2)
    for bands in [
        PLANTED,
        [0, 1, 2],
        [15],
        list(range(16)),
        *(rng.choice(16, 3, replace=False) for _ in range(20)),
    ]:
        expected = rx_auroc(cube, mask, bands, background=background.reshape(40, 40), evaluate=test)
        assert scorer.auroc(bands) == pytest.approx(expected, abs=1e-12)
    assert scorer.auroc(PLANTED) > 0.97 > scorer.auroc([0, 1, 2])
    # A non-finite band is refused only in the subsets that use it (the error names it).
    spoiled = pixels.copy()
    spoiled[5, 9] = np.nan
    partly = SubsetRX(spoiled[background], spoiled[test.ravel()], labels[test.ravel()])
    assert partly.auroc(PLANTED) == pytest.approx(scorer.auroc(PLANTED), abs=1e-12)
    with pytest.raises(NonFiniteError, match=r"bands \[9\]"):
        partly.auroc([3, 9])
    with pytest.raises(InputError, match="distinct bands"):
        scorer.auroc([3, 3])
    with pytest.raises(InputError, match=r"values in \[0, 16\)"):
        scorer.auroc([16])
    with pytest.raises(ShapeError, match="15 bands"):
        SubsetRX(pixels[background, :15], pixels, labels)
    with pytest.raises(LabelError, match="0 positive"):
        SubsetRX(pixels[background], pixels[~labels], labels[~labels])
    with pytest.raises(InputError, match="at least 2 pixels"):
        SubsetRX(pixels[:1], pixels, labels)


def test_rank_auroc_equals_roc_auc_score_with_ties() -> None:
    from bandselect.evaluation.metrics import rank_auroc

    rng = np.random.default_rng(4)
    for n, levels in [(50, 3), (2000, 40), (5000, None)]:
        labels = rng.random(n) < 0.1
        scores = rng.normal(size=n) + labels
        if levels is not None:  # many exact ties
            scores = np.round(scores * levels / 4)
        assert rank_auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-14)
    assert rank_auroc(np.array([False, True]), np.array([0.0, 1.0])) == 1.0
    assert rank_auroc(np.array([False, True]), np.array([1.0, 1.0])) == 0.5
