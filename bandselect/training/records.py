"""What one epoch of gradient training leaves behind: :class:`EpochRecord`.

The gradient trainer appends one per epoch; checkpoints store them as plain dicts (``torch.load(...,
weights_only=True)`` reads only plain containers), and tracking, plots and reports read them as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EpochRecord"]


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of gradient training.

    Attributes
    ----------
    epoch
        Zero-based epoch number.
    loss
        Mean training loss (sum of the loss nodes) over the epoch's batches.
    val_loss
        Mean validation loss, or None without validation data.
    metrics
        Validation metrics, ``{"node.port": value}`` (``":hard"`` suffix: with hard selections).
    temperature
        Temperature of every annealed node at this epoch, ``{node: T}``.
    weights
        Deterministic soft weights of every weighted selector after the epoch, ``{node: (C,) weights}``.
    best
        With a best-epoch monitor: whether this epoch was the best so far; None without one.

    Examples
    --------
    >>> record = EpochRecord(epoch=0, loss=0.7, val_loss=None, metrics={"auroc.auroc": 0.9})
    >>> EpochRecord.from_dict(record.to_dict()) == record
    True
    """

    epoch: int
    loss: float
    val_loss: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    temperature: Mapping[str, float] = field(default_factory=dict)
    weights: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    best: bool | None = None

    def __repr__(self) -> str:
        # The weights are one float per band (hundreds): a notebook shows the three largest per selector.
        def top(values: tuple[float, ...]) -> str:
            order = sorted(range(len(values)), key=lambda i: -values[i])[:3]
            return "[" + ", ".join(f"{i}: {values[i]:.3f}" for i in order) + f"] of {len(values)}"

        weights = "{" + ", ".join(f"{name!r}: {top(tuple(v))}" for name, v in self.weights.items()) + "}"
        val_loss = "None" if self.val_loss is None else f"{self.val_loss:.4g}"
        metrics = {name: round(float(value), 4) for name, value in self.metrics.items()}
        temperature = {name: round(float(value), 4) for name, value in self.temperature.items()}
        return (
            f"EpochRecord(epoch={self.epoch}, loss={self.loss:.4g}, val_loss={val_loss}, metrics={metrics}, "
            f"temperature={temperature}, top weights={weights}, best={self.best})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain Python (for checkpoints and JSON)."""
        return {
            "epoch": self.epoch,
            "loss": self.loss,
            "val_loss": self.val_loss,
            "metrics": dict(self.metrics),
            "temperature": dict(self.temperature),
            "weights": {name: list(values) for name, values in self.weights.items()},
            "best": self.best,
        }

    @classmethod
    def from_dict(cls, content: Mapping[str, Any]) -> EpochRecord:
        """Rebuild a record from :meth:`to_dict` output."""
        return cls(
            epoch=int(content["epoch"]),
            loss=float(content["loss"]),
            val_loss=None if content.get("val_loss") is None else float(content["val_loss"]),
            metrics={str(k): float(v) for k, v in (content.get("metrics") or {}).items()},
            temperature={str(k): float(v) for k, v in (content.get("temperature") or {}).items()},
            weights={str(k): tuple(float(x) for x in v) for k, v in (content.get("weights") or {}).items()},
            best=None if content.get("best") is None else bool(content["best"]),
        )

    def finite_metrics(self) -> dict[str, float]:
        """The metrics that are finite numbers (NaN marks a batch without both classes)."""
        return {k: v for k, v in self.metrics.items() if math.isfinite(v)}
