"""Score-to-logit head and the supervised anomaly loss."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bandselect.errors import ConfigError, LabelError, ShapeError
from bandselect.names import PORT_VALID
from bandselect.pipeline.node import Node, PortSpec
from bandselect.pipeline.registry import register_node
from bandselect.validation import check_bool, check_float


def _pixel_flags(values: Any, like: torch.Tensor, *, node: str, port: str, fix: str) -> torch.Tensor:
    """``values`` as a bool tensor shaped like ``like`` (``(B, H, W, 1)``; ``(B, H, W)`` accepted, ``> 0``
    is True for non-bool values)."""
    flags = torch.as_tensor(values, device=like.device)
    if flags.ndim == like.ndim - 1:
        flags = flags.unsqueeze(-1)
    if flags.shape != like.shape:
        raise ShapeError(
            f"{node}.{port} does not match the scores",
            expected=f"{tuple(like.shape)} (or without the trailing 1)",
            found=tuple(flags.shape),
            fix=fix,
        )
    return flags if flags.dtype == torch.bool else flags > 0


def as_mask(mask: Any, like: torch.Tensor, *, node: str) -> torch.Tensor:
    """Return ``mask`` as a bool tensor shaped like ``like`` (``(B, H, W, 1)``).

    Accepts ``(B, H, W, 1)`` or ``(B, H, W)`` bool/int labels (``> 0`` is positive). A missing mask is a
    :class:`~bandselect.errors.LabelError`.
    """
    if mask is None:
        raise LabelError(
            f"{node} needs a label mask",
            expected="mask (B, H, W, 1) bool with 1 = anomaly",
            found="no mask",
            fix="connect data.mask to the node's mask port and use a datamodule whose batches carry 'mask'",
        )
    return _pixel_flags(
        mask, like, node=node, port="mask", fix="pass the mask of the same batch and spatial size as the cube"
    )


def as_valid(valid: Any, like: torch.Tensor, *, node: str) -> torch.Tensor | None:
    """``valid`` (the batch's :data:`~bandselect.names.PORT_VALID`) as a bool tensor shaped like ``like``,
    or None when not given (every pixel counts). False marks ignored pixels (``ignore_label``)."""
    if valid is None:
        return None
    return _pixel_flags(
        valid,
        like,
        node=node,
        port=PORT_VALID,
        fix="connect data.valid: the batch's validity, of the same batch and spatial size as the cube",
    )


def valid_port(reading: str) -> PortSpec:
    """The optional ``valid`` input of a node that leaves ignored pixels out of ``reading``."""
    return PortSpec(
        PORT_VALID,
        torch.bool,
        ("B", "H", "W", 1),
        f"False on ignored pixels (ignore_label), left out of {reading}; connect data.valid",
        optional=True,
    )


@register_node
class ScoreToLogit(Node):
    """Affine head turning detector scores into logits: ``logits = scale · s + bias``.

    With ``standardize=True`` (default) ``s`` is the score divided by its batch mean, which makes the head
    independent of how large the detector's scores are (an RX score grows with the number of effective
    channels); the gradient then rewards *separating* anomalies rather than inflating every score.

    With ``positive=True`` the head uses ``|scale|``: the logits always increase with the scores (a
    higher detector score is a higher anomaly logit), only their steepness is learnt, and while the
    learnt scale stays positive it is exactly the free head (same parameter, same steps). With a free
    sign the loss can also be lowered by *inverting* the detector, and a selector upstream is then
    trained to hide the anomalies: a ConcreteBandSelector whose initial bands score the planted
    campaign's anomalies below the background (AUROC ~0.35 on the training patches) drove the scale to
    -0.2 in its first epoch and to -1 after, then learnt bands where the anomalies blend in (test AUROC
    0.46; 0.9998 with ``positive=True``).

    Parameters
    ----------
    scale_init, bias_init
        Initial values of the learnable ``scale`` and ``bias`` (``scale_init > 0`` with ``positive``).
    standardize
        Divide the scores by their batch mean first.
    positive
        Use ``|scale|``, so the logits increase with the scores.

    Shape
    -----
    - scores: ``(B, H, W, 1)`` float32
    - valid: ``(B, H, W, 1)`` bool, optional: the batch mean of ``standardize`` is over these pixels
    - logits: ``(B, H, W, 1)`` float32

    Examples
    --------
    >>> import torch
    >>> from bandselect.nodes import ScoreToLogit
    >>> head = ScoreToLogit(scale_init=2.0, bias_init=-1.0, standardize=False)
    >>> head(scores=torch.ones(1, 1, 2, 1))["logits"].flatten().tolist()
    [1.0, 1.0]
    """

    INPUT_PORTS = (
        PortSpec("scores", torch.float32, ("B", "H", "W", 1), "Detector scores"),
        valid_port("the standardising mean"),
    )
    OUTPUT_PORTS = (PortSpec("logits", torch.float32, ("B", "H", "W", 1), "Anomaly logits"),)

    def __init__(
        self,
        scale_init: float = 1.0,
        bias_init: float = 0.0,
        standardize: bool = True,
        positive: bool = False,
    ) -> None:
        owner = type(self).__name__
        positive = check_bool(owner, "positive", positive)
        if positive:
            scale_init = check_float(owner, "scale_init", scale_init, minimum=0.0, strict_minimum=True)
        super().__init__(
            scale_init=scale_init, bias_init=bias_init, standardize=standardize, positive=positive
        )
        self.standardize = bool(standardize)
        self.positive = positive
        self.scale = nn.Parameter(torch.tensor(float(scale_init)))
        self.bias = nn.Parameter(torch.tensor(float(bias_init)))

    @property
    def reads_valid(self) -> bool:
        """Whether the ``valid`` input changes the output: only the standardising mean reads it."""
        return self.standardize

    def forward(self, scores: torch.Tensor, valid: Any = None) -> dict[str, torch.Tensor]:
        """Map scores to logits (ignored pixels get logits too; the loss leaves them out)."""
        if scores.ndim != 4 or scores.shape[-1] != 1:
            raise ShapeError(
                "ScoreToLogit.scores has the wrong shape",
                expected="(B, H, W, 1)",
                found=tuple(scores.shape),
                fix="connect a detector's scores port (e.g. rx.scores)",
            )
        if self.standardize:
            kept = as_valid(valid, scores, node="ScoreToLogit")
            counted = scores if kept is None else scores[kept]
            mean = counted.mean() if counted.numel() else scores.new_ones(())
            scores = scores / mean.clamp_min(torch.finfo(scores.dtype).tiny)
        scale = self.scale.abs() if self.positive else self.scale
        return {"logits": scale * scores + self.bias}


@register_node
class AnomalyBCELoss(Node):
    """Binary cross-entropy of anomaly logits against the label mask.

    Parameters
    ----------
    weight
        Multiplier of the loss (to balance it against regularizers).
    pos_weight
        Weight of the positive class: a number, ``"balanced"`` (``n_negative / n_positive`` of each
        batch, for rare anomalies; 1 when a batch has no positive) or None (1).

    Shape
    -----
    - logits: ``(B, H, W, 1)`` float32
    - mask: ``(B, H, W, 1)`` bool (``(B, H, W)`` accepted); required, a missing mask is a ``LabelError``
    - valid: ``(B, H, W, 1)`` bool, optional: the loss (and the balanced weight) is over these pixels
      only; a batch without any is 0
    - loss: ``()`` float32

    Examples
    --------
    >>> import torch
    >>> from bandselect.nodes import AnomalyBCELoss
    >>> loss = AnomalyBCELoss()
    >>> out = loss(logits=torch.zeros(1, 1, 2, 1), mask=torch.tensor([[[[True], [False]]]]))
    >>> round(float(out["loss"]), 4)  # log(2)
    0.6931
    """

    INPUT_PORTS = (
        PortSpec("logits", torch.float32, ("B", "H", "W", 1), "Anomaly logits"),
        PortSpec("mask", torch.bool, ("B", "H", "W", 1), "Labels, True = anomaly"),
        valid_port("the loss"),
    )
    OUTPUT_PORTS = (PortSpec("loss", torch.float32, (), "Weighted binary cross-entropy"),)

    def __init__(self, weight: float = 1.0, pos_weight: float | str | None = "balanced") -> None:
        if isinstance(pos_weight, str) and pos_weight != "balanced":
            raise ConfigError(
                "AnomalyBCELoss pos_weight is unknown",
                expected="a positive number, 'balanced' or None",
                found=repr(pos_weight),
                fix="use pos_weight='balanced' for rare anomalies",
            )
        if isinstance(pos_weight, int | float) and not pos_weight > 0:
            raise ConfigError(
                "AnomalyBCELoss pos_weight must be positive",
                expected="> 0",
                found=repr(pos_weight),
                fix="use pos_weight='balanced' or a positive number",
            )
        super().__init__(weight=weight, pos_weight=pos_weight)
        self.weight = float(weight)
        self.pos_weight = pos_weight

    def forward(self, logits: torch.Tensor, mask: Any = None, valid: Any = None) -> dict[str, torch.Tensor]:
        """Compute the weighted BCE over every (valid) pixel of the batch."""
        labels = as_mask(mask, logits, node="AnomalyBCELoss")
        kept = as_valid(valid, logits, node="AnomalyBCELoss")
        if kept is not None:
            if not bool(kept.any()):
                return {"loss": (logits * 0.0).sum()}  # nothing counted: no signal, the graph kept
            logits, labels = logits[kept], labels[kept]
        target = labels.to(logits.dtype)
        if self.pos_weight == "balanced":
            n_pos = target.sum()
            n_neg = target.numel() - n_pos
            pos_weight = torch.where(n_pos > 0, n_neg / n_pos.clamp_min(1), torch.ones_like(n_pos))
        elif self.pos_weight is None:
            pos_weight = None
        else:
            pos_weight = torch.tensor(float(self.pos_weight), dtype=logits.dtype, device=logits.device)
        loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
        return {"loss": self.weight * loss}
