"""The label rule, defined once: which pixels of a label mask count, and which of them are positive.

A label mask holds one value per pixel: ``bool`` (True = positive) or integer class ids, any set of them
(0-based, 1-based, sparse: ``{0, 1}``, ``{1, ..., 8}``, ``{3, 17, 255}``). Two roles are given to
values by the caller:

- ``ignore_label`` (default None): pixels with this value are **left out of every statistic** (common
  values: 0 for "unlabelled" in classification ground truth, 255 for "no data"). Statistics exclude them
  through the statistics engine's ``valid`` mask (:func:`valid_pixels`), so their cube values never
  matter, not even for the histogram bins.
- ``positive_label`` (default None) makes a binary task. :func:`binary_labels` turns the labels into the
  positive/negative mask every binary consumer uses (datamodules, evaluation, the supervised selectors
  through the statistics, the flows):

  - ``positive_label=None``: every label ``> 0`` is positive (a binary mask, or "anything labelled");
  - ``positive_label=c``: class ``c`` is positive, every other class negative (one class against the rest).

Without a ``positive_label``, the class ids themselves are the labels: a multi-class selector uses every
class that remains after ignoring (:func:`apply_label_rule` gives the labels and the validity together).
The streamed datamodules' batches carry :func:`batch_labels`: the bool positive mask (False on ignored
pixels) and the validity (:data:`bandselect.names.PORT_VALID`), which the trainers honour.

The functions work element by element, so a reader can apply them to any window of a store; whether a
class occurs at all is a property of the whole data set, checked once with :func:`check_positive_label`
and :func:`check_classes`.

Examples
--------
>>> import numpy as np
>>> labels = np.array([[0, 1], [2, 2]])
>>> binary_labels(labels).tolist()
[[False, True], [True, True]]
>>> binary_labels(labels, positive_label=2).tolist()
[[False, False], [True, True]]
>>> valid_pixels(labels, ignore_label=0).tolist()
[[False, True], [True, True]]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from bandselect.errors import DTypeError, LabelError


def _as_array(mask: Any) -> np.ndarray:
    if hasattr(mask, "detach"):  # torch tensor, without importing torch here
        mask = mask.detach().cpu().numpy()
    return np.asarray(mask)


def integer_labels(mask: Any, *, what: str = "mask") -> np.ndarray:
    """The labels as an integer (or bool) array; integral floats are accepted, anything else is an error.

    Raises
    ------
    DTypeError
        Labels that are not bool, integer, or floats holding whole numbers.
    """
    labels = _as_array(mask)
    if labels.dtype == np.bool_ or np.issubdtype(labels.dtype, np.integer):
        return labels
    if np.issubdtype(labels.dtype, np.floating) and bool(np.all(np.isfinite(labels))):
        if bool(np.all(labels == np.round(labels))):
            return labels.astype(np.int64)
    raise DTypeError(
        what,
        expected="bool or integer labels (0 = negative)",
        found=f"dtype {labels.dtype}" + (" with fractional or non-finite values" if labels.size else ""),
        fix="pass the label mask as bool or integer class ids",
    )


def binary_labels(mask: Any, positive_label: int | None = None, *, what: str = "mask") -> np.ndarray:
    """Positive pixels of a label mask (the one label rule; see the module docstring).

    Parameters
    ----------
    mask
        Labels of any shape, bool or integer (NumPy or torch).
    positive_label
        ``None``: labels ``> 0`` are positive. An int: that class is positive, every other negative.
    what
        How the mask is named in errors.

    Returns
    -------
    numpy.ndarray
        bool, the shape of ``mask``.

    Raises
    ------
    DTypeError
        Labels that are not bool or integer.
    LabelError
        ``positive_label`` other than 0/1 with a bool mask.
    """
    labels = integer_labels(mask, what=what)
    if labels.dtype == np.bool_:
        if positive_label is None or int(positive_label) == 1:
            return labels
        if int(positive_label) == 0:
            return ~labels
        raise LabelError(
            what,
            expected="integer class ids when positive_label is not 0 or 1",
            found=f"a bool mask with positive_label={positive_label}",
            fix="pass positive_label=None for a bool mask",
        )
    if positive_label is None:
        return labels > 0
    return labels == int(positive_label)


def check_positive_label(classes: Iterable[int], positive_label: int | None, *, what: str = "mask") -> None:
    """Check, once per data set, that ``positive_label`` (when given) is one of the ``classes`` present.

    Raises
    ------
    LabelError
        The class does not occur; the message lists the classes that do.
    """
    if positive_label is None:
        return
    present = sorted({int(c) for c in classes})
    if int(positive_label) not in present:
        raise LabelError(
            what,
            expected=f"pixels of class positive_label={positive_label}",
            found=f"classes {present[:20]}",
            fix="set positive_label to a class present in the masks (or None: labels > 0 are positive)",
        )


def check_label_roles(
    positive_label: Any = None, ignore_label: Any = None, *, what: str = "labels"
) -> tuple[int | None, int | None]:
    """Validate ``positive_label`` and ``ignore_label`` (whole numbers or None, and not the same class).

    Returns
    -------
    tuple
        ``(positive_label, ignore_label)`` as Python ints (or None).

    Raises
    ------
    LabelError
        A role that is not a whole number, or both roles given to the same class (every positive pixel
        would be ignored).
    """
    roles = []
    for name, value in (("positive_label", positive_label), ("ignore_label", ignore_label)):
        if value is None:
            roles.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise LabelError(
                f"{what}: {name}",
                expected="an integer class id or None",
                found=f"{value!r} of type {type(value).__name__}",
                fix=f"pass {name} as a whole number, e.g. {name}={1 if name == 'positive_label' else 0}",
            )
        roles.append(int(value))
    positive, ignore = roles
    if positive is not None and positive == ignore:
        raise LabelError(
            f"{what}: positive_label and ignore_label",
            expected="two different classes (the positive class is the one to detect, the ignored one is "
            "left out)",
            found=f"both {positive}",
            fix="set ignore_label to the unlabelled value (often 0 or 255) and positive_label to a class",
        )
    return positive, ignore


def valid_pixels(mask: Any, ignore_label: int | None = None, *, what: str = "mask") -> np.ndarray | None:
    """Pixels that count: ``labels != ignore_label`` (the shape of ``mask``), or None when nothing is ignored.

    Pass the result as ``valid=`` to the statistics engine (:func:`bandselect.stats.statistics_of`,
    :meth:`bandselect.stats.BandStatistics.from_arrays`, a ``valid`` variable for
    :func:`bandselect.stats.compute_statistics`): ignored pixels are then left out of every statistic.

    Raises
    ------
    DTypeError
        Labels that are not bool or integer.
    """
    if ignore_label is None:
        return None
    _, ignore = check_label_roles(None, ignore_label, what=what)
    labels = integer_labels(mask, what=what)
    if labels.dtype == np.bool_:
        # A bool mask holds the classes 0 (False) and 1 (True), as for positive_label.
        if ignore not in (0, 1):
            raise LabelError(
                what,
                expected="integer class ids when ignore_label is not 0 or 1",
                found=f"a bool mask with ignore_label={ignore}",
                fix="pass integer class ids (with their unlabelled value), or ignore_label=None",
            )
        return labels != bool(ignore)
    return labels != ignore


def batch_labels(
    mask: Any,
    positive_label: int | None = None,
    ignore_label: int | None = None,
    *,
    what: str = "mask",
) -> tuple[np.ndarray, np.ndarray | None]:
    """The bool ``mask`` and validity a datamodule batch carries (the label rule of the streamed path).

    ``mask`` is :func:`binary_labels` with the ignored pixels set False (negative): they never count,
    because every consumer of a batch with a validity reads it (the statistics leave them out). ``valid``
    is :func:`valid_pixels` (None without ``ignore_label``: the batch then carries no validity).

    Raises
    ------
    LabelError
        Both roles on one class, a role that is not a whole number, or a bool mask with a role other
        than 0/1.
    DTypeError
        Labels that are not bool or integer.

    Examples
    --------
    >>> import numpy as np
    >>> mask, valid = batch_labels(np.array([0, 2, 3, 2]), positive_label=2, ignore_label=3)
    >>> mask.tolist(), valid.tolist()
    ([False, True, False, True], [True, True, False, True])
    """
    positive, ignore = check_label_roles(positive_label, ignore_label, what=what)
    positives = binary_labels(mask, positive, what=what)
    valid = valid_pixels(mask, ignore, what=what)
    return (positives if valid is None else positives & valid), valid


def check_ignore_label(
    classes: Iterable[int],
    ignore_label: int | None,
    *,
    positive_label: int | None = None,
    what: str = "mask",
) -> int | None:
    """Check, once per data set, the ``ignore_label`` of data whose masks hold ``classes``.

    The ignored class need not occur (nothing is then left out: a campaign may have no unlabelled pixel
    yet), but some other class must, or every pixel would be ignored. A data set with a single class
    left is accepted here (an unsupervised node uses the validity only); a supervised statistic checks
    for two classes where it is computed (:func:`check_classes`).

    Returns
    -------
    int or None
        ``ignore_label`` as a Python int.

    Raises
    ------
    LabelError
        ``ignore_label`` equal to ``positive_label``, not a whole number, or the only class present.

    Examples
    --------
    >>> check_ignore_label([0, 1, 2], 0, positive_label=2)
    0
    """
    _, ignore = check_label_roles(positive_label, ignore_label, what=what)
    if ignore is None:
        return None
    present = sorted({int(c) for c in classes})
    if not [c for c in present if c != ignore]:
        raise LabelError(
            what,
            expected=f"pixels of a class other than ignore_label={ignore}",
            found=f"classes {present[:20]}: every pixel would be ignored",
            fix="set ignore_label to the unlabelled value (often 0 or 255), or use labelled data",
        )
    return ignore


def apply_label_rule(
    mask: Any,
    *,
    positive_label: int | None = None,
    ignore_label: int | None = None,
    what: str = "mask",
) -> tuple[np.ndarray, np.ndarray | None]:
    """The labels a supervised statistic sees, and which pixels count.

    Parameters
    ----------
    mask
        Labels of any shape, bool or integer class ids.
    positive_label
        None: the class ids as they are (a binary selector then takes labels ``> 0`` as positive, a
        multi-class selector every class). An int: that class becomes 1, every other class 0.
    ignore_label
        None, or the class left out (its pixels are False in the validity).
    what
        How the mask is named in errors.

    Returns
    -------
    labels, valid
        ``labels`` (int64 or bool, the shape of ``mask``) and ``valid`` (bool, or None when no class is
        ignored), ready for ``statistics_of(cube, labels, valid=valid)``.

    Raises
    ------
    LabelError
        The two roles given to the same class, or a role that is not a whole number.
    DTypeError
        Labels that are not bool or integer.

    Examples
    --------
    >>> import numpy as np
    >>> labels, valid = apply_label_rule(np.array([0, 3, 5, 3]), positive_label=3, ignore_label=0)
    >>> labels.tolist(), valid.tolist()
    ([False, True, False, True], [False, True, True, True])
    """
    positive, ignore = check_label_roles(positive_label, ignore_label, what=what)
    valid = valid_pixels(mask, ignore, what=what)
    labels = integer_labels(mask, what=what) if positive is None else binary_labels(mask, positive, what=what)
    return labels, valid


def check_classes(
    classes: Sequence[int] | np.ndarray,
    counts: Sequence[int] | np.ndarray,
    *,
    ignore_label: int | None = None,
    n_left_out: int = 0,
    what: str = "labels",
) -> list[int]:
    """The classes with pixels, checked once per data set: a supervised selection needs at least two.

    Parameters
    ----------
    classes, counts
        Class ids and their pixel counts (e.g. ``stats.classes``, ``stats.counts``), after ignoring.
    ignore_label
        The ignored class, named in the message.
    n_left_out
        Pixels left out before (ignored or invalid), named in the message.

    Returns
    -------
    list of int
        The classes with at least one pixel, ascending.

    Raises
    ------
    LabelError
        Fewer than two classes with pixels; the message lists what was found and what was ignored.
    """
    present = sorted(int(c) for c, n in zip(np.asarray(classes), np.asarray(counts), strict=True) if n > 0)
    if len(present) < 2:
        ignored = "" if ignore_label is None else f" after ignoring class {ignore_label}"
        if n_left_out:
            ignored += f", {n_left_out} pixels left out (ignore_label / invalid)"
        raise LabelError(
            what,
            expected="pixels of at least two classes (supervised selection compares classes)",
            found=(f"one class only (class {present[0]})" if present else "no labelled pixel") + ignored,
            fix="use training data with more than one class, or check ignore_label and the mask",
        )
    return present
