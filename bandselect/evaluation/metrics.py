"""Downstream measures of a band selection: RX and logistic-regression AUROC, and their baselines.

A selection is judged by what a detector does with only the selected bands. ``cube`` is ``(H, W, C)``
or ``(N, C)``; ``mask`` holds binary labels for the same pixels (``> 0`` is positive). For a
multi-class scene pass one class against the rest, ``mask == label``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from bandselect.errors import ConfigError, InputError, LabelError, NonFiniteError, ShapeError
from bandselect.nodes.rx import mahalanobis_scores

__all__ = [
    "BaselineResult",
    "Measure",
    "all_bands_baseline",
    "logistic_auroc",
    "logistic_holdout_auroc",
    "random_band_baseline",
    "random_band_draws",
    "rx_auroc",
]

#: ``measure(cube, mask, indices) -> float``, e.g. :func:`logistic_auroc` or :func:`rx_auroc`.
Measure = Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]

DEFAULT_RIDGE = 1e-6
DEFAULT_MAX_ITER = 2000
#: BLAS threads while fitting the logistic models. They are small (pixels × k bands), so extra BLAS
#: threads only add synchronisation; on a busy machine they made the fit ~30x slower.
DEFAULT_BLAS_THREADS = 1


def _pixels(cube: np.ndarray) -> np.ndarray:
    array = np.asarray(cube)
    if array.ndim not in (2, 3):
        raise ShapeError(
            "cube", expected="(H, W, C) or (N, C)", found=f"shape {array.shape}", fix="pass one acquisition"
        )
    return array.reshape(-1, array.shape[-1])


def _pixel_values(values: np.ndarray, cube_shape: tuple[int, ...], what: str) -> np.ndarray:
    """Flatten a per-pixel array (``(H, W)``, ``(H, W, 1)``, ``(N,)``) after checking its shape."""
    array = np.asarray(values)
    leading = cube_shape[:-1]
    if array.shape == (*leading, 1):
        array = array[..., 0]
    if array.shape != leading:
        raise ShapeError(
            what,
            expected=f"shape {leading} (the cube's pixel dims)",
            found=f"shape {array.shape}",
            fix=f"pass one {what} value per pixel of the cube",
        )
    return array.reshape(-1)


def _optional_pixel_mask(
    values: np.ndarray | None, cube_shape: tuple[int, ...], what: str
) -> np.ndarray | None:
    if values is None:
        return None
    return _pixel_values(values, cube_shape, what).astype(bool)


def _labels(mask: np.ndarray, cube_shape: tuple[int, ...]) -> np.ndarray:
    labels = _pixel_values(mask, cube_shape, "mask")
    values = np.unique(labels)
    if values.size > 2 or (values.size == 2 and values.min() != 0):
        raise LabelError(
            "mask",
            expected="binary labels (0 negative, >0 positive)",
            found=f"labels {values.tolist()[:10]}",
            fix="pass one class against the rest: mask == label",
        )
    return labels > 0


def _check_both_classes(labels: np.ndarray, what: str, minimum: int = 1) -> None:
    positives = int(labels.sum())
    negatives = int(labels.size - positives)
    if positives < minimum or negatives < minimum:
        raise LabelError(
            what,
            expected=f"at least {minimum} positive and {minimum} negative pixel(s)",
            found=f"{positives} positive and {negatives} negative",
            fix="evaluate on a part of the scene that holds both classes (see spatial_block_split(mask=...))",
        )


def _indices(indices: Sequence[int] | np.ndarray | None, n_bands: int) -> np.ndarray:
    if indices is None:
        return np.arange(n_bands, dtype=np.int64)
    array = np.asarray(indices).reshape(-1)
    if array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        raise InputError(
            "band indices",
            expected="a non-empty sequence of integers",
            found=f"{array.tolist()!r}",
            fix="pass a selector's selected_indices",
        )
    if array.min() < 0 or array.max() >= n_bands:
        raise InputError(
            "band indices",
            expected=f"values in [0, {n_bands})",
            found=array.tolist(),
            fix="pass valid band indices",
        )
    if np.unique(array).size != array.size:
        raise InputError(
            "band indices", expected="distinct bands", found=array.tolist(), fix="drop the repeated indices"
        )
    return array.astype(np.int64)


def _features(cube: np.ndarray, indices: Sequence[int] | np.ndarray | None) -> np.ndarray:
    pixels = _pixels(cube)
    columns = _indices(indices, pixels.shape[1])
    features = np.asarray(pixels[:, columns], dtype=np.float64)
    if not np.all(np.isfinite(features)):
        raise NonFiniteError(
            "cube",
            expected="finite values in the evaluated bands",
            found=f"{int((~np.isfinite(features)).sum())} NaN/Inf values",
            fix="mask or repair the non-finite pixels before evaluation",
        )
    return features


def rx_auroc(
    cube: np.ndarray,
    mask: np.ndarray,
    indices: Sequence[int] | np.ndarray | None = None,
    background: np.ndarray | None = None,
    *,
    evaluate: np.ndarray | None = None,
    ridge: float = DEFAULT_RIDGE,
) -> float:
    """AUROC of the global RX detector on the selected bands.

    The RX score of a pixel is its squared Mahalanobis distance to the background:
    ``(x - μ)ᵀ (Σ + ε I)⁻¹ (x - μ)`` with ``μ, Σ`` estimated on the ``background`` pixels and the ridge
    ``ε = ridge · trace(Σ) / k`` (relative, so it is scale-free and keeps near-duplicate bands invertible).

    Parameters
    ----------
    cube
        ``(H, W, C)`` or ``(N, C)``.
    mask
        Binary labels of the same pixels.
    indices
        Bands to use; ``None`` means all bands.
    background
        Boolean pixel mask of the pixels that estimate ``μ, Σ`` (e.g. the train part of a spatial
        split, or ``train & ~mask`` to exclude known targets). ``None``: all pixels (classic global RX).
    evaluate
        Boolean pixel mask of the pixels the AUROC is computed on (e.g. the test part). ``None``: all.
    ridge
        Relative ridge, ``>= 0``.

    Returns
    -------
    float
        ``sklearn.metrics.roc_auc_score`` of the RX scores against the labels; 0.5 is chance.

    Raises
    ------
    ShapeError, LabelError, InputError, NonFiniteError
        Mismatched shapes, one class in the evaluated pixels, bad indices, non-finite values.
    """
    array = np.asarray(cube)
    features = _features(array, indices)
    labels = _labels(mask, array.shape)
    _checked_ridge(ridge)
    background_flat = _optional_pixel_mask(background, array.shape, "background")
    evaluate_flat = _optional_pixel_mask(evaluate, array.shape, "evaluate")
    reference = _checked_background(features if background_flat is None else features[background_flat])
    mean, covariance = _mean_and_covariance(reference)
    if evaluate_flat is not None:
        features, labels = features[evaluate_flat], labels[evaluate_flat]
    _check_both_classes(labels, "mask (evaluated pixels)")
    return _rx_roc_auc(features, labels, mean, covariance, ridge)


def _checked_background(reference: np.ndarray) -> np.ndarray:
    """``reference`` (background pixels), refused with fewer than the 2 a covariance needs."""
    if reference.shape[0] < 2:
        raise InputError(
            "background",
            expected="at least 2 pixels",
            found=reference.shape[0],
            fix="pass a larger background",
        )
    return reference


def _checked_ridge(ridge: float) -> float:
    if ridge < 0:
        raise ConfigError("ridge", expected=">= 0", found=ridge, fix="pass ridge=1e-6")
    return float(ridge)


def _mean_and_covariance(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample covariance (``n − 1``) of ``(N, k)`` float64 background pixels."""
    mean = reference.mean(axis=0)
    centred_reference = reference - mean
    return mean, centred_reference.T @ centred_reference / (reference.shape[0] - 1)


def _rx_scores(features: np.ndarray, mean: np.ndarray, covariance: np.ndarray, ridge: float) -> np.ndarray:
    """RX scores of ``features`` (float64) against the background ``mean, covariance``."""
    k = covariance.shape[0]
    scale = float(np.trace(covariance)) / k
    regularised = covariance + (ridge * scale if scale > 0 else ridge) * np.eye(k)
    # The RX node's float64 Mahalanobis solve; the ridge is already on the diagonal (eps=0).
    return mahalanobis_scores(
        torch.from_numpy(features), torch.from_numpy(mean), torch.from_numpy(regularised), eps=0.0
    ).numpy()


def _rx_roc_auc(
    features: np.ndarray, labels: np.ndarray, mean: np.ndarray, covariance: np.ndarray, ridge: float
) -> float:
    """``roc_auc_score`` of the RX scores (see :func:`rx_auroc`)."""
    return float(roc_auc_score(labels, _rx_scores(features, mean, covariance, ridge)))


def rank_auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUROC of ``scores`` for binary ``labels`` from the rank sum (Mann–Whitney U, ties counted ½).

    Equal to ``sklearn.metrics.roc_auc_score`` (the same number, rounded once: ranks and their sum are
    exact in float64 below 2**52 pixels) without its input checks, which cost more than the sort on a
    few thousand pixels; the caller guarantees both classes and finite scores.
    """
    from scipy.stats import rankdata

    positives = int(labels.sum())
    negatives = labels.size - positives
    rank_sum = float(rankdata(scores)[labels].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


class SubsetRX:
    """:func:`rx_auroc` of many band subsets of the same pixels, the background estimated once.

    The background's mean and covariance over every band are computed at construction; a subset's are
    then the matching entries (the covariance of a subset of columns is the sub-block of the covariance
    of all of them), so each subset costs the solve and the AUROC on the evaluated pixels only. This is
    what a search over band subsets needs (thousands of subsets of one split); the value equals
    :func:`rx_auroc` of the same pixels to rounding.

    Parameters
    ----------
    background
        ``(N_b, C)`` pixels that estimate ``μ, Σ`` (e.g. the training part's negatives).
    evaluated
        ``(N_e, C)`` pixels the AUROC is computed on.
    labels
        ``(N_e,)`` binary labels of ``evaluated`` (both classes present).
    ridge
        Relative ridge, as :func:`rx_auroc`.

    Raises
    ------
    ShapeError, LabelError, InputError, ConfigError
        Mismatched shapes, one class among the evaluated pixels, fewer than 2 background pixels, a
        negative ridge.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> pixels = rng.normal(size=(400, 5)); labels = np.arange(400) % 10 == 0; pixels[labels, 3] += 4
    >>> scorer = SubsetRX(pixels[~labels], pixels, labels)
    >>> round(scorer.auroc([0, 3]), 6) == round(rx_auroc(pixels, labels, [0, 3], ~labels), 6)
    True
    >>> scorer.auroc([0, 3]) > scorer.auroc([0, 1])
    True
    """

    def __init__(
        self,
        background: np.ndarray,
        evaluated: np.ndarray,
        labels: np.ndarray,
        *,
        ridge: float = DEFAULT_RIDGE,
    ) -> None:
        reference, pixels = _pixels(background), _pixels(evaluated)
        if reference.shape[1] != pixels.shape[1]:
            raise ShapeError(
                "background",
                expected=f"pixels of the evaluated pixels' {pixels.shape[1]} bands",
                found=f"{reference.shape[1]} bands",
                fix="pass the background and the evaluated pixels of one cube",
            )
        _checked_background(reference)
        self.ridge = _checked_ridge(ridge)
        self.labels = _labels(labels, (pixels.shape[0], 1))
        _check_both_classes(self.labels, "labels (evaluated pixels)")
        self.n_bands = int(pixels.shape[1])
        self._pixels = pixels
        # Per band: finite everywhere it is used (a subset is refused only when one of its bands is not).
        self._finite = np.isfinite(reference).all(axis=0) & np.isfinite(pixels).all(axis=0)
        self._mean, self._covariance = _mean_and_covariance(np.asarray(reference, dtype=np.float64))

    def auroc(self, indices: Sequence[int] | np.ndarray) -> float:
        """:func:`rx_auroc` on the bands ``indices``.

        Raises
        ------
        InputError, NonFiniteError
            Bad or repeated indices; a non-finite value in one of the bands.
        """
        columns = _indices(indices, self.n_bands)
        if not self._finite[columns].all():
            raise NonFiniteError(
                "cube",
                expected="finite values in the evaluated bands",
                found=f"NaN/Inf in bands {columns[~self._finite[columns]].tolist()}",
                fix="mask or repair the non-finite pixels before evaluation",
            )
        features = np.asarray(self._pixels[:, columns], dtype=np.float64)
        covariance = self._covariance[np.ix_(columns, columns)]
        return rank_auroc(self.labels, _rx_scores(features, self._mean[columns], covariance, self.ridge))


def _logistic_model(max_iter: int, C: float) -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, C=C))


def logistic_auroc(
    cube: np.ndarray,
    mask: np.ndarray,
    indices: Sequence[int] | np.ndarray | None = None,
    *,
    folds: int = 5,
    seed: int = 0,
    max_iter: int = DEFAULT_MAX_ITER,
    C: float = 1.0,
    blas_threads: int | None = DEFAULT_BLAS_THREADS,
) -> float:
    """Cross-validated AUROC of a standardised logistic regression on the selected bands.

    The quality-bar measure: ``make_pipeline(StandardScaler(), LogisticRegression(max_iter, C))``,
    stratified ``folds``-fold cross-validation over pixels (shuffled with ``seed``), mean of
    ``cross_val_score(..., scoring="roc_auc")``.

    Parameters
    ----------
    cube
        ``(H, W, C)`` or ``(N, C)``.
    mask
        Binary labels of the same pixels.
    indices
        Bands to use; ``None`` means all bands.
    folds
        Number of stratified folds (``>= 2``); each class needs at least ``folds`` pixels.
    seed
        Shuffling seed of the folds.
    max_iter, C
        Passed to :class:`sklearn.linear_model.LogisticRegression`.
    blas_threads
        BLAS threads during the fits (``None``: the library default); see ``DEFAULT_BLAS_THREADS``.

    Returns
    -------
    float
        Mean ROC AUC over the folds.

    Raises
    ------
    LabelError
        A class with fewer than ``folds`` pixels (e.g. 3 target pixels and 5 folds).
    ShapeError, InputError, NonFiniteError
        Mismatched shapes, bad indices, non-finite values.
    """
    array = np.asarray(cube)
    features = _features(array, indices)
    labels = _labels(mask, array.shape)
    if int(folds) < 2:
        raise ConfigError("folds", expected="an integer >= 2", found=folds, fix="pass folds=5")
    _check_both_classes(labels, f"mask ({folds}-fold cross-validation)", minimum=int(folds))
    splitter = StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=seed)
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        scores = cross_val_score(
            _logistic_model(max_iter, C), features, labels, cv=splitter, scoring="roc_auc"
        )
    return float(np.mean(scores))


def logistic_holdout_auroc(
    cube: np.ndarray,
    mask: np.ndarray,
    indices: Sequence[int] | np.ndarray | None,
    train: np.ndarray,
    test: np.ndarray,
    *,
    max_iter: int = DEFAULT_MAX_ITER,
    C: float = 1.0,
    blas_threads: int | None = DEFAULT_BLAS_THREADS,
) -> float:
    """AUROC on ``test`` pixels of the standardised logistic regression fitted on ``train`` pixels.

    The held-out counterpart of :func:`logistic_auroc`, for spatial splits
    (:func:`bandselect.evaluation.spatial_block_split`).

    Parameters
    ----------
    cube, mask, indices, max_iter, C, blas_threads
        As in :func:`logistic_auroc`.
    train, test
        Boolean pixel masks (same pixel dims as the cube).

    Returns
    -------
    float
        ROC AUC on the test pixels.
    """
    array = np.asarray(cube)
    features = _features(array, indices)
    labels = _labels(mask, array.shape)
    train_flat = _pixel_values(train, array.shape, "train").astype(bool)
    test_flat = _pixel_values(test, array.shape, "test").astype(bool)
    _check_both_classes(labels[train_flat], "mask (train pixels)")
    _check_both_classes(labels[test_flat], "mask (test pixels)")
    if np.any(train_flat & test_flat):
        raise InputError(
            "train/test masks",
            expected="disjoint pixel sets",
            found=f"{int(np.count_nonzero(train_flat & test_flat))} pixels in both",
            fix="build them with spatial_block_split or half_split",
        )
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        model = _logistic_model(max_iter, C).fit(features[train_flat], labels[train_flat])
        decision = model.decision_function(features[test_flat])
    return float(roc_auc_score(labels[test_flat], decision))


@dataclass(frozen=True)
class BaselineResult:
    """Scores of random band draws: ``mean``, ``std`` (population), each draw's ``scores`` and ``draws``."""

    mean: float
    std: float
    scores: np.ndarray
    draws: np.ndarray


def random_band_draws(n_bands: int, k: int, n_draws: int, seed: int) -> np.ndarray:
    """``(n_draws, k)`` sorted draws of ``k`` distinct bands of ``n_bands`` (the random baseline's draws).

    Raises
    ------
    ConfigError
        ``k`` outside ``[1, n_bands]`` or ``n_draws < 1``.

    Examples
    --------
    >>> random_band_draws(10, 3, 2, seed=0).shape
    (2, 3)
    """
    if not 1 <= int(k) <= n_bands:
        raise ConfigError(
            "k",
            expected=f"an integer in [1, {n_bands}] (the cube's band count)",
            found=k,
            fix="choose fewer bands",
        )
    if int(n_draws) < 1:
        raise ConfigError("n_draws", expected="an integer >= 1", found=n_draws, fix="pass n_draws=20")
    rng = np.random.default_rng(seed)
    return np.stack([np.sort(rng.choice(n_bands, size=int(k), replace=False)) for _ in range(int(n_draws))])


def random_band_baseline(
    cube: np.ndarray,
    mask: np.ndarray,
    k: int,
    n_draws: int = 20,
    seed: int = 0,
    measure: Measure = logistic_auroc,
) -> BaselineResult:
    """Score of ``n_draws`` random draws of ``k`` distinct bands: what a selector must beat.

    Parameters
    ----------
    cube, mask
        As in :func:`logistic_auroc`.
    k
        Bands per draw (the selectors' ``k``).
    n_draws
        Number of draws.
    seed
        Seed of the draws (``numpy.random.default_rng``).
    measure
        ``measure(cube, mask, indices) -> float``; bind extra options with :func:`functools.partial`.

    Returns
    -------
    BaselineResult
        Mean and standard deviation over the draws, the scores and the ``(n_draws, k)`` sorted draws.

    Raises
    ------
    ConfigError
        ``k`` outside ``[1, C]`` or ``n_draws < 1``.
    """
    n_bands = _pixels(cube).shape[1]
    draws = random_band_draws(n_bands, k, n_draws, seed)
    scores = np.array([measure(cube, mask, draw) for draw in draws], dtype=np.float64)
    return BaselineResult(mean=float(scores.mean()), std=float(scores.std()), scores=scores, draws=draws)


def all_bands_baseline(cube: np.ndarray, mask: np.ndarray, measure: Measure = logistic_auroc) -> float:
    """The measure on every band: the ceiling a ``k``-band selection is compared with."""
    return float(measure(cube, mask, None))
