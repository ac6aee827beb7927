"""Supervised band selection on merged statistics: greedy mRMR and Gaussian class separability.

Both selectors work on a :class:`~bandselect.stats.BandStatistics` (class means, covariances,
histograms) and never on pixels, so they run in milliseconds whatever the campaign size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bandselect.errors import ConfigError, InputError, WavelengthError
from bandselect.stats import scores
from bandselect.stats.partial import BandStatistics

#: Ridge added to the standardised class covariances (units: each band's overall variance).
DEFAULT_RIDGE = 1e-6
#: Minimum weight of the pooled within-class covariance in each class covariance (see separability_select).
DEFAULT_SHRINKAGE = 0.25
#: Prior pseudo-pixels: small classes are shrunk harder, with weight ``ν / (n_k + ν)``.
DEFAULT_PRIOR_PIXELS = 30.0


@dataclass(frozen=True, eq=False)
class ScoredSubset:
    """What a subset search returns: the picked band indices and the per-band scores behind them.

    An algorithm's output on statistics, not a selection: the supervised selector nodes keep it in their
    buffers and report it as a :class:`~bandselect.selection.BandSelection` (with wavelengths, output
    order and their own type and config).

    Attributes
    ----------
    indices
        ``(k,)`` int64 selected band indices, in pick order (window order when windows are given).
    band_scores
        ``(C,)`` combined relevance ``Σ w_i s_i / Σ w_i`` of the [0, 1]-rescaled scores.
    fisher, auc, mi
        ``(C,)`` raw per-band scores (AUC symmetric; MI in nats; zeros when the statistics have no
        histograms and the score's weight is 0).
    objective
        The criterion's value for the selection (mRMR: the sum of the greedy step values; separability:
        the Bhattacharyya distance of the subset).
    criterion
        ``"mrmr"`` or ``"separability"``.
    """

    indices: np.ndarray
    band_scores: np.ndarray
    fisher: np.ndarray
    auc: np.ndarray
    mi: np.ndarray
    objective: float
    criterion: str

    def __post_init__(self) -> None:
        for name in ("indices", "band_scores", "fisher", "auc", "mi"):
            value = np.array(getattr(self, name), copy=True)
            if name == "indices":
                value = value.astype(np.int64)
            value.setflags(write=False)
            object.__setattr__(self, name, value)


def _check_stats(stats: Any) -> BandStatistics:
    if not isinstance(stats, BandStatistics):
        raise InputError(
            "stats",
            expected="a BandStatistics",
            found=type(stats).__name__,
            fix="build it with BandStatistics.from_arrays or compute_statistics",
        )
    return stats


def _candidate_sets(n_bands: int, k: Any, windows: Sequence[Any] | None) -> list[np.ndarray]:
    """One candidate index array per pick (all bands when there are no windows)."""
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


def _available(candidates: np.ndarray, picked: list[int], constant: np.ndarray, step: int) -> np.ndarray:
    """Unpicked candidates, non-constant ones first (constant bands are only a last resort)."""
    free = candidates[~np.isin(candidates, picked)]
    if free.size == 0:
        raise WavelengthError(
            f"window {step}",
            expected="a band not already picked by an earlier window",
            found=f"only bands {candidates.tolist()}, all picked",
            fix="widen the window or make the windows disjoint",
        )
    informative = free[~constant[free]]
    return informative if informative.size else free[:1]


def _relevance(stats: BandStatistics, weights: Sequence[float]) -> tuple[np.ndarray, ...]:
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.size != 3 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(
            "score_weights",
            expected="three non-negative weights (fisher, auc, mi), sum > 0",
            found=repr(tuple(weights)),
            fix="pass e.g. score_weights=(1, 1, 1)",
        )
    fisher = stats.fisher
    zeros = np.zeros(stats.n_bands)
    if stats.has_histograms:
        auc, mi = stats.auc, stats.mi
    elif w[1] > 0 or w[2] > 0:
        raise InputError(
            "statistics",
            expected="histograms for the AUC and MI scores",
            found="statistics without histograms",
            fix="compute them with n_bins (two passes), or pass score_weights=(1, 0, 0)",
        )
    else:
        auc, mi = zeros, zeros
    constant = stats.constant_bands
    combined = np.zeros(stats.n_bands)
    for weight, score in zip(w, (fisher, auc, mi), strict=True):
        rescaled = np.zeros(stats.n_bands)
        rescaled[~constant] = scores.rescale_unit(score[~constant])  # constant bands: 0, rank last
        combined += weight * rescaled
    combined /= w.sum()
    return combined, fisher, auc, mi


def mrmr_select(
    stats: BandStatistics,
    k: int,
    windows: Sequence[Any] | None = None,
    score_weights: Sequence[float] = (1.0, 1.0, 1.0),
    lambda_penalty: float = 0.5,
) -> ScoredSubset:
    """Greedy minimum-redundancy maximum-relevance selection (the selector spec's method).

    Each relevance (Fisher, symmetric AUC, MI) is min-max rescaled to [0, 1] across bands (a constant
    vector becomes zeros), ``combined = Σ w_i s_i / Σ w_i``; the first pick is the best ``combined``, each
    next pick the unpicked candidate maximising ``combined − λ · max_{s picked} |ρ(c, s)|`` with ρ the
    all-pixel Pearson correlation. With ``windows`` each pick comes from its window, in window order,
    never a band already picked. Ties go to the lower index. Constant bands score 0 and are picked only
    when a window holds nothing else.

    Parameters
    ----------
    stats
        Binary statistics (class 0 vs labels > 0) with histograms unless AUC and MI weights are 0.
    k
        Number of bands (``len(windows)`` when windows are given).
    windows
        Optional sequence of candidate band-index arrays, one per pick.
    score_weights
        Weights of (Fisher, AUC, MI).
    lambda_penalty
        Weight of the redundancy penalty.
    """
    stats = _check_stats(stats)
    candidate_sets = _candidate_sets(stats.n_bands, k, windows)
    if not np.isfinite(lambda_penalty) or lambda_penalty < 0:
        raise ConfigError(
            "lambda_penalty",
            expected="a finite value >= 0",
            found=lambda_penalty,
            fix="pass e.g. lambda_penalty=0.5",
        )
    combined, fisher, auc, mi = _relevance(stats, score_weights)
    redundancy = np.abs(stats.correlation)
    constant = stats.constant_bands
    picked: list[int] = []
    objective = 0.0
    for step, candidates in enumerate(candidate_sets):
        free = _available(candidates, picked, constant, step)
        value = combined[free].copy()
        if picked:
            value -= lambda_penalty * redundancy[np.ix_(free, picked)].max(axis=1)
        best = int(np.argmax(value))  # first maximum: free is ascending, so ties go to the lower index
        picked.append(int(free[best]))
        objective += float(value[best])
    return ScoredSubset(
        indices=np.asarray(picked, np.int64),
        band_scores=combined,
        fisher=fisher,
        auc=auc,
        mi=mi,
        objective=objective,
        criterion="mrmr",
    )


class _GaussianPair:
    """Two class Gaussians in standardised band units, with batched Bhattacharyya distances.

    Bands are divided by their overall standard deviation, so the criterion (affine-invariant apart from
    the regularisation) does not depend on units, and ``ridge`` is relative to each band's variance.
    Each class covariance is shrunk towards the pooled within-class covariance ``Σ_w`` (regularised
    discriminant analysis): ``Σ_k ← (1 − γ_k) Σ_k + γ_k Σ_w`` with ``γ_k = max(shrinkage, ν / (n_k + ν))``,
    ``ν = prior_pixels``; see :func:`separability_select` for why.
    """

    def __init__(self, stats: BandStatistics, ridge: float, prior_pixels: float, shrinkage: float) -> None:
        (n0, m0, c0), (n1, m1, c1) = stats.binary_groups()
        constant = stats.constant_bands
        scale = np.sqrt(np.where(constant, 1.0, np.diag(stats.covariance)))
        scale = np.where(scale > 0, scale, 1.0)
        outer = np.outer(scale, scale)
        c0, c1 = c0 / outer, c1 / outer
        within = (n0 * c0 + n1 * c1) / (n0 + n1)
        gamma0 = max(shrinkage, prior_pixels / (n0 + prior_pixels))
        gamma1 = max(shrinkage, prior_pixels / (n1 + prior_pixels))
        self.cov0 = (1.0 - gamma0) * c0 + gamma0 * within
        self.cov1 = (1.0 - gamma1) * c1 + gamma1 * within
        self.delta = (m1 - m0) / scale
        self.ridge = float(ridge)

    def distance(self, subsets: np.ndarray) -> np.ndarray:
        """Bhattacharyya distance of each row of ``subsets`` (``(M, k)`` band indices)."""
        subsets = np.atleast_2d(subsets)
        rows, cols = subsets[:, :, None], subsets[:, None, :]
        eye = self.ridge * np.eye(subsets.shape[1])
        s0 = self.cov0[rows, cols] + eye
        s1 = self.cov1[rows, cols] + eye
        pooled = 0.5 * (s0 + s1)
        d = self.delta[subsets]
        mahalanobis = np.einsum("mi,mi->m", d, np.linalg.solve(pooled, d[:, :, None])[:, :, 0])
        log_det = np.linalg.slogdet(pooled)[1] - 0.5 * (np.linalg.slogdet(s0)[1] + np.linalg.slogdet(s1)[1])
        return mahalanobis / 8.0 + log_det / 2.0


def separability_select(
    stats: BandStatistics,
    k: int,
    windows: Sequence[Any] | None = None,
    ridge: float = DEFAULT_RIDGE,
    prior_pixels: float = DEFAULT_PRIOR_PIXELS,
    shrinkage: float = DEFAULT_SHRINKAGE,
    max_rounds: int = 50,
) -> ScoredSubset:
    """Bands maximising the Bhattacharyya distance between the two class Gaussians.

    ``D = ⅛ δᵀ Σ⁻¹ δ + ½ ln(det Σ / √(det Σ0 det Σ1))`` with ``Σ = (Σ0 + Σ1)/2`` on the candidate subset.
    Search: greedy forward selection (each step adds the candidate giving the largest distance of the
    subset so far), then pairwise swaps — replace one selected band by any allowed unselected band —
    taking the best improving swap until none improves (at most ``max_rounds`` rounds). With ``windows``,
    pick ``i`` and its swaps stay in window ``i``. Unlike mRMR this scores bands jointly, so it keeps
    pairs that are useless alone but separate the classes together (e.g. a difference of two bands).

    Regularisation (the choices behind the quality bar on the shared real scenes, see
    ``benchmarks/bench_quality.py``):

    - Bands are standardised by their overall standard deviation and ``ridge`` is added to the
      diagonal in those units, so the criterion is unit-free and a near-singular subset (two almost
      identical bands) cannot produce an unbounded distance.
    - Each class covariance is shrunk towards the pooled within-class covariance,
      ``Σ_k ← (1 − γ_k) Σ_k + γ_k Σ_w`` with ``γ_k = max(shrinkage, ν / (n_k + ν))``. A one-vs-rest
      "rest" class is a mixture of materials: its covariance is inflated by the spread between them,
      and the log-determinant term of the unshrunk distance then favours bands where that mixture is
      wide rather than bands where the classes' means differ (samson rock/soil vs rest: 0.964 AUROC
      unshrunk, 0.992 with ``shrinkage=0.25``; any value in 0.1–0.5 gives ≥ 0.985 on every task). The
      ``ν / (n_k + ν)`` part shrinks tiny classes (3 target pixels) much harder, since their covariance
      is singular and would otherwise dominate through its log-determinant.

    Parameters
    ----------
    stats
        Binary statistics (class 0 vs labels > 0); histograms are used only for the reported AUC/MI.
    k
        Number of bands (``len(windows)`` when windows are given).
    windows
        Optional sequence of candidate band-index arrays, one per pick.
    ridge
        Added to the diagonal of the standardised class covariances (relative to each band's variance).
    prior_pixels
        Pseudo-pixels ``ν``: classes with few pixels are shrunk with weight ``ν / (n_k + ν)``.
    shrinkage
        Minimum shrinkage weight ``γ`` of every class covariance towards the pooled one, in [0, 1].
    max_rounds
        Cap on swap rounds.
    """
    stats = _check_stats(stats)
    candidate_sets = _candidate_sets(stats.n_bands, k, windows)
    if not np.isfinite(ridge) or ridge <= 0:
        raise ConfigError("ridge", expected="a finite value > 0", found=ridge, fix="pass e.g. ridge=1e-6")
    if not np.isfinite(prior_pixels) or prior_pixels < 0:
        raise ConfigError(
            "prior_pixels",
            expected="a finite value >= 0",
            found=prior_pixels,
            fix="pass e.g. prior_pixels=30",
        )
    if not np.isfinite(shrinkage) or not 0.0 <= shrinkage <= 1.0:
        raise ConfigError(
            "shrinkage", expected="a value in [0, 1]", found=shrinkage, fix="pass e.g. shrinkage=0.25"
        )
    model = _GaussianPair(stats, ridge, prior_pixels, shrinkage)
    constant = stats.constant_bands
    picked: list[int] = []
    for step, candidates in enumerate(candidate_sets):
        free = _available(candidates, picked, constant, step)
        subsets = np.column_stack([np.tile(picked, (free.size, 1)), free]).astype(np.int64)
        picked.append(int(free[int(np.argmax(model.distance(subsets)))]))
    best = float(model.distance(np.asarray([picked]))[0])
    for _ in range(max_rounds):
        trials: list[np.ndarray] = []
        for position, candidates in enumerate(candidate_sets):
            others = picked[:position] + picked[position + 1 :]
            free = _available(candidates, others, constant, position)
            free = free[free != picked[position]]
            if free.size:
                trial = np.tile(picked, (free.size, 1))
                trial[:, position] = free
                trials.append(trial)
        if not trials:
            break
        trial_sets = np.concatenate(trials).astype(np.int64)
        values = model.distance(trial_sets)
        top = int(np.argmax(values))
        if values[top] <= best * (1 + 1e-12) + 1e-15:
            break
        best = float(values[top])
        picked = [int(i) for i in trial_sets[top]]
    combined, fisher, auc, mi = _relevance_for_report(stats)
    return ScoredSubset(
        indices=np.asarray(picked, np.int64),
        band_scores=combined,
        fisher=fisher,
        auc=auc,
        mi=mi,
        objective=best,
        criterion="separability",
    )


def _relevance_for_report(stats: BandStatistics) -> tuple[np.ndarray, ...]:
    weights = (1.0, 1.0, 1.0) if stats.has_histograms else (1.0, 0.0, 0.0)
    return _relevance(stats, weights)
