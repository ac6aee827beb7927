"""Metric nodes: evaluated on validation batches by the gradient trainer."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from bandselect.errors import ConfigError, LabelError
from bandselect.nodes.losses import as_mask, as_valid, valid_port
from bandselect.pipeline.node import Node, PortSpec
from bandselect.pipeline.registry import register_node


def binary_auroc(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Exact area under the ROC curve, from ranks (Mann–Whitney U), ties counted one half.

    Parameters
    ----------
    scores
        Any shape; higher means more anomalous.
    labels
        Bool tensor of the same shape, True = positive.

    Returns
    -------
    torch.Tensor
        A float64 scalar in ``[0, 1]``; NaN when one class is absent.

    Examples
    --------
    >>> import torch
    >>> binary_auroc(torch.tensor([0.1, 0.4, 0.4, 0.9]), torch.tensor([False, True, False, True]))
    tensor(0.8750, dtype=torch.float64)
    """
    flat = scores.detach().reshape(-1).double()
    positive = labels.reshape(-1).to(flat.device)
    n_pos = int(positive.sum())
    n_neg = positive.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return torch.tensor(float("nan"), dtype=torch.float64)
    order = torch.argsort(flat)
    sorted_scores = flat[order]
    # Average ranks over runs of equal scores (1-based ranks).
    _, inverse, counts = torch.unique_consecutive(sorted_scores, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    average_rank = ends - (counts.double() - 1) / 2
    ranks = torch.empty_like(flat)
    ranks[order] = average_rank[inverse]
    rank_sum = ranks[positive].sum()
    return ((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).cpu()


@register_node
class AUROC(Node):
    """Exact rank-based AUROC of anomaly scores against the label mask, on the batch.

    Ties count one half (average ranks), as ``sklearn.metrics.roc_auc_score``. Any monotone score works:
    connect the detector's ``scores`` or the head's ``logits``.

    Parameters
    ----------
    single_class
        What to do when the batch has only one class: ``"error"`` (a ``LabelError``) or ``"nan"``
        (return NaN, e.g. for patch batches that may miss every anomaly).

    Shape
    -----
    - scores: ``(B, H, W, 1)`` float32
    - mask: ``(B, H, W, 1)`` bool (``(B, H, W)`` accepted)
    - valid: ``(B, H, W, 1)`` bool, optional: the AUROC is over these pixels only
    - auroc: ``()`` float64

    Examples
    --------
    >>> import torch
    >>> from bandselect.nodes import AUROC
    >>> metric = AUROC()
    >>> scores = torch.tensor([0.1, 0.4, 0.35, 0.8]).reshape(1, 1, 4, 1)
    >>> mask = torch.tensor([False, False, True, True]).reshape(1, 1, 4, 1)
    >>> float(metric(scores=scores, mask=mask)["auroc"])
    0.75
    """

    INPUT_PORTS = (
        PortSpec("scores", torch.float32, ("B", "H", "W", 1), "Anomaly scores or logits"),
        PortSpec("mask", torch.bool, ("B", "H", "W", 1), "Labels, True = anomaly"),
        valid_port("the AUROC"),
    )
    OUTPUT_PORTS = (PortSpec("auroc", torch.float64, (), "Area under the ROC curve"),)
    #: The gradient trainer evaluates nodes with this flag on validation batches by default.
    is_metric: ClassVar[bool] = True

    def __init__(self, single_class: str = "error") -> None:
        if single_class not in ("error", "nan"):
            raise ConfigError(
                "AUROC single_class is unknown",
                expected="'error' or 'nan'",
                found=repr(single_class),
                fix="use 'nan' when batches may lack positives",
            )
        super().__init__(single_class=single_class)
        self.single_class = single_class

    def forward(self, scores: torch.Tensor, mask: Any = None, valid: Any = None) -> dict[str, torch.Tensor]:
        """Compute the AUROC of the batch (its valid pixels)."""
        labels = as_mask(mask, scores, node="AUROC")
        kept = as_valid(valid, scores, node="AUROC")
        if kept is not None:
            scores, labels = scores[kept], labels[kept]
        value = binary_auroc(scores, labels)
        if torch.isnan(value) and self.single_class == "error":
            n_pos = int(labels.sum())
            raise LabelError(
                "AUROC needs both classes in the batch",
                expected="at least one positive and one negative pixel",
                found=f"{n_pos} positive of {labels.numel()}",
                fix="validate on whole images that contain anomalies, or set single_class='nan'",
            )
        return {"auroc": value}
