"""Per-band relevance of the supervised selectors, binary or multi-class, from merged statistics.

Three scores per band, each rescaled to [0, 1] across bands and combined as ``Σ w_i s_i / Σ w_i``:

=========  ============================================  ==================================================
score      binary (two classes)                          multi-class (K ≥ 3 classes)
=========  ============================================  ==================================================
Fisher     ``(μ1 − μ0)² / (σ1² + σ0²)``                  one-way ANOVA F-statistic (``f_classif``)
AUC        symmetric ``max(AUC, 1 − AUC)``               mean over classes of the one-vs-rest symmetric AUC
MI         plug-in MI (nats) of the binned band, label   the same with the K-class label
=========  ============================================  ==================================================

A multi-class task with two classes is the binary task (:func:`~bandselect.stats.classes.class_view`),
so the binary scores, hence the binary selections, are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bandselect.errors import ConfigError, InputError
from bandselect.stats import scores
from bandselect.stats.classes import class_moments, class_view
from bandselect.stats.partial import BandStatistics

__all__ = ["Relevance", "relevance_scores"]


@dataclass(frozen=True, eq=False)
class Relevance:
    """Per-band relevance: the combined score and the three raw scores (see the module docstring)."""

    combined: np.ndarray
    fisher: np.ndarray
    auc: np.ndarray
    mi: np.ndarray
    n_classes: int


def _weights(weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.size != 3 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(
            "score_weights",
            expected="three non-negative weights (fisher, auc, mi), sum > 0",
            found=repr(tuple(weights)),
            fix="pass e.g. score_weights=(1, 1, 1)",
        )
    return w


def _raw_scores(
    stats: BandStatistics, n_classes: int, with_histograms: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    zeros = np.zeros(stats.n_bands)
    if n_classes == 2:
        fisher = stats.fisher
        if not with_histograms:
            return fisher, zeros, zeros
        return fisher, stats.auc, stats.mi
    moments = class_moments(stats)
    fisher = scores.f_statistic(moments.counts, moments.means, moments.variances)
    if not with_histograms:
        return fisher, zeros, zeros
    histograms = stats.histograms[stats.counts > 0]  # type: ignore[index]
    auc = scores.one_vs_rest_auc_from_histograms(histograms).mean(axis=0)
    return fisher, auc, scores.mutual_information_from_histograms(histograms)


def relevance_scores(
    stats: BandStatistics, weights: Sequence[float] = (1.0, 1.0, 1.0), *, multiclass: bool = False
) -> Relevance:
    """Fisher (or F), AUC and MI per band and their weighted combination of the [0, 1]-rescaled scores.

    Constant bands score 0 in the combination (they rank last).

    Parameters
    ----------
    stats
        Labelled statistics; histograms unless the AUC and MI weights are 0.
    weights
        Weights of (Fisher, AUC, MI).
    multiclass
        False: class 0 against labels > 0. True: every class with pixels.

    Raises
    ------
    ConfigError
        Bad weights.
    InputError
        No histograms while the AUC or MI weight is positive.
    LabelError
        A class missing (binary: no class 0 or no label > 0; multi-class: fewer than two classes).
    """
    w = _weights(weights)
    view = class_view(stats, multiclass=multiclass)
    n_classes = 2 if not multiclass else int(np.count_nonzero(view.counts > 0))
    if not view.has_histograms and (w[1] > 0 or w[2] > 0):
        raise InputError(
            "statistics",
            expected="histograms for the AUC and MI scores",
            found="statistics without histograms",
            fix="compute them with n_bins (two passes), or pass score_weights=(1, 0, 0)",
        )
    if n_classes == 2:
        view.binary_groups()  # the binary rule's label check, with its message
    fisher, auc, mi = _raw_scores(view, n_classes, view.has_histograms)
    constant = view.constant_bands
    combined = np.zeros(view.n_bands)
    for weight, score in zip(w, (fisher, auc, mi), strict=True):
        rescaled = np.zeros(view.n_bands)
        rescaled[~constant] = scores.rescale_unit(score[~constant])  # constant bands: 0, rank last
        combined += weight * rescaled
    combined /= w.sum()
    return Relevance(combined=combined, fisher=fisher, auc=auc, mi=mi, n_classes=n_classes)


def report_relevance(stats: BandStatistics, *, multiclass: bool = False) -> Relevance:
    """The relevance a non-mRMR selector reports beside its picks: all three scores when the statistics
    have histograms, Fisher alone otherwise."""
    weights = (1.0, 1.0, 1.0) if stats.has_histograms else (1.0, 0.0, 0.0)
    return relevance_scores(stats, weights, multiclass=multiclass)
