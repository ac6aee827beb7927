"""What every subset search shares: its result (:class:`ScoredSubset`), candidate sets, the search itself.

The searches (:mod:`~bandselect.stats.selection`, :mod:`~bandselect.stats.separability`,
:mod:`~bandselect.stats.unsupervised`) all pick ``k`` bands, optionally one per wavelength window in
window order, never a band twice, constant bands only as a last resort, ties to the lower index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bandselect.errors import ConfigError, InputError, WavelengthError
from bandselect.stats.partial import BandStatistics

__all__ = [
    "ScoredSubset",
    "available",
    "beam_swap_search",
    "candidate_sets",
    "check_stats",
    "greedy_swap_search",
]

#: A subset objective: ``(M, k)`` band-index rows → ``(M,)`` values (larger is better).
SubsetObjective = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class ScoredSubset:
    """What a subset search returns: the picked band indices and the per-band scores behind them.

    An algorithm's output on statistics, not a selection: the selector nodes keep it in their buffers
    and report it as a :class:`~bandselect.selection.BandSelection` (with wavelengths, output order and
    their own type and config).

    Attributes
    ----------
    indices
        ``(k,)`` int64 selected band indices, in pick order (window order when windows are given).
    band_scores
        ``(C,)`` combined relevance ``Σ w_i s_i / Σ w_i`` of the [0, 1]-rescaled scores (supervised), or
        the unsupervised selector's per-band score.
    fisher, auc, mi
        ``(C,)`` raw per-band scores. Binary: Fisher ``(μ1 − μ0)² / (σ1² + σ0²)``, symmetric AUC, MI in
        nats. Multi-class: the F-statistic, the mean over classes of the one-vs-rest symmetric AUC, the
        multi-class MI. Zeros where not computed (no histograms with a zero weight; unsupervised).
    objective
        The criterion's value for the selection (mRMR: the sum of the greedy step values; separability:
        the class distance of the subset; unsupervised: see the selector).
    criterion
        ``"mrmr"``, ``"separability"``, ``"orthogonal_projection"`` or ``"correlation_clusters"``.
    n_classes
        Classes compared (2 for a binary task, 0 for unsupervised selection).
    """

    indices: np.ndarray
    band_scores: np.ndarray
    fisher: np.ndarray
    auc: np.ndarray
    mi: np.ndarray
    objective: float
    criterion: str
    n_classes: int = 2

    def __post_init__(self) -> None:
        for name in ("indices", "band_scores", "fisher", "auc", "mi"):
            value = np.array(getattr(self, name), copy=True)
            if name == "indices":
                value = value.astype(np.int64)
            value.setflags(write=False)
            object.__setattr__(self, name, value)


def check_stats(stats: Any) -> BandStatistics:
    """``stats`` when it is a :class:`BandStatistics`, else an :class:`InputError`."""
    if not isinstance(stats, BandStatistics):
        raise InputError(
            "stats",
            expected="a BandStatistics",
            found=type(stats).__name__,
            fix="build it with BandStatistics.from_arrays or compute_statistics",
        )
    return stats


def candidate_sets(n_bands: int, k: Any, windows: Sequence[Any] | None) -> list[np.ndarray]:
    """One candidate index array per pick (all bands when there are no windows).

    Raises
    ------
    ConfigError
        ``k`` not an integer in ``[1, n_bands]``, or not one window per pick.
    WavelengthError
        An empty window, or indices outside the grid.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or int(k) < 1:
        raise ConfigError("k", expected="an integer >= 1", found=repr(k), fix="pass e.g. k=3")
    k = int(k)
    if k > n_bands:
        raise ConfigError(
            "k", expected=f"at most the number of bands ({n_bands})", found=k, fix=f"pass k <= {n_bands}"
        )
    if windows is None:
        return [np.arange(n_bands, dtype=np.int64)] * k
    windows = list(windows)
    if len(windows) != k:
        raise ConfigError(
            "windows",
            expected=f"one window per selected band (k={k})",
            found=f"{len(windows)} windows",
            fix="pass k=len(windows)",
        )
    out = []
    for i, window in enumerate(windows):
        idx = np.asarray(window).reshape(-1)
        if idx.size == 0:
            raise WavelengthError(
                f"window {i}",
                expected="at least one band index",
                found="no bands",
                fix="widen or move the window (spectral.window_indices names the range)",
            )
        if not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= n_bands:
            raise WavelengthError(
                f"window {i}",
                expected=f"integer band indices in [0, {n_bands})",
                found=f"{idx.tolist()[:8]}",
                fix="map windows with spectral.window_indices",
            )
        out.append(np.unique(idx.astype(np.int64)))
    return out


def available(candidates: np.ndarray, picked: Sequence[int], constant: np.ndarray, step: int) -> np.ndarray:
    """Unpicked candidates, non-constant ones first (constant bands are only a last resort).

    Raises
    ------
    WavelengthError
        Every candidate of the window is picked already.
    """
    free = candidates[~np.isin(candidates, list(picked))]
    if free.size == 0:
        raise WavelengthError(
            f"window {step}",
            expected="a band not already picked by an earlier window",
            found=f"only bands {candidates.tolist()}, all picked",
            fix="widen the window or make the windows disjoint",
        )
    informative = free[~constant[free]]
    return informative if informative.size else free[:1]


def _swap_refine(
    objective: SubsetObjective,
    candidates: Sequence[np.ndarray],
    constant: np.ndarray,
    start: list[int],
    max_rounds: int,
) -> tuple[list[int], float]:
    """Best-improving pairwise swaps from ``start`` until none improves by more than a relative 1e-12."""
    picked = list(start)
    best = float(objective(np.asarray([picked], dtype=np.int64))[0])
    for _ in range(int(max_rounds)):
        trials: list[np.ndarray] = []
        for position, allowed in enumerate(candidates):
            others = picked[:position] + picked[position + 1 :]
            free = available(allowed, others, constant, position)
            free = free[free != picked[position]]
            if free.size:
                trial = np.tile(picked, (free.size, 1))
                trial[:, position] = free
                trials.append(trial)
        if not trials:
            break
        trial_sets = np.concatenate(trials).astype(np.int64)
        values = objective(trial_sets)
        top = int(np.argmax(values))
        if values[top] <= best * (1 + 1e-12) + 1e-15:
            break
        best = float(values[top])
        picked = [int(i) for i in trial_sets[top]]
    return picked, best


def greedy_swap_search(
    objective: SubsetObjective,
    candidates: Sequence[np.ndarray],
    constant: np.ndarray,
    max_rounds: int,
) -> tuple[list[int], float]:
    """Greedy forward selection, then best-improving pairwise swaps, of a subset objective.

    Greedy: pick ``i`` is the allowed candidate (``candidates[i]``) giving the subset of picks so far
    the largest objective. Swaps: replace one pick by any allowed unpicked band of its window, taking
    the best improving swap, until none improves by more than a relative 1e-12 (at most ``max_rounds``
    rounds). Ties go to the lower index (the first maximum of ascending candidates). This is
    :func:`beam_swap_search` with a beam of one.

    Returns
    -------
    picks, value
        The picks in window order (importance order without windows) and the objective of the subset.
    """
    return beam_swap_search(objective, candidates, constant, max_rounds, beam_width=1, n_refined=1)


def beam_swap_search(
    objective: SubsetObjective,
    candidates: Sequence[np.ndarray],
    constant: np.ndarray,
    max_rounds: int,
    *,
    beam_width: int,
    n_refined: int,
) -> tuple[list[int], float]:
    """Beam forward selection, then pairwise swaps from the best ``n_refined`` subsets of the beam.

    Forward: the ``beam_width`` best partial subsets are kept at every step; each is extended by every
    allowed candidate of the next window and the best ``beam_width`` extensions (the same set of bands
    reached twice counts once) form the next beam. A greedy search keeps one subset and can lock in a
    first band that no good subset contains; the beam keeps the alternatives until they are judged
    together with their partners. Refinement: best-improving pairwise swaps (see
    :func:`greedy_swap_search`) from each of the ``n_refined`` best final subsets; the best result wins.
    Ties go to the lower index and to the better-ranked beam entry, so the search is deterministic.
    Without windows the picks are reported in importance order (greedy order within the chosen set).

    Returns
    -------
    picks, value
        The picks in window order (importance order without windows) and the objective of the subset.
    """
    # Without windows a set of bands is one subset whatever its pick order; with windows it is not.
    windowed = not all(np.array_equal(allowed, candidates[0]) for allowed in candidates)
    beams = np.zeros((1, 0), dtype=np.int64)
    for step, allowed in enumerate(candidates):
        blocks = [
            np.column_stack([np.tile(partial, (free.size, 1)), free])
            for partial in beams
            for free in (available(allowed, partial.tolist(), constant, step),)
        ]
        extensions = np.concatenate(blocks).astype(np.int64)
        keys = extensions if windowed else np.sort(extensions, axis=1)
        _, first = np.unique(keys, axis=0, return_index=True)
        extensions = extensions[np.sort(first)]  # each band set once, at its first (best-ranked) place
        values = objective(extensions)
        beams = extensions[np.argsort(-values, kind="stable")[: int(beam_width)]]
    starts = [[int(i) for i in beam] for beam in beams[: int(n_refined)]]
    results = [_swap_refine(objective, candidates, constant, start, max_rounds) for start in starts]
    picked, best = results[int(np.argmax([value for _, value in results]))]
    return (picked if windowed else _importance_order(objective, picked)), best


def _importance_order(objective: SubsetObjective, bands: list[int]) -> list[int]:
    """``bands`` in greedy order within the set: first the band best alone, then the best partner, ...

    A set reached from several starts (or computed from statistics that differ by rounding) then gets
    one pick order, the most important band first, ties to the lower index.
    """
    remaining = sorted(bands)
    ordered: list[int] = []
    while remaining:
        trials = np.array([[*ordered, band] for band in remaining], dtype=np.int64)
        ordered.append(remaining.pop(int(np.argmax(objective(trials)))))
    return ordered
