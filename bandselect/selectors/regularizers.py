"""Regularizers of selector weights: entropy (rewards spread) and diversity (prevents collapse)."""

from __future__ import annotations

from typing import Any

import torch

from bandselect.errors import InputError, NonFiniteError, ShapeError
from bandselect.pipeline.node import Node, PortSpec
from bandselect.pipeline.registry import register_node
from bandselect.validation import as_tensor, check_float

WEIGHTS_PORT = PortSpec("weights", torch.float32, ("C",), "Channel selection weights")
LOSS_PORT = PortSpec("loss", torch.float32, (), "Weighted regularisation loss (scalar)")


def _validate_weights(weights: Any, owner: str) -> torch.Tensor:
    tensor = as_tensor(weights, "weights")
    if tensor.ndim != 1 or tensor.numel() == 0:
        raise ShapeError(
            f"{owner} input 'weights'",
            expected="a non-empty 1-D (C,) tensor of channel weights",
            found=f"shape {tuple(tensor.shape)}",
            fix="connect a selector's weights port (e.g. selector.weights)",
        )
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float32)
    if not bool(torch.isfinite(tensor).all()):
        raise NonFiniteError(
            f"{owner} input 'weights'",
            expected="finite weights",
            found=f"{int((~torch.isfinite(tensor)).sum())} NaN/Inf values",
            fix="lower the learning rate or check the selector for a diverged run",
        )
    return tensor


def weight_entropy(weights: torch.Tensor) -> torch.Tensor:
    """``H(p) = −Σ p log p`` of ``p = w / Σ w`` in nats, with a finite gradient where ``p`` is 0.

    At a low temperature a relaxation's weights underflow to exactly 0 in float32 (``exp(−104)`` is
    below the smallest subnormal). ``−p log p`` is 0 there, but its derivative ``−log p − 1`` is
    infinite, and the chain rule multiplies it by the relaxation's derivative (also 0): ``inf · 0``, a
    NaN gradient that stopped the seed's schedule at epoch ~30. The limit of the product is 0, so zero
    entries are taken out of the log (``log 1 = 0``) and contribute neither value nor gradient.

    Examples
    --------
    >>> w = torch.tensor([0.0, 1.5, 1.5], requires_grad=True)
    >>> entropy = weight_entropy(w)
    >>> round(entropy.item(), 4)  # log 2
    0.6931
    >>> entropy.backward(); bool(torch.isfinite(w.grad).all())
    True
    """
    p = weights / weights.sum()
    positive = p > 0
    safe = torch.where(positive, p, torch.ones_like(p))
    return -torch.where(positive, p * torch.log(safe), torch.zeros_like(p)).sum()


@register_node
class SelectorEntropyRegularizer(Node):
    """Entropy regularizer: rewards weights spread over many channels.

    With ``p = w / Σ w`` the loss is ``−weight · H(p)``, ``H(p) = −Σ p log p`` in nats. Minimising it
    maximises the entropy of the selection weights (the seed: "encourages diversity").

    Parameters
    ----------
    weight : float, default 0.01
        Loss weight (>= 0).

    Shape
    -----
    - weights: ``(C,)`` float32, non-negative with a positive sum
    - loss: ``()`` float32

    Examples
    --------
    >>> import torch
    >>> from bandselect.selectors import SelectorEntropyRegularizer
    >>> loss = SelectorEntropyRegularizer(weight=1.0).forward(weights=torch.ones(4))["loss"]
    >>> round(float(loss), 4)  # -log(4)
    -1.3863
    """

    INPUT_PORTS = (WEIGHTS_PORT,)
    OUTPUT_PORTS = (LOSS_PORT,)

    def __init__(self, weight: float = 0.01) -> None:
        weight = check_float(type(self).__name__, "weight", weight, minimum=0.0)
        super().__init__(weight=weight)
        self.weight = weight

    def forward(self, weights: Any) -> dict[str, torch.Tensor]:
        """Return ``{"loss": −weight · H(w / Σ w)}``."""
        tensor = _validate_weights(weights, type(self).__name__)
        if bool((tensor < 0).any()) or not bool(tensor.sum() > 0):
            raise InputError(
                f"{type(self).__name__} input 'weights'",
                expected="non-negative weights with a positive sum",
                found=f"min {float(tensor.min()):.4g}, sum {float(tensor.sum()):.4g}",
                fix="connect the weights port of a selector (softmax weights are non-negative)",
            )
        return {"loss": (-self.weight * weight_entropy(tensor)).to(torch.float32)}


@register_node
class SelectorDiversityRegularizer(Node):
    """Diversity regularizer: prevents the selection collapsing onto a few channels.

    Loss ``= weight · Σ_c relu(w_c − 1)²``. Each selected channel may carry at most weight 1 for free,
    so with weights summing to ``n_select`` the loss is zero only when the budget is spread over at
    least ``n_select`` channels (the seed's "Issue 1").

    Parameters
    ----------
    weight : float, default 0.05
        Loss weight (>= 0).

    Shape
    -----
    - weights: ``(C,)`` float32
    - loss: ``()`` float32

    Examples
    --------
    >>> import torch
    >>> from bandselect.selectors import SelectorDiversityRegularizer
    >>> regularizer = SelectorDiversityRegularizer(weight=0.05)
    >>> float(regularizer.forward(weights=torch.tensor([1.0, 1.0, 1.0, 0.0]))["loss"])
    0.0
    >>> round(float(regularizer.forward(weights=torch.tensor([0.0, 3.0, 0.0, 0.0]))["loss"]), 4)
    0.2
    """

    INPUT_PORTS = (WEIGHTS_PORT,)
    OUTPUT_PORTS = (LOSS_PORT,)

    def __init__(self, weight: float = 0.05) -> None:
        weight = check_float(type(self).__name__, "weight", weight, minimum=0.0)
        super().__init__(weight=weight)
        self.weight = weight

    def forward(self, weights: Any) -> dict[str, torch.Tensor]:
        """Return ``{"loss": weight · Σ relu(w − 1)²}``."""
        tensor = _validate_weights(weights, type(self).__name__)
        excess = torch.relu(tensor - 1.0)
        return {"loss": (self.weight * (excess**2).sum()).to(torch.float32)}
