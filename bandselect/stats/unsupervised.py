"""Unsupervised band selection from merged statistics (no labels): orthogonal projection, band clusters.

Both selectors need only the all-pixel covariance (the centred Gram matrix) of the statistics engine,
so they run out of core on Dask like everything else and take milliseconds on merged statistics.

- :func:`orthogonal_projection_select`: greedy; each next band is the one least explained by the bands
  already chosen (the largest residual variance after projecting it on their span). It is pivoted
  Cholesky on the covariance: an exact duplicate of a chosen band has residual 0 and is never chosen
  while an unexplained band is left.
- :func:`correlation_cluster_select`: the bands are clustered on their correlation (average-linkage
  agglomerative clustering of ``1 − |ρ|``) into ``k`` groups of mutually redundant bands, and one band
  represents each group, so no two picks come from the same redundant group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from bandselect.errors import ConfigError, InputError
from bandselect.stats.partial import BandStatistics
from bandselect.stats.subsets import ScoredSubset, available, candidate_sets, check_stats

__all__ = [
    "EXPLAINED_TOLERANCE",
    "REPRESENTATIVES",
    "correlation_cluster_select",
    "orthogonal_projection_select",
]

#: A band whose residual variance is below this fraction of its own variance counts as explained.
EXPLAINED_TOLERANCE = 1e-9
#: How a correlation cluster's band is chosen.
REPRESENTATIVES: tuple[str, ...] = ("medoid", "variance")


def _covariance(stats: BandStatistics) -> np.ndarray:
    if stats.count < 2:
        raise InputError(
            "statistics",
            expected="statistics of at least two pixels",
            found=f"{stats.count} sample(s) (pixels)",
            fix="compute the statistics on a cube with pixels",
        )
    return stats.covariance


def orthogonal_projection_select(
    stats: BandStatistics, k: int, windows: Sequence[Any] | None = None
) -> ScoredSubset:
    """Greedy orthogonal-projection band selection on the covariance (labels are not used).

    The first pick is the band of largest variance; each next pick the allowed band with the largest
    residual variance ``r_j = Σ_jj − Σ_jS Σ_SS⁻¹ Σ_Sj`` after projecting it (centred) on the span of the
    picks ``S``, i.e. the band least explained by them. Bands explained to within
    :data:`EXPLAINED_TOLERANCE` of their variance (a copy of a pick, a linear combination of the picks)
    and constant bands are chosen only when a window holds nothing else. Ties go to the lower index.

    Parameters
    ----------
    stats
        Statistics of the pixels (any labels; they are pooled).
    k
        Number of bands (``len(windows)`` when windows are given).
    windows
        Optional sequence of candidate band-index arrays, one per pick.

    Returns
    -------
    ScoredSubset
        ``band_scores``: each band's residual fraction ``r_j / Σ_jj`` unexplained by the selection (0 for
        the picks, 1 for constant bands); ``objective``: the fraction of the total variance the picks
        explain linearly, ``1 − Σ r_j / Σ Σ_jj``.
    """
    stats = check_stats(stats)
    candidates = candidate_sets(stats.n_bands, k, windows)
    covariance = _covariance(stats)
    variance = np.clip(np.diag(covariance).copy(), 0.0, None)
    residual = variance.copy()
    constant = stats.constant_bands | (variance <= 0)
    factors: list[np.ndarray] = []
    picked: list[int] = []
    for step, allowed in enumerate(candidates):
        free = available(allowed, picked, constant, step)
        unexplained = free[residual[free] > EXPLAINED_TOLERANCE * variance[free]]
        pool = unexplained if unexplained.size else free
        pick = int(pool[int(np.argmax(residual[pool]))])  # first maximum: ties to the lower index
        picked.append(pick)
        if residual[pick] > 0:
            # One pivoted-Cholesky column: the part of every band along the pick's unexplained direction.
            column = covariance[:, pick] - sum((f * f[pick] for f in factors), np.zeros_like(variance))
            factor = column / np.sqrt(residual[pick])
            factors.append(factor)
            residual = np.clip(residual - factor**2, 0.0, None)
        residual[pick] = 0.0
    fraction = np.ones(stats.n_bands)
    np.divide(residual, variance, out=fraction, where=variance > 0)
    total = float(variance.sum())
    zeros = np.zeros(stats.n_bands)
    return ScoredSubset(
        indices=np.asarray(picked, np.int64),
        band_scores=fraction,
        fisher=zeros,
        auc=zeros,
        mi=zeros,
        objective=0.0 if total <= 0 else float(1.0 - residual.sum() / total),
        criterion="orthogonal_projection",
        n_classes=0,
    )


def _clusters(correlation: np.ndarray, k: int) -> np.ndarray:
    """``(C,)`` cluster id per band: average linkage on ``1 − |ρ|``, cut into exactly ``k`` clusters."""
    from scipy.cluster.hierarchy import cut_tree, linkage
    from scipy.spatial.distance import squareform

    if k >= correlation.shape[0]:
        return np.arange(correlation.shape[0])  # every band its own cluster
    distance = 1.0 - np.abs(correlation)
    np.fill_diagonal(distance, 0.0)
    distance = np.clip(0.5 * (distance + distance.T), 0.0, None)
    tree = linkage(squareform(distance, checks=False), method="average")
    return np.asarray(cut_tree(tree, n_clusters=k)).reshape(-1)


def correlation_cluster_select(
    stats: BandStatistics,
    k: int,
    *,
    representative: Literal["medoid", "variance"] = "medoid",
) -> ScoredSubset:
    """One band from each of ``k`` clusters of mutually correlated bands (labels are not used).

    The bands are clustered by average-linkage agglomerative clustering of the distance ``1 − |ρ|``
    (ρ: all-pixel Pearson correlation; constant bands are uncorrelated with everything) and the tree is
    cut into exactly ``k`` clusters. Each cluster is represented by its ``medoid`` (the band with the
    largest mean ``|ρ|`` to the other bands of its cluster: the one that stands for the group best) or
    by its band of largest ``variance``. Picks are ordered by the share of the total variance their
    cluster holds, largest first; ties go to the lower index.

    Parameters
    ----------
    stats
        Statistics of the pixels (any labels; they are pooled).
    k
        Number of clusters, hence of bands.
    representative
        ``"medoid"`` or ``"variance"``.

    Returns
    -------
    ScoredSubset
        ``band_scores``: each band's mean ``|ρ|`` with its cluster (the medoid criterion);
        ``objective``: the mean ``|ρ|`` of each band with its cluster's pick (how well the picks stand for
        the spectrum, 1 = every band a copy of its representative).
    """
    stats = check_stats(stats)
    candidate_sets(stats.n_bands, k, None)  # validates k
    if representative not in REPRESENTATIVES:
        raise ConfigError(
            "representative",
            expected=f"one of {list(REPRESENTATIVES)}",
            found=repr(representative),
            fix="pass representative='medoid'",
        )
    variance = np.clip(np.diag(_covariance(stats)), 0.0, None)
    correlation = np.abs(stats.correlation)
    labels = _clusters(correlation, int(k))
    fit = np.zeros(stats.n_bands)
    picks: list[tuple[float, int]] = []
    for cluster in np.unique(labels):
        members = np.flatnonzero(labels == cluster)
        block = correlation[np.ix_(members, members)]
        mean_fit = (block.sum(axis=1) - np.diag(block)) / max(members.size - 1, 1)
        if members.size == 1:
            mean_fit = np.ones(1)
        fit[members] = mean_fit
        ranking = mean_fit if representative == "medoid" else variance[members]
        chosen = int(members[int(np.argmax(ranking))])
        picks.append((-float(variance[members].sum()), chosen))
    ordered = [band for _, band in sorted(picks)]
    representative_of = {int(c): b for c, b in zip(np.unique(labels), [p[1] for p in picks], strict=True)}
    coverage = np.array([correlation[j, representative_of[int(labels[j])]] for j in range(stats.n_bands)])
    coverage[ordered] = 1.0
    zeros = np.zeros(stats.n_bands)
    return ScoredSubset(
        indices=np.asarray(ordered, np.int64),
        band_scores=fit,
        fisher=zeros,
        auc=zeros,
        mi=zeros,
        objective=float(coverage.mean()),
        criterion="correlation_clusters",
        n_classes=0,
    )
