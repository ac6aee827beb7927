"""Which classes a supervised selection compares: class views of merged :class:`BandStatistics`.

Statistics keep every class of the label mask apart (counts, means, co-moments, histograms per class),
so one set of statistics serves every label situation:

- a **binary** task: class 0 against the union of labels > 0 (:meth:`BandStatistics.binary_groups`), or
  one class against the rest (:meth:`BandStatistics.one_vs_rest`);
- a **multi-class** task: every class with pixels (:func:`class_view`), two of them being the binary
  task again (:func:`two_class_statistics`), so a multi-class selector on two classes selects exactly as
  the binary one does;
- classes **left out** after the fact (:func:`without_classes`), exact for every moment and histogram
  count. Excluding pixels *before* the statistics (an ``ignore_label`` through the ``valid`` mask, see
  :func:`bandselect.labels.valid_pixels`) is better still: the histogram bins then come from the kept
  pixels only.

Examples
--------
>>> import numpy as np
>>> from bandselect.stats import BandStatistics
>>> cube = np.arange(12.0).reshape(6, 2)
>>> stats = BandStatistics.from_arrays(cube, np.array([0, 1, 1, 2, 2, 2]))
>>> without_classes(stats, [0]).classes.tolist(), class_view(stats, multiclass=True).classes.tolist()
([1, 2], [0, 1, 2])
>>> two_class_statistics(without_classes(stats, [0])).classes.tolist()
[0, 1]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bandselect.errors import InputError, LabelError
from bandselect.labels import (
    apply_label_rule,
    check_classes,
    check_label_roles,
    check_positive_label,
    integer_labels,
)
from bandselect.stats.binning import DEFAULT_N_BINS, NanPolicy
from bandselect.stats.partial import BandStatistics

__all__ = [
    "ClassMoments",
    "class_moments",
    "class_view",
    "labelled_statistics",
    "present_classes",
    "two_class_statistics",
    "without_classes",
]


def _check(stats: Any) -> BandStatistics:
    if not isinstance(stats, BandStatistics):
        raise InputError(
            "stats",
            expected="a BandStatistics",
            found=type(stats).__name__,
            fix="build it with bandselect.stats.statistics_of or compute_statistics",
        )
    return stats


def present_classes(stats: BandStatistics) -> np.ndarray:
    """``(K,)`` int64: the classes with at least one pixel, ascending."""
    stats = _check(stats)
    return np.asarray(stats.classes[stats.counts > 0], dtype=np.int64)


def _rows(stats: BandStatistics, keep: np.ndarray) -> BandStatistics:
    """The statistics of the classes where ``keep`` is True (removed pixels counted as invalid)."""
    removed = int(stats.counts[~keep].sum())
    return replace(
        stats,
        classes=stats.classes[keep],
        counts=stats.counts[keep],
        class_means=stats.class_means[keep],
        class_comoments=stats.class_comoments[keep],
        class_minimum=stats.class_minimum[keep],
        class_maximum=stats.class_maximum[keep],
        histograms=None if stats.histograms is None else stats.histograms[keep],
        n_clipped=None if stats.n_clipped is None else stats.n_clipped[keep],
        n_invalid=stats.n_invalid + removed,
    )


def without_classes(stats: BandStatistics, labels: Iterable[int]) -> BandStatistics:
    """The statistics without the pixels of ``labels`` (absent labels are no error).

    Moments, min/max and histogram counts of the remaining classes are exactly those of statistics
    computed without the removed pixels; the histogram *edges* stay those of the full data (computing
    with ``valid=labels != ignore_label`` instead gives edges of the kept pixels). The removed pixels
    are added to :attr:`~BandStatistics.n_invalid`. The spatial contrast terms, which mix neighbouring
    pixels of every class, are kept as they are. For a campaign's stored statistics,
    :func:`~bandselect.stats.statistics_without` also re-bins on the kept pixels' range and sums the
    contrast again without the class (one pass, kept in the sidecar).
    """
    stats = _check(stats)
    drop = np.isin(stats.classes, np.asarray([int(label) for label in labels], dtype=np.int64))
    return _rows(stats, ~drop)


def two_class_statistics(stats: BandStatistics) -> BandStatistics:
    """Statistics of exactly two classes with pixels, relabelled 0 (the lower id) and 1 (the higher).

    Every binary score and criterion of the package is symmetric in the two classes (Fisher, symmetric
    AUC, MI, Bhattacharyya), so which one is called positive does not change a selection.

    Raises
    ------
    LabelError
        Fewer than two classes with pixels.
    InputError
        More than two.
    """
    stats = _check(stats)
    present = check_classes(stats.classes, stats.counts, what="statistics")
    if len(present) != 2:
        raise InputError(
            "statistics",
            expected="exactly two classes with pixels",
            found=f"classes {present[:20]}",
            fix="use class_view(stats, multiclass=True) for more classes",
        )
    return stats.one_vs_rest(present[1])


def class_view(stats: BandStatistics, *, multiclass: bool) -> BandStatistics:
    """The statistics a supervised selector compares.

    ``multiclass=False``: the binary rule, unchanged (class 0 against labels > 0; checked by
    :meth:`~BandStatistics.binary_groups` where used). ``multiclass=True``: the classes with pixels
    (empty ones dropped); two of them are relabelled 0/1 (:func:`two_class_statistics`) so that the
    binary scores and criteria apply exactly.

    Raises
    ------
    LabelError
        ``multiclass=True`` with fewer than two classes with pixels.
    """
    stats = _check(stats)
    if not multiclass:
        return stats
    present = check_classes(stats.classes, stats.counts, n_left_out=stats.n_invalid, what="statistics")
    if len(present) == 2:
        return two_class_statistics(stats)
    return _rows(stats, stats.counts > 0)


@dataclass(frozen=True, eq=False)
class ClassMoments:
    """Per-class Gaussian moments of the classes with pixels.

    Attributes
    ----------
    classes
        ``(K,)`` int64 class ids.
    counts
        ``(K,)`` float64 pixels per class.
    means
        ``(K, C)``.
    covariances
        ``(K, C, C)`` population covariances (constant bands' rows and columns exactly 0).
    """

    classes: np.ndarray
    counts: np.ndarray
    means: np.ndarray
    covariances: np.ndarray

    @property
    def variances(self) -> np.ndarray:
        """``(K, C)`` per-class population variances."""
        return np.diagonal(self.covariances, axis1=1, axis2=2).copy()


def class_moments(stats: BandStatistics) -> ClassMoments:
    """The per-class counts, means and covariances of the classes with pixels."""
    stats = _check(stats)
    keep = stats.counts > 0
    counts = stats.counts[keep].astype(np.float64)
    classes = np.asarray(stats.classes[keep], np.int64)
    covariances = np.zeros((classes.size, stats.n_bands, stats.n_bands))
    for position, label in enumerate(classes):
        covariances[position] = stats.class_covariance(int(label))
    return ClassMoments(
        classes=classes,
        counts=counts,
        means=np.asarray(stats.class_means[keep], np.float64),
        covariances=covariances,
    )


def labelled_statistics(
    cube: Any,
    mask: Any = None,
    *,
    positive_label: int | None = None,
    ignore_label: int | None = None,
    n_bins: int | None = DEFAULT_N_BINS,
    contrast: bool = False,
    valid: Any = None,
    nan_policy: NanPolicy = "raise",
    device: str | None = None,
) -> BandStatistics:
    """:func:`~bandselect.stats.statistics_of` with the label rule applied (the one in-memory path).

    ``ignore_label`` pixels are left out of every statistic through the engine's ``valid`` mask (their
    values never matter, NaN included, not even for the histogram bins); ``positive_label`` makes the
    labels binary (that class against the rest). Without either, the class ids are kept as they are.

    Parameters
    ----------
    cube
        ``(..., C)`` values.
    mask
        Labels with the cube's leading shape, or None (unlabelled; no role may then be given).
    positive_label, ignore_label
        The label roles (:func:`bandselect.labels.apply_label_rule`).
    n_bins, contrast, valid, nan_policy, device
        As :func:`~bandselect.stats.statistics_of` (``valid`` is combined with the ignore rule).

    Raises
    ------
    LabelError
        A role without a mask, both roles on one class, or a ``positive_label`` absent from the counted
        pixels.
    """
    from bandselect.stats.binning import leading_flat, to_numpy
    from bandselect.stats.memory import statistics_of

    positive, ignore = check_label_roles(positive_label, ignore_label, what="mask")
    if mask is None:
        if positive is not None or ignore is not None:
            raise LabelError(
                "mask",
                expected="a label mask (positive_label and ignore_label name classes of it)",
                found="no mask",
                fix="pass the labels, or drop positive_label/ignore_label",
            )
        return statistics_of(
            cube, None, n_bins=n_bins, contrast=contrast, valid=valid, nan_policy=nan_policy, device=device
        )
    labels, keep = apply_label_rule(mask, positive_label=positive, ignore_label=ignore)
    lead = to_numpy(cube).shape[:-1]
    counted = None if keep is None else leading_flat(keep, lead, "mask")
    if valid is not None:
        given = leading_flat(valid, lead, "valid").astype(bool)
        counted = given if counted is None else counted & given
    if positive is not None:
        raw = leading_flat(integer_labels(mask), lead, "mask")
        check_positive_label(np.unique(raw if counted is None else raw[counted]).tolist(), positive)
    return statistics_of(
        cube,
        labels,
        n_bins=n_bins,
        contrast=contrast,
        valid=None if counted is None else counted.reshape(lead),
        nan_policy=nan_policy,
        device=device,
    )
