"""The label rule, defined once: which pixels of a label mask are positive.

A label mask holds one value per pixel: ``bool`` (True = positive) or integer class ids (0 = negative /
background). :func:`binary_labels` turns it into the positive/negative mask every binary consumer uses
(datamodules, evaluation, the supervised selectors through the statistics, the flows):

- ``positive_label=None``: every label ``> 0`` is positive (a binary mask, or "anything labelled");
- ``positive_label=c``: class ``c`` is positive, every other class negative (one class against the rest).

It works element by element, so a reader can apply it to any window of a store; whether the chosen class
occurs at all is a property of the whole data set, checked once with :func:`check_positive_label`.

Examples
--------
>>> import numpy as np
>>> labels = np.array([[0, 1], [2, 2]])
>>> binary_labels(labels).tolist()
[[False, True], [True, True]]
>>> binary_labels(labels, positive_label=2).tolist()
[[False, False], [True, True]]
"""

from __future__ import annotations

from collections.abc import Iterable
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
