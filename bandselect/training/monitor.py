"""The best-epoch monitor of gradient training: which epoch's weights to keep.

A validation metric (``"node.port"``) picks the best epoch among the eligible ones. Annealed selectors
are only worth keeping once their temperature has reached its floor (before that the weights are spread
by design), so the first eligible epoch defaults to the first epoch at the floor, read from each node's
pure schedule :meth:`~bandselect.pipeline.node.Annealed.temperature_at` (no node state changes). A key
ending in ``":hard"`` is the metric computed in a second validation pass with every weighted selector
switched to its hard top-``n_select`` selection: the selection a user deploys, not the soft weights it
was trained with.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import torch

from bandselect.pipeline import Pipeline
from bandselect.pipeline.node import Annealed, WeightedSelector
from bandselect.training.checkpoint import atomic_save

__all__ = ["BEST_FILE", "HARD_SUFFIX", "BestEpochMonitor", "floor_epoch", "hard_selections"]

#: File name of the best epoch's weights, written into ``checkpoint_dir`` whenever they improve.
BEST_FILE = "best.pt"
#: Suffix of metrics computed with every selector switched to its hard top-k selection.
HARD_SUFFIX = ":hard"  # MLflow metric names allow ":" (not "@")

MonitorMode = Literal["max", "min"]


def floor_epoch(pipeline: Pipeline, max_epochs: int) -> int:
    """The first epoch at which every annealed node's schedule has reached its floor.

    Pure: each node's :meth:`~bandselect.pipeline.node.Annealed.temperature_at` is asked, no temperature
    is changed. 0 when nothing anneals; ``max_epochs - 1`` when a schedule does not reach its floor
    within the run (the last epoch is always eligible).
    """
    first = 0
    for node in pipeline.nodes.values():
        if not isinstance(node, Annealed):
            continue
        reached = (e for e in range(max_epochs) if node.temperature_at(e) <= node.temperature_min)
        first = max(first, next(reached, max_epochs - 1))
    return first


@contextmanager
def hard_selections(pipeline: Pipeline) -> Iterator[list[str]]:
    """Switch every weighted selector to its hard top-``n_select`` selection inside the block.

    Yields the names of the switched nodes; their ``hard`` flags are restored on exit (also on error).
    """
    selectors = {name: node for name, node in pipeline.nodes.items() if isinstance(node, WeightedSelector)}
    previous = {name: node.hard for name, node in selectors.items()}
    try:
        for node in selectors.values():
            node.hard = True
        yield list(selectors)
    finally:
        for name, node in selectors.items():
            node.hard = previous[name]


class BestEpochMonitor:
    """Track the best epoch by a validation metric and keep its weights.

    Parameters
    ----------
    key
        Metric key ``"node.port"``, optionally with :data:`HARD_SUFFIX`.
    mode
        ``"max"``: larger is better (AUROC); ``"min"``: smaller is better (a loss).
    first_epoch
        Epochs before it are never chosen (see :func:`floor_epoch`).
    directory
        Where :data:`BEST_FILE` is written atomically whenever the best improves (None: nowhere).

    Attributes
    ----------
    best_epoch, best_value
        The best epoch so far and its metric (None before the first eligible finite value).
    best_state
        A CPU copy of the pipeline's ``state_dict`` at the best epoch (parameters and buffers).
    """

    def __init__(self, key: str, mode: MonitorMode, first_epoch: int, directory: Path | None = None) -> None:
        self.key = key
        self.mode: MonitorMode = mode
        self.first_epoch = int(first_epoch)
        self.directory = directory
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    @property
    def needs_hard_pass(self) -> bool:
        """Whether the monitored metric comes from the hard-selection validation pass."""
        return self.key.endswith(HARD_SUFFIX)

    @property
    def base_key(self) -> str:
        """The metric key without :data:`HARD_SUFFIX`."""
        return self.key.removesuffix(HARD_SUFFIX)

    def _better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value > self.best_value if self.mode == "max" else value < self.best_value

    def update(self, epoch: int, metrics: Mapping[str, float], pipeline: Pipeline) -> bool:
        """Record ``epoch``'s metrics; keep the weights when it is the best so far. Returns whether it was.

        A missing or non-finite value (NaN: a validation region without both classes) is never best.
        """
        value = metrics.get(self.key)
        if epoch < self.first_epoch or value is None or not math.isfinite(value):
            return False
        if not self._better(value):
            return False
        self.best_epoch, self.best_value = int(epoch), float(value)
        self.best_state = {k: v.detach().cpu().clone() for k, v in pipeline.state_dict().items()}
        if self.directory is not None:
            atomic_save(self.state_dict(), self.directory / BEST_FILE)
        return True

    def restore(self, pipeline: Pipeline) -> bool:
        """Load the best epoch's weights into ``pipeline``; False when no epoch was best."""
        if self.best_state is None:
            return False
        pipeline.load_state_dict(self.best_state)
        return True

    def state_dict(self) -> dict[str, Any]:
        """``{"epoch", "value", "model"}`` (plain containers and tensors, for checkpoints)."""
        return {"epoch": self.best_epoch, "value": self.best_value, "model": self.best_state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict` output (an empty mapping: nothing best yet)."""
        self.best_epoch = state.get("epoch")
        self.best_value = state.get("value")
        self.best_state = state.get("model")
