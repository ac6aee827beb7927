"""Supervised band selection on merged statistics: greedy mRMR (and, re-exported, Gaussian separability).

Both selectors work on a :class:`~bandselect.stats.BandStatistics` (class means, covariances,
histograms) and never on pixels, so they run in milliseconds whatever the campaign size. Binary tasks
compare class 0 with the labels > 0; ``multiclass=True`` compares every class with pixels (see
:mod:`bandselect.stats.relevance` for the multi-class scores and :mod:`bandselect.stats.separability`
for the multi-class criterion).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bandselect.errors import ConfigError
from bandselect.stats.classes import class_view
from bandselect.stats.partial import BandStatistics
from bandselect.stats.relevance import relevance_scores
from bandselect.stats.separability import (
    DEFAULT_PRIOR_PIXELS,
    DEFAULT_RIDGE,
    DEFAULT_SHRINKAGE,
    separability_select,
)
from bandselect.stats.subsets import ScoredSubset, available, candidate_sets, check_stats

__all__ = [
    "DEFAULT_PRIOR_PIXELS",
    "DEFAULT_RIDGE",
    "DEFAULT_SHRINKAGE",
    "ScoredSubset",
    "mrmr_select",
    "separability_select",
]


def mrmr_select(
    stats: BandStatistics,
    k: int,
    windows: Sequence[Any] | None = None,
    score_weights: Sequence[float] = (1.0, 1.0, 1.0),
    lambda_penalty: float = 0.5,
    *,
    multiclass: bool = False,
) -> ScoredSubset:
    """Greedy minimum-redundancy maximum-relevance selection (the selector spec's method).

    Each relevance (Fisher, symmetric AUC, MI; multi-class: F-statistic, mean one-vs-rest AUC,
    multi-class MI) is min-max rescaled to [0, 1] across bands (a constant vector becomes zeros),
    ``combined = Σ w_i s_i / Σ w_i``; the first pick is the best ``combined``, each next pick the
    unpicked candidate maximising ``combined − λ · max_{s picked} |ρ(c, s)|`` with ρ the all-pixel
    Pearson correlation. With ``windows`` each pick comes from its window, in window order, never a band
    already picked. Ties go to the lower index. Constant bands score 0 and are picked only when a window
    holds nothing else.

    Parameters
    ----------
    stats
        Labelled statistics with histograms unless AUC and MI weights are 0.
    k
        Number of bands (``len(windows)`` when windows are given).
    windows
        Optional sequence of candidate band-index arrays, one per pick.
    score_weights
        Weights of (Fisher, AUC, MI).
    lambda_penalty
        Weight of the redundancy penalty.
    multiclass
        False: class 0 against labels > 0. True: every class with pixels (two classes: the binary scores).
    """
    stats = check_stats(stats)
    candidates = candidate_sets(stats.n_bands, k, windows)
    if not np.isfinite(lambda_penalty) or lambda_penalty < 0:
        raise ConfigError(
            "lambda_penalty",
            expected="a finite value >= 0",
            found=lambda_penalty,
            fix="pass e.g. lambda_penalty=0.5",
        )
    relevance = relevance_scores(stats, score_weights, multiclass=multiclass)
    view = class_view(stats, multiclass=multiclass)
    combined = relevance.combined
    redundancy = np.abs(view.correlation)
    constant = view.constant_bands
    picked: list[int] = []
    objective = 0.0
    for step, allowed in enumerate(candidates):
        free = available(allowed, picked, constant, step)
        value = combined[free].copy()
        if picked:
            value -= lambda_penalty * redundancy[np.ix_(free, picked)].max(axis=1)
        best = int(np.argmax(value))  # first maximum: free is ascending, so ties go to the lower index
        picked.append(int(free[best]))
        objective += float(value[best])
    return ScoredSubset(
        indices=np.asarray(picked, np.int64),
        band_scores=combined,
        fisher=relevance.fisher,
        auc=relevance.auc,
        mi=relevance.mi,
        objective=objective,
        criterion="mrmr",
        n_classes=relevance.n_classes,
    )
