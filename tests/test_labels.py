"""The label rule: positive and ignored classes, any set of class ids, the checks and their messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bandselect.errors import DTypeError, LabelError
from bandselect.labels import (
    apply_label_rule,
    binary_labels,
    check_classes,
    check_label_roles,
    check_positive_label,
    valid_pixels,
)

LABELS = np.array([[0, 3, 255], [17, 3, 0]])


def test_roles_on_any_class_ids() -> None:
    labels, valid = apply_label_rule(LABELS, ignore_label=255)
    assert labels.tolist() == LABELS.tolist() and valid.tolist() == [[True, True, False], [True, True, True]]
    labels, valid = apply_label_rule(torch.from_numpy(LABELS), positive_label=3, ignore_label=0)
    assert labels.tolist() == [[False, True, False], [False, True, False]]
    assert valid.tolist() == [[False, True, True], [True, True, False]]
    assert apply_label_rule(LABELS)[1] is None and valid_pixels(LABELS, None) is None
    assert valid_pixels(np.array([True, False]), ignore_label=0).tolist() == [True, False]
    assert binary_labels(LABELS).tolist() == (LABELS > 0).tolist()  # the binary rule is unchanged


def test_bad_roles_and_classes_are_label_errors() -> None:
    with pytest.raises(LabelError, match="two different classes"):
        check_label_roles(3, 3)
    with pytest.raises(LabelError, match="whole number"):
        check_label_roles(None, 0.5)
    with pytest.raises(LabelError, match="whole number"):
        apply_label_rule(LABELS, positive_label=True)
    with pytest.raises(DTypeError):
        valid_pixels(np.array([0.5, 1.0]), ignore_label=0)
    assert check_classes([0, 3, 17], [5, 0, 2]) == [0, 17]
    with pytest.raises(LabelError, match=r"one class only \(class 3\) after ignoring class 0"):
        check_classes([3], [4], ignore_label=0)
    with pytest.raises(LabelError, match="no labelled pixel"):
        check_classes([3], [0])
    with pytest.raises(LabelError, match="classes"):
        check_positive_label([0, 3], 5)
