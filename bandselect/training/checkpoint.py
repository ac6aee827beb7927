"""Checkpoints of gradient training: random-generator capture, atomic save, load and the resume checks.

A checkpoint holds everything a resumed run needs to end with exactly the weights of an uninterrupted
one: the pipeline's ``state_dict`` (parameters and buffers, e.g. the temperature), the optimizer state, the
history (:meth:`EpochRecord.to_dict` dicts), every random generator (torch, NumPy, Python and each
``torch.Generator`` a node keeps), the names of the trainable parameters and the best-epoch monitor's
state. It contains only tensors and plain containers, so ``torch.load(..., weights_only=True)`` reads it.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bandselect.errors import FileFormatError, TrainingError
from bandselect.pipeline import Pipeline
from bandselect.pipeline.persistence import load_torch_file
from bandselect.training.records import EpochRecord

__all__ = [
    "CHECKPOINT_FILE",
    "Checkpoint",
    "atomic_save",
    "capture_rng",
    "node_generators",
    "read_checkpoint",
    "restore_rng",
    "trainable_names",
]

#: File name of the checkpoint written into ``checkpoint_dir`` after every epoch.
CHECKPOINT_FILE = "last.pt"


def node_generators(pipeline: Pipeline) -> dict[str, torch.Generator]:
    """Every ``torch.Generator`` a node keeps (e.g. a selector's Gumbel noise), keyed ``node.attribute``."""
    found: dict[str, torch.Generator] = {}
    for name, node in pipeline.nodes.items():
        for attribute, value in vars(node).items():
            if isinstance(value, torch.Generator):
                found[f"{name}.{attribute}"] = value
    return found


def capture_rng(pipeline: Pipeline) -> dict[str, Any]:
    """The state of every random generator a training step draws from (global ones and the nodes')."""
    numpy_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        # NumPy's key array as an int64 tensor: weights_only loads accept tensors, not ndarrays.
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "python": random.getstate(),
        "generators": {key: g.get_state() for key, g in node_generators(pipeline).items()},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(pipeline: Pipeline, state: Mapping[str, Any]) -> None:
    """Put every generator back to ``state`` (from :func:`capture_rng`).

    Raises
    ------
    TrainingError
        The checkpoint has a node generator the pipeline lacks (another pipeline configuration).
    """
    generators = node_generators(pipeline)
    missing = [key for key in state["generators"] if key not in generators]
    if missing:
        raise TrainingError(
            "cannot restore the checkpoint's random generators",
            expected=f"generators {missing} in the pipeline",
            found=f"generators {sorted(generators)}",
            fix="resume with the same pipeline configuration that wrote the checkpoint",
        )
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    for key, value in state["generators"].items():
        generators[key].set_state(value)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_names(pipeline: Pipeline) -> list[str]:
    """Names of the parameters with ``requires_grad``, in ``named_parameters`` order."""
    return [name for name, parameter in pipeline.named_parameters() if parameter.requires_grad]


def atomic_save(state: Mapping[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: a crash keeps the previous file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as f:
            torch.save(dict(state), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_name, path)
    finally:
        Path(temp_name).unlink(missing_ok=True)


@dataclass
class Checkpoint:
    """The state of a training run after ``epoch`` (see the module docstring).

    Attributes
    ----------
    epoch
        The last completed epoch (zero-based); a resumed run continues at ``epoch + 1``.
    model, optimizer
        ``pipeline.state_dict()`` and ``optimizer.state_dict()``.
    history
        One :class:`EpochRecord` per completed epoch.
    rng
        :func:`capture_rng` output.
    trainable
        :func:`trainable_names` of the pipeline that wrote it.
    best
        The best-epoch monitor's state (``{"epoch", "value", "model"}``, see
        :meth:`~bandselect.training.monitor.BestEpochMonitor.state_dict`); empty without a monitor.
    """

    epoch: int
    model: Mapping[str, torch.Tensor]
    optimizer: Mapping[str, Any]
    history: list[EpochRecord]
    rng: Mapping[str, Any]
    trainable: list[str]
    best: Mapping[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """Write atomically to ``path`` (plain containers and tensors only)."""
        atomic_save(
            {
                "epoch": self.epoch,
                "model": dict(self.model),
                "optimizer": dict(self.optimizer),
                "history": [record.to_dict() for record in self.history],
                "rng": dict(self.rng),
                "trainable": list(self.trainable),
                "best": dict(self.best),
            },
            path,
        )

    def check_resumable(self, pipeline: Pipeline) -> None:
        """Raise :class:`TrainingError` unless ``pipeline`` trains the same parameters as the checkpoint's."""
        trainable = trainable_names(pipeline)
        if trainable != self.trainable:
            raise TrainingError(
                "cannot resume: the pipeline's trainable parameters differ from the checkpoint's",
                expected=f"trainable {self.trainable}",
                found=f"trainable {trainable}",
                fix="unfreeze the same nodes as in the interrupted run before resuming",
            )


def read_checkpoint(path: Path | None) -> Checkpoint:
    """Load a checkpoint written by :meth:`Checkpoint.save` (``weights_only=True``, onto the CPU).

    Raises
    ------
    TrainingError
        No checkpoint directory, or no checkpoint file in it.
    FileFormatError
        A file that is not a checkpoint (empty, truncated, garbage, or missing entries).
    """
    if path is None or not path.is_file():
        raise TrainingError(
            "cannot resume",
            expected=f"a checkpoint {CHECKPOINT_FILE} in checkpoint_dir",
            found="no checkpoint_dir" if path is None else f"no file {path}",
            fix="pass the checkpoint_dir of the interrupted run, or fit(resume=False)",
        )
    state = load_torch_file(path, "checkpoint")
    try:
        history: Sequence[Mapping[str, Any]] = state["history"]
        return Checkpoint(
            epoch=int(state["epoch"]),
            model=state["model"],
            optimizer=state["optimizer"],
            history=[EpochRecord.from_dict(entry) for entry in history],
            rng=state["rng"],
            trainable=list(state["trainable"]),
            best=state.get("best") or {},
        )
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise FileFormatError(
            f"checkpoint {path}",
            expected=f"a checkpoint written by {Checkpoint.__name__}.save (epoch, model, optimizer, history, "
            "rng, trainable)",
            found=f"{type(error).__name__}: {str(error)[:200]}"
            + ("" if isinstance(state, Mapping) else f" (the file holds a {type(state).__name__})"),
            fix="pass the checkpoint_dir of the interrupted run, or fit(resume=False) to start again",
        ) from error
