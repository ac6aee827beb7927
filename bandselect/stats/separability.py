"""Gaussian class separability of band subsets, binary and multi-class: :func:`separability_select`.

Each class is modelled as a Gaussian from its merged mean and covariance (regularised, see
:func:`separability_select`); a subset of bands is scored by the Bhattacharyya distance between the
classes on those bands,

``B_ij = ⅛ δᵀ Σ⁻¹ δ + ½ ln(det Σ / √(det Σ_i det Σ_j))``, ``δ = μ_j − μ_i``, ``Σ = (Σ_i + Σ_j) / 2``.

Two classes: the subset maximising ``B``. K ≥ 3 classes: ``B`` of every class pair, aggregated
(:data:`AGGREGATES`), by default the mean Jeffries–Matusita distance ``JM_ij = 2 (1 − e^(−B_ij))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from bandselect.errors import ConfigError
from bandselect.stats.classes import class_moments, class_view
from bandselect.stats.partial import BandStatistics
from bandselect.stats.relevance import report_relevance
from bandselect.stats.subsets import ScoredSubset, beam_swap_search, candidate_sets, check_stats

__all__ = [
    "AGGREGATES",
    "DEFAULT_AGGREGATE",
    "DEFAULT_BEAM_WIDTH",
    "DEFAULT_N_REFINED",
    "DEFAULT_PRIOR_PIXELS",
    "DEFAULT_RIDGE",
    "DEFAULT_SHRINKAGE",
    "GaussianClasses",
    "separability_select",
]

#: Ridge added to the standardised class covariances (units: each band's overall variance): a noise floor
#: of 0.1 % of each band's variance (see separability_select for the measurements behind it).
DEFAULT_RIDGE = 1e-3
#: Minimum weight of the pooled within-class covariance in each class covariance (see separability_select).
DEFAULT_SHRINKAGE = 0.25
#: Prior pseudo-pixels: small classes are shrunk harder, with weight ``ν / (n_k + ν)``.
DEFAULT_PRIOR_PIXELS = 30.0

Aggregate = Literal["mean_jm", "min_bhattacharyya", "mean_bhattacharyya"]
#: How the class-pair distances of a multi-class task make one criterion.
AGGREGATES: tuple[str, ...] = ("mean_jm", "min_bhattacharyya", "mean_bhattacharyya")
#: The multi-class default, chosen by measurement (docs/selection.md): the mean JM distance.
DEFAULT_AGGREGATE: Aggregate = "mean_jm"

#: Beam of the forward search and the beam entries refined by swaps (see separability_select).
DEFAULT_BEAM_WIDTH = 64
DEFAULT_N_REFINED = 4

#: Subsets evaluated per batch of the vectorised distance (bounds the ``(pairs, M, k, k)`` temporaries).
_MAX_BATCH_VALUES = 4_000_000


class GaussianClasses:
    """Class Gaussians in standardised band units, with batched pairwise Bhattacharyya distances.

    Bands are divided by their overall standard deviation, so the criterion (affine-invariant apart from
    the regularisation) does not depend on units, and ``ridge`` is relative to each band's variance.
    Each class covariance is shrunk towards the pooled within-class covariance ``Σ_w`` (regularised
    discriminant analysis): ``Σ_k ← (1 − γ_k) Σ_k + γ_k Σ_w`` with ``γ_k = max(shrinkage, ν / (n_k + ν))``,
    ``ν = prior_pixels``; see :func:`separability_select` for why.

    Parameters
    ----------
    counts
        ``(K,)`` pixels per class.
    means
        ``(K, C)`` class means.
    covariances
        ``(K, C, C)`` class population covariances.
    overall_variance
        ``(C,)`` variance of each band over all pixels (the units); 0 or constant bands are left unscaled.
    ridge, prior_pixels, shrinkage
        The regularisation.
    """

    def __init__(
        self,
        counts: np.ndarray,
        means: np.ndarray,
        covariances: np.ndarray,
        overall_variance: np.ndarray,
        *,
        ridge: float,
        prior_pixels: float,
        shrinkage: float,
    ) -> None:
        n = np.asarray(counts, dtype=np.float64)
        scale = np.sqrt(np.clip(np.asarray(overall_variance, dtype=np.float64), 0.0, None))
        scale = np.where(scale > 0, scale, 1.0)
        outer = np.outer(scale, scale)
        standardised = np.asarray(covariances, dtype=np.float64) / outer
        within = (n[:, None, None] * standardised).sum(axis=0) / n.sum()
        gamma = np.maximum(shrinkage, prior_pixels / (n + prior_pixels))
        self.covariances = (1.0 - gamma)[:, None, None] * standardised + gamma[:, None, None] * within
        self.means = np.asarray(means, dtype=np.float64) / scale
        self.ridge = float(ridge)
        first, second = np.triu_indices(n.size, k=1)
        self.pairs = np.column_stack([first, second])

    @classmethod
    def binary(
        cls, stats: BandStatistics, *, ridge: float, prior_pixels: float, shrinkage: float
    ) -> GaussianClasses:
        """Class 0 against the union of labels > 0 (:meth:`BandStatistics.binary_groups`)."""
        (n0, m0, c0), (n1, m1, c1) = stats.binary_groups()
        constant = stats.constant_bands
        variance = np.where(constant, 1.0, np.diag(stats.covariance))
        return cls(
            np.array([n0, n1], np.float64),
            np.stack([m0, m1]),
            np.stack([c0, c1]),
            variance,
            ridge=ridge,
            prior_pixels=prior_pixels,
            shrinkage=shrinkage,
        )

    @classmethod
    def of_classes(
        cls, stats: BandStatistics, *, ridge: float, prior_pixels: float, shrinkage: float
    ) -> GaussianClasses:
        """Every class with pixels."""
        moments = class_moments(stats)
        variance = np.where(stats.constant_bands, 1.0, np.diag(stats.covariance))
        return cls(
            moments.counts,
            moments.means,
            moments.covariances,
            variance,
            ridge=ridge,
            prior_pixels=prior_pixels,
            shrinkage=shrinkage,
        )

    @property
    def n_classes(self) -> int:
        """Number of classes ``K``."""
        return int(self.means.shape[0])

    def pair_distances(self, subsets: np.ndarray) -> np.ndarray:
        """``(P, M)`` Bhattacharyya distance of every class pair on each row of ``subsets`` (``(M, k)``)."""
        subsets = np.atleast_2d(np.asarray(subsets, dtype=np.int64))
        n_subsets, k = subsets.shape
        per_subset = max(1, len(self.pairs) + self.n_classes) * k * k
        batch = max(1, _MAX_BATCH_VALUES // per_subset)
        if n_subsets > batch:
            return np.concatenate(
                [self.pair_distances(subsets[i : i + batch]) for i in range(0, n_subsets, batch)], axis=1
            )
        rows, cols = subsets[:, :, None], subsets[:, None, :]
        eye = self.ridge * np.eye(k)
        blocks = self.covariances[:, rows, cols] + eye  # (K, M, k, k)
        class_log_det = np.linalg.slogdet(blocks)[1]  # (K, M)
        first, second = self.pairs[:, 0], self.pairs[:, 1]
        pooled = 0.5 * (blocks[first] + blocks[second])  # (P, M, k, k)
        delta = (self.means[second] - self.means[first])[:, subsets]  # (P, M, k)
        solved = np.linalg.solve(pooled, delta[..., None])[..., 0]
        mahalanobis = np.einsum("pmi,pmi->pm", delta, solved)
        log_det = np.linalg.slogdet(pooled)[1] - 0.5 * (class_log_det[first] + class_log_det[second])
        return mahalanobis / 8.0 + log_det / 2.0

    def criterion(self, subsets: np.ndarray, aggregate: str) -> np.ndarray:
        """``(M,)`` separability of each subset: ``B`` for two classes, else the pair ``aggregate``."""
        distances = self.pair_distances(subsets)
        if distances.shape[0] == 1:
            return distances[0]
        if aggregate == "mean_jm":
            return (2.0 * -np.expm1(-distances)).mean(axis=0)
        if aggregate == "min_bhattacharyya":
            return distances.min(axis=0)
        return distances.mean(axis=0)


def _check_options(
    ridge: float, prior_pixels: float, shrinkage: float, aggregate: Any, beam_width: Any, n_refined: Any
) -> None:
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
    for name, value in (("beam_width", beam_width), ("n_refined", n_refined)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < 1:
            raise ConfigError(name, expected="an integer >= 1", found=repr(value), fix=f"pass e.g. {name}=16")
    if aggregate not in AGGREGATES:
        raise ConfigError(
            "aggregate",
            expected=f"one of {list(AGGREGATES)}",
            found=repr(aggregate),
            fix=f"pass aggregate={DEFAULT_AGGREGATE!r}",
        )


def separability_select(
    stats: BandStatistics,
    k: int,
    windows: Sequence[Any] | None = None,
    ridge: float = DEFAULT_RIDGE,
    prior_pixels: float = DEFAULT_PRIOR_PIXELS,
    shrinkage: float = DEFAULT_SHRINKAGE,
    max_rounds: int = 50,
    *,
    multiclass: bool = False,
    aggregate: Aggregate = DEFAULT_AGGREGATE,
    beam_width: int = DEFAULT_BEAM_WIDTH,
    n_refined: int = DEFAULT_N_REFINED,
) -> ScoredSubset:
    """Bands maximising the Gaussian separability of the classes (Bhattacharyya, JM for K classes).

    Binary (``multiclass=False``, or two classes): ``D = ⅛ δᵀ Σ⁻¹ δ + ½ ln(det Σ / √(det Σ0 det Σ1))``
    with ``Σ = (Σ0 + Σ1)/2`` on the candidate subset. Multi-class: the distance of every class pair,
    aggregated by ``aggregate``. Search: a beam search (:func:`~bandselect.stats.subsets.beam_swap_search`):
    forward selection keeping the ``beam_width`` best partial subsets at every step, then pairwise swaps
    — replace one selected band by any allowed unselected band, best improving swap first — from the
    ``n_refined`` best final subsets (at most ``max_rounds`` rounds each). With ``windows``, pick ``i`` and
    its swaps stay in window ``i``. Unlike mRMR this scores bands jointly, so it keeps pairs that are
    useless alone but separate the classes together (e.g. a difference of two bands). Greedy selection
    (``beam_width=1, n_refined=1``, issue 7's search) locks in the best single band: on jasper_ridge road
    against the rest it stops at a local optimum (B = 2.04, logistic-regression AUROC 0.986) that no single
    swap leaves, while the beam reaches the exhaustive optimum on every shared task (B = 2.17 there, AUROC
    0.996); ``docs/selection.md`` has the measurements.

    Regularisation (the choices behind the quality bar on the shared real scenes, see
    ``benchmarks/bench_quality.py``):

    - Bands are standardised by their overall standard deviation and ``ridge`` is added to the
      diagonal in those units, so the criterion is unit-free and a near-singular subset (two almost
      identical bands) cannot produce an unbounded distance. The default 1e-3 (a noise floor of 0.1 % of
      each band's variance): with the wider search, 1e-6 lets the log-determinant term reward
      near-collinear band pairs (samson rock/soil 0.990 instead of 0.993); 3e-3 and more lose the
      jasper road optimum again.
    - Each class covariance is shrunk towards the pooled within-class covariance,
      ``Σ_k ← (1 − γ_k) Σ_k + γ_k Σ_w`` with ``γ_k = max(shrinkage, ν / (n_k + ν))``. A one-vs-rest
      "rest" class is a mixture of materials: its covariance is inflated by the spread between them,
      and the log-determinant term of the unshrunk distance then favours bands where that mixture is
      wide rather than bands where the classes' means differ (samson rock/soil vs rest: 0.964 AUROC
      unshrunk, 0.992 with ``shrinkage=0.25``; any value in 0.1–0.5 gives ≥ 0.985 on every task). The
      ``ν / (n_k + ν)`` part shrinks tiny classes (3 target pixels) much harder, since their covariance
      is singular and would otherwise dominate through its log-determinant.

    Multi-class aggregates (:data:`AGGREGATES`): ``"mean_jm"`` (default) averages the Jeffries–Matusita
    distance ``2 (1 − e^(−B))`` over the class pairs: it saturates at 2 for pairs that are separated
    already, so the search spends its bands on the pairs that are still confused, yet every pair counts
    (the minimum over pairs, ``"min_bhattacharyya"``, follows only the worst pair and stalls once it is
    fixed; the mean of ``B``, ``"mean_bhattacharyya"``, is dominated by the pairs that are easy). The
    measurements behind this choice are in ``docs/selection.md``.

    Parameters
    ----------
    stats
        Labelled statistics; histograms are used only for the reported AUC/MI.
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
        Cap on swap rounds (per refined subset).
    multiclass
        False: class 0 against labels > 0 (the binary rule). True: every class with pixels (two classes
        give exactly the binary selection).
    aggregate
        How class-pair distances combine when there are three classes or more.
    beam_width, n_refined
        Partial subsets kept per step of the forward search, and final subsets refined by swaps.

    Raises
    ------
    LabelError
        A class missing (binary: no class 0 or no label > 0; multi-class: fewer than two classes).
    ConfigError
        Bad ``k``, windows or regularisation.
    """
    stats = check_stats(stats)
    candidates = candidate_sets(stats.n_bands, k, windows)
    _check_options(ridge, prior_pixels, shrinkage, aggregate, beam_width, n_refined)
    view = class_view(stats, multiclass=multiclass)
    options = {"ridge": ridge, "prior_pixels": prior_pixels, "shrinkage": shrinkage}
    if multiclass and int(np.count_nonzero(view.counts > 0)) > 2:
        model = GaussianClasses.of_classes(view, **options)
    else:
        model = GaussianClasses.binary(view, **options)
    picked, best = beam_swap_search(
        lambda subsets: model.criterion(subsets, aggregate),
        candidates,
        view.constant_bands,
        max_rounds,
        beam_width=beam_width,
        n_refined=n_refined,
    )
    relevance = report_relevance(view, multiclass=multiclass)
    return ScoredSubset(
        indices=np.asarray(picked, np.int64),
        band_scores=relevance.combined,
        fisher=relevance.fisher,
        auc=relevance.auc,
        mi=relevance.mi,
        objective=best,
        criterion="separability",
        n_classes=model.n_classes,
    )
