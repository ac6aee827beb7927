"""Per-band scores derived from sufficient statistics (no pixels).

Every function here takes already-reduced quantities (class means, variances, histograms, a covariance
matrix) and never touches pixels, so it runs in well under a millisecond on merged statistics (the
histogram scores read ≈ 250,000 counts at the default 2,048 bins, in one compiled pass each:
:mod:`bandselect.stats.native`). The functions are total: degenerate inputs (constant bands, empty
bins) give 0 (or 0.5 for an uninformative AUC), never NaN.
"""

from __future__ import annotations

import numpy as np

from bandselect.errors import ShapeError
from bandselect.stats import native


def fisher_score(
    mean_negative: np.ndarray,
    variance_negative: np.ndarray,
    mean_positive: np.ndarray,
    variance_positive: np.ndarray,
) -> np.ndarray:
    """Fisher score ``(μ1 − μ0)² / (σ1² + σ0²)`` per band (population variances).

    Bands where the denominator vanishes (both classes constant) score 0, as the selector spec demands.
    """
    numerator = (np.asarray(mean_positive) - np.asarray(mean_negative)) ** 2
    denominator = np.asarray(variance_positive) + np.asarray(variance_negative)
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def auc_from_histograms(hist_negative: np.ndarray, hist_positive: np.ndarray) -> np.ndarray:
    """Symmetric AUC ``max(AUC, 1 − AUC)`` per band from per-class histograms on shared bins.

    ``AUC = P(X⁺ > X⁻) + ½ P(X⁺ and X⁻ in the same bin)``: pairs in the same bin are counted as ties,
    which is exact for values that are truly equal and makes the error of binning at most half the
    probability mass of within-bin pairs (``½ Σ_b p⁺_b p⁻_b``), small for fine bins.

    Parameters
    ----------
    hist_negative, hist_positive
        ``(C, n_bins)`` counts of the negative and positive class.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` float64 in ``[0.5, 1]``; 0.5 where a class has no pixels.
    """
    h0, h1 = np.asarray(hist_negative), np.asarray(hist_positive)
    # int64 counts stay integers only when both are; anything else is compared in float64.
    kind = np.int64 if h0.dtype == h1.dtype == np.int64 else np.float64
    h0, h1 = _histogram_input(h0, kind), _histogram_input(h1, kind)
    if h0.shape != h1.shape or h0.ndim < 1:
        raise ShapeError(
            "histograms",
            expected="two count arrays of one shape (..., n_bins)",
            found=f"{h0.shape} and {h1.shape}",
            fix="pass both classes' histograms on the same bands and bins",
        )
    shape = h0.shape[:-1]
    flat0 = h0.reshape(-1, h0.shape[-1])
    flat1 = h1.reshape(-1, h1.shape[-1])
    wins, n0, n1 = (np.empty(flat0.shape[0]) for _ in range(3))
    native.auc_sums(flat0, flat1, wins, n0, n1)
    pairs = n0 * n1
    auc = np.full(flat0.shape[0], 0.5)
    np.divide(wins, pairs, out=auc, where=pairs > 0)
    return np.maximum(auc, 1.0 - auc).reshape(shape)


def mutual_information_from_histograms(histograms: np.ndarray) -> np.ndarray:
    """Plug-in mutual information (nats) between the binned band value and the class label.

    ``I = Σ_{y,b} p(y,b) log(p(y,b) / (p(y) p(b)))`` with ``p`` the empirical joint frequencies of the
    bins, i.e. the maximum-likelihood ("plug-in") estimate on exactly the histogram's bins. It is biased
    upwards by about ``(n_bins_occupied − 1)(K − 1) / (2N)`` for ``K`` classes and ``N`` pixels.

    Parameters
    ----------
    histograms
        ``(K, C, n_bins)`` counts per class.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` float64, ≥ 0; 0 for an empty histogram or a single class.
    """
    # I = (Σ_yb n_yb log n_yb − Σ_y n_y log n_y − Σ_b n_b log n_b + N log N) / N per band, the same sum
    # as Σ n_yb log(n_yb N / (n_y n_b)) regrouped: one log per non-zero count, in one compiled pass.
    joint = _histogram_input(histograms)
    if joint.ndim != 3:
        raise ShapeError(
            "histograms",
            expected="(K, C, n_bins) counts per class",
            found=f"{joint.ndim} dimensions {joint.shape}",
            fix="pass one histogram per class and band",
        )
    information, total = np.empty(joint.shape[1]), np.empty(joint.shape[1])
    native.n_log_n_sums(joint, native.N_LOG_N_TABLE, information, total)
    mi = np.zeros(joint.shape[1])
    np.divide(information, total, out=mi, where=total > 0)
    return np.maximum(mi, 0.0)  # rounding can make a zero MI a tiny negative number


def _histogram_input(counts: np.ndarray, dtype: np.dtype | None = None) -> np.ndarray:
    """Counts as the compiled kernels take them: C-contiguous int64 (kept) or float64 (converted)."""
    array = np.asarray(counts)
    kind = dtype if dtype is not None else (np.int64 if array.dtype == np.int64 else np.float64)
    return np.ascontiguousarray(array, dtype=kind)


def correlation_from_covariance(covariance: np.ndarray, constant: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation matrix from a covariance matrix.

    Rows and columns of constant bands (zero variance, or flagged in ``constant``) are 0, including
    their diagonal entry, so that nothing is NaN and a constant band is never "redundant" with anything.
    Values are clipped to ``[-1, 1]`` against rounding.
    """
    cov = np.asarray(covariance, dtype=np.float64)
    std = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    is_constant = std <= 0
    if constant is not None:
        is_constant = is_constant | np.asarray(constant, dtype=bool)
    inv = np.zeros_like(std)
    np.divide(1.0, std, out=inv, where=~is_constant)
    corr = cov * inv[:, None] * inv[None, :]
    np.clip(corr, -1.0, 1.0, out=corr)
    diag = np.where(is_constant, 0.0, 1.0)
    corr[np.diag_indices_from(corr)] = diag
    return corr


def rescale_unit(values: np.ndarray) -> np.ndarray:
    """Min-max rescale a score vector to ``[0, 1]`` across bands; a constant vector becomes zeros."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0 or float(v.max()) <= float(v.min()):
        return np.zeros_like(v)
    low, high = float(v.min()), float(v.max())
    return (v - low) / (high - low)


def f_statistic(counts: np.ndarray, class_means: np.ndarray, class_variances: np.ndarray) -> np.ndarray:
    """One-way ANOVA F-statistic per band (``sklearn.feature_selection.f_classif``) from class moments.

    ``F = [Σ_k n_k (μ_k − μ)² / (K − 1)] / [Σ_k n_k σ_k² / (N − K)]`` with ``σ_k²`` the population
    variance of class ``k``: the between-class over the within-class mean square, the multi-class
    generalisation of the Fisher score. Bands where the within-class variance vanishes score 0 (as the
    Fisher score does), and so does a data set with fewer than two classes or no more pixels than classes.

    Parameters
    ----------
    counts
        ``(K,)`` pixels per class (classes without pixels are ignored).
    class_means, class_variances
        ``(K, C)`` per-class means and population variances.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` float64, ≥ 0.
    """
    n_k = np.asarray(counts, dtype=np.float64).reshape(-1)
    means = np.asarray(class_means, dtype=np.float64)
    variances = np.asarray(class_variances, dtype=np.float64)
    present = n_k > 0
    n_k, means, variances = n_k[present], means[present], variances[present]
    n_classes, total = int(n_k.size), float(n_k.sum())
    out = np.zeros(means.shape[1] if means.ndim == 2 else 0)
    if n_classes < 2 or total <= n_classes:
        return out
    grand = (n_k[:, None] * means).sum(axis=0) / total
    between = (n_k[:, None] * (means - grand) ** 2).sum(axis=0) / (n_classes - 1)
    within = (n_k[:, None] * variances).sum(axis=0) / (total - n_classes)
    np.divide(between, within, out=out, where=within > 0)
    return out


def one_vs_rest_auc_from_histograms(histograms: np.ndarray) -> np.ndarray:
    """Symmetric AUC of each class against the union of the others, per band, from per-class histograms.

    Row ``k`` is :func:`auc_from_histograms` of class ``k`` (positive) against every other class
    (negative): ``max(AUC, 1 − AUC)`` of the band value as a score for class ``k``, ties within a bin
    counted half.

    Parameters
    ----------
    histograms
        ``(K, C, n_bins)`` counts per class on shared bins.

    Returns
    -------
    numpy.ndarray
        ``(K, C)`` float64 in ``[0.5, 1]``; 0.5 for a class without pixels.
    """
    hist = np.asarray(histograms, dtype=np.float64)
    total = hist.sum(axis=0)
    return np.stack([auc_from_histograms(total - hist[k], hist[k]) for k in range(hist.shape[0])])
