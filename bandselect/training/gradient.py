"""Gradient training of a pipeline: a plain, readable PyTorch loop.

Per epoch: ``update_temperature(epoch)`` on every :class:`~bandselect.pipeline.node.Annealed` node, one
pass over the training batches (sum of the loss nodes → backward → optimizer step), one pass over the
validation batches (loss and metric nodes, no gradients), an :class:`EpochRecord`, the best-epoch
monitor (``monitor.py``) and an atomic checkpoint (``checkpoint.py``). A run resumed from the checkpoint
continues the temperature schedule, the optimizer and every random generator, so it ends with exactly the
weights of an uninterrupted run (on CPU).

Ignored pixels (a datamodule with ``ignore_label``: batches with a ``valid`` entry) have no input in the
loss and metric nodes: their ``mask`` is False, so a node reading the mask would count them as negatives.
The trainer therefore refuses, with a ``LabelError`` naming the node, a batch that holds ignored pixels
when a node it runs reads ``data.mask``; nodes that do not read the mask see them as the scene pixels
they are. :func:`~bandselect.training.train_two_phase` checks this before its first phase.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from bandselect.errors import ConfigError, LabelError, TrainingError
from bandselect.names import DATA_NODE, PORT_CUBE, PORT_MASK, PORT_VALID
from bandselect.pipeline import Pipeline
from bandselect.pipeline.node import LOSS_PORT, Annealed, WeightedSelector
from bandselect.progress import report_epoch
from bandselect.training.checkpoint import (
    CHECKPOINT_FILE,
    Checkpoint,
    capture_rng,
    read_checkpoint,
    restore_rng,
    trainable_names,
)
from bandselect.training.monitor import HARD_SUFFIX, BestEpochMonitor, floor_epoch, hard_selections
from bandselect.training.protocols import DataModule, EpochAwareDataModule, ValidationDataModule
from bandselect.training.records import EpochRecord
from bandselect.training.roles import loss_node_names, metric_node_names, trainable_parameters
from bandselect.validation import check_float, check_int

if TYPE_CHECKING:
    from bandselect.training.config import TrainingConfig

__all__ = [
    "OPTIMIZERS",
    "GradientTrainer",
    "mask_readers",
    "require_validity",
    "resolve_device",
    "trained_nodes",
    "validity_gaps",
]

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else as ``torch.device``.

    Raises
    ------
    ConfigError
        CUDA was asked for but is not available, or the name is not a device.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            "unknown device",
            expected="'auto', 'cpu', 'cuda' or 'cuda:N'",
            found=repr(device),
            fix="pass device='auto'",
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "CUDA device requested",
            expected="a machine with a CUDA GPU and a CUDA build of torch",
            found="torch.cuda.is_available() is False",
            fix="pass device='auto' or 'cpu'",
        )
    return resolved


def mask_readers(pipeline: Pipeline, names: Iterable[str]) -> list[tuple[str, str]]:
    """``(node, port)`` of the nodes among ``names`` and their upstream nodes fed by ``data.mask``."""
    involved: set[str] = set()
    for name in names:
        involved |= {name} | pipeline.upstream_of(name)
    return [
        (name, port)
        for name in pipeline.topological_order()
        if name in involved
        for port in pipeline.nodes[name].INPUT_PORTS
        if pipeline.source_of(name, port) == (DATA_NODE, PORT_MASK)
    ]


_LOG = logging.getLogger(__name__)

#: A batch with ignored pixels is trained on only with at least this many valid negative pixels (two
#: estimate a covariance); others are skipped (:meth:`GradientTrainer._with_validity`).
MIN_COUNTED_BACKGROUND = 2


def validity_gaps(pipeline: Pipeline, names: Iterable[str]) -> list[str]:
    """The nodes among ``names`` and their upstream nodes that would count ignored pixels.

    A node with a ``valid`` input (:data:`~bandselect.names.PORT_VALID`: the loss, the AUROC metric,
    the score head, RX) leaves ignored pixels out only when ``data.valid`` feeds it; a node that reads
    ``data.mask`` without having that input would count them as negatives. Each is named with what to
    connect.
    """
    involved: set[str] = set()
    for name in names:
        involved |= {name} | pipeline.upstream_of(name)
    gaps = []
    for name in pipeline.topological_order():
        if name not in involved:
            continue
        ports = pipeline.nodes[name].INPUT_PORTS
        kind = type(pipeline.nodes[name]).__name__
        if PORT_VALID in ports:
            # A node whose configuration does not use its valid input (a fitted RX background, a head
            # that does not standardise) counts nothing wrongly without it.
            used = getattr(pipeline.nodes[name], "reads_valid", True)
            if used and pipeline.source_of(name, PORT_VALID) != (DATA_NODE, PORT_VALID):
                gaps.append(f"{name} ({kind}): connect data.valid to {name}.valid")
        elif any(pipeline.source_of(name, port) == (DATA_NODE, PORT_MASK) for port in ports):
            gaps.append(f"{name} ({kind}) reads data.mask and has no valid input")
    return gaps


def trained_nodes(pipeline: Pipeline) -> list[str]:
    """The loss and metric nodes of ``pipeline``: what a gradient phase evaluates on every batch."""
    return [*loss_node_names(pipeline, None), *metric_node_names(pipeline, None)]


def require_validity(
    pipeline: Pipeline, names: Iterable[str] | None = None, *, what: str, found: str = ""
) -> None:
    """Refuse ignored pixels for a pipeline that would count them (:func:`validity_gaps` of ``names``,
    default its loss and metric nodes): a ``LabelError`` about ``what`` naming each connection to make.
    ``found`` starts the error's description of what was found."""
    gaps = validity_gaps(pipeline, trained_nodes(pipeline) if names is None else names)
    if gaps:
        raise LabelError(
            what,
            expected="every loss, metric and node upstream of them that reads the mask or batch statistics "
            "fed by data.valid (they leave the ignored and invalid pixels out)",
            found=found + "; ".join(gaps),
            fix="connect data.valid to those nodes' valid ports (the shipped recipe does), or train on data "
            "without ignored (ignore_label) or invalid pixels",
        )


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _scalar(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().double().mean().item())
    return float(value)


class GradientTrainer:
    """Train the unfrozen parameters of a pipeline on the sum of its loss nodes.

    Parameters
    ----------
    pipeline
        The pipeline; nodes are trained in place.
    datamodule
        A :class:`~bandselect.training.protocols.DataModule`: ``train_dataloader()`` yielding ``{"cube",
        "mask", "wavelengths"}`` dicts, called once per epoch. With ``val_dataloader()``
        (:class:`~bandselect.training.protocols.ValidationDataModule`) losses and metrics are evaluated
        on validation batches; with ``set_epoch(epoch)``
        (:class:`~bandselect.training.protocols.EpochAwareDataModule`) it is told the epoch first (so
        random patches differ per epoch yet a resumed run draws the same ones).
    loss_nodes
        Names of the nodes whose ``loss`` outputs are summed (task loss + regularizers). Default: every
        loss node (:func:`~bandselect.pipeline.node.is_loss_node`).
    optimizer
        ``"adam"``, ``"adamw"`` or ``"sgd"``, over every parameter with ``requires_grad``.
    lr
        Learning rate.
    max_epochs
        Number of epochs (a resumed run continues up to it).
    metric_nodes
        Nodes evaluated on validation batches (their scalar outputs are averaged over the batches and
        recorded as ``"node.port"``). Default: every :class:`~bandselect.pipeline.node.Metric` node
        (e.g. ``AUROC``).
    checkpoint_dir
        Where ``last.pt`` is written atomically after each epoch (None: no checkpoints).
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ...
    seed
        Seeds torch, NumPy and Python's ``random`` at the start of a fresh run.
    progress
        Show a progress bar over epochs with the last loss and metrics.
    allow_frozen
        Names of :class:`~bandselect.pipeline.node.Freezable` nodes that may stay frozen. Any other
        frozen one that feeds a loss is an error (the seed's "Issue 3": training would silently leave it
        untouched).
    monitor
        A validation metric key (``"node.port"``) that picks the best epoch, or None (keep the last
        epoch). A key ending in ``":hard"`` (e.g. ``"auroc.auroc:hard"``) is that metric computed in a
        second validation pass with every :class:`~bandselect.pipeline.node.WeightedSelector` switched
        to its hard top-``n_select`` selection (see :mod:`bandselect.training.monitor`). Those metrics
        are recorded too.
    monitor_mode
        ``"max"`` (default) or ``"min"``: whether larger monitored values are better.
    monitor_from_epoch
        The first epoch that may be chosen as best. None (default): the first epoch at which every
        :class:`~bandselect.pipeline.node.Annealed` node's schedule has reached its floor
        (:func:`~bandselect.training.monitor.floor_epoch`, computed without changing any node); 0 if
        nothing anneals.
    restore_best
        With ``monitor``: load the best epoch's weights into the pipeline when training ends (default
        True). They are also written to ``checkpoint_dir/best.pt`` whenever they improve.
    epoch_metrics
        Metrics computed outside the pipeline after each epoch's validation, ``{key: function()}``: a
        float (recorded with the validation metrics, and a possible ``monitor`` key) or None (not
        recorded). :func:`~bandselect.training.train_two_phase` adds the held-out RX AUROC of the hard
        selection this way (``selection.rx_auroc``).

    Attributes
    ----------
    history
        One :class:`~bandselect.training.records.EpochRecord` per completed epoch.
    best_epoch, best_value
        The best epoch by ``monitor`` and its metric (None without ``monitor``).
    device
        The device used.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from bandselect.pipeline import Pipeline
    >>> from bandselect.nodes import AnomalyBCELoss, RXDetector, ScoreToLogit
    >>> from bandselect.training import ArrayDataModule
    >>> rng = np.random.default_rng(0)
    >>> cube = rng.normal(size=(1, 16, 16, 4)).astype(np.float32)
    >>> mask = np.zeros((1, 16, 16), bool); mask[0, :2, :2] = True; cube[mask] += 4.0
    >>> pipeline = Pipeline()
    >>> pipeline.add_node(RXDetector(input_channels=4, background="batch"), name="rx")
    'rx'
    >>> pipeline.add_node(ScoreToLogit(), name="head")
    'head'
    >>> pipeline.add_node(AnomalyBCELoss(), name="bce")
    'bce'
    >>> pipeline.connect(("data.cube", "rx.data"), ("rx.scores", "head.scores"),
    ...                  ("head.logits", "bce.logits"), ("data.mask", "bce.mask"))
    >>> dm = ArrayDataModule(cube, mask, wavelengths=[450.0, 550.0, 650.0, 750.0])
    >>> trainer = GradientTrainer(pipeline, dm, lr=0.1, max_epochs=3, progress=False, device="cpu")
    >>> history = trainer.fit()
    >>> len(history), history[-1].loss < history[0].loss
    (3, True)
    """

    def __init__(
        self,
        pipeline: Pipeline,
        datamodule: DataModule,
        *,
        loss_nodes: Sequence[str] | None = None,
        optimizer: str = "adam",
        lr: float = 1e-2,
        max_epochs: int = 10,
        metric_nodes: Sequence[str] | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        device: str | torch.device = "auto",
        seed: int = 0,
        progress: bool = True,
        allow_frozen: Sequence[str] = (),
        monitor: str | None = None,
        monitor_mode: str = "max",
        monitor_from_epoch: int | None = None,
        restore_best: bool = True,
        epoch_metrics: Mapping[str, Callable[[], float | None]] | None = None,
    ) -> None:
        if not isinstance(pipeline, Pipeline):
            raise ConfigError(
                "GradientTrainer pipeline",
                expected="a bandselect.pipeline.Pipeline",
                found=type(pipeline).__name__,
                fix="build the nodes into a Pipeline first",
            )
        if not isinstance(datamodule, DataModule):
            raise ConfigError(
                "GradientTrainer datamodule",
                expected="a DataModule (an object with train_dataloader())",
                found=type(datamodule).__name__,
                fix="pass an ArrayDataModule, CampaignDataModule or PatchDataModule",
            )
        if optimizer not in OPTIMIZERS:
            raise ConfigError(
                "GradientTrainer optimizer",
                expected=f"one of {sorted(OPTIMIZERS)}",
                found=repr(optimizer),
                fix="use optimizer='adam'",
            )
        lr = check_float("GradientTrainer", "lr", lr, minimum=0.0, strict_minimum=True)
        max_epochs = check_int("GradientTrainer", "max_epochs", max_epochs, minimum=1)
        if monitor_mode not in ("max", "min"):
            raise ConfigError(
                "GradientTrainer monitor_mode",
                expected="'max' or 'min'",
                found=repr(monitor_mode),
                fix="use monitor_mode='max' for AUROC",
            )
        if monitor_from_epoch is not None:
            monitor_from_epoch = check_int(
                "GradientTrainer", "monitor_from_epoch", monitor_from_epoch, minimum=0
            )
        self.pipeline = pipeline
        self.datamodule = datamodule
        self.optimizer_name = optimizer
        self.lr = float(lr)
        self.max_epochs = max_epochs
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.device = resolve_device(device)
        self.seed = int(seed)
        self.progress = bool(progress)
        self.allow_frozen = tuple(allow_frozen)
        self.loss_nodes = loss_node_names(pipeline, loss_nodes)
        self.metric_nodes = metric_node_names(pipeline, metric_nodes)
        # Per node set run on batches with ignored pixels: whether a node reads the mask (their
        # validity checked once, when first seen; see _with_validity).
        self._reads_mask: dict[tuple[str, ...], bool] = {}
        self.epoch_metrics = dict(epoch_metrics or {})
        if monitor is not None:
            base = monitor.removesuffix(HARD_SUFFIX)
            known = {f"{n}.{p}" for n in self.metric_nodes for p in self.pipeline.nodes[n].OUTPUT_PORTS}
            if base not in known and monitor not in self.epoch_metrics:
                raise ConfigError(
                    "GradientTrainer monitor",
                    expected=f"a metric key, one of {sorted(known)} (optionally with '{HARD_SUFFIX}') "
                    f"or {sorted(self.epoch_metrics)}",
                    found=repr(monitor),
                    fix="add the metric node to the pipeline or pass monitor=None",
                )
        self.monitor = monitor
        self.monitor_mode = monitor_mode
        self.monitor_from_epoch = monitor_from_epoch
        self.restore_best = bool(restore_best)
        self.best_monitor: BestEpochMonitor | None = None
        self.history: list[EpochRecord] = []
        self.optimizer: torch.optim.Optimizer | None = None

    @classmethod
    def from_config(
        cls,
        pipeline: Pipeline,
        datamodule: DataModule,
        config: TrainingConfig,
        *,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        progress: bool = False,
        epoch_metrics: Mapping[str, Callable[[], float | None]] | None = None,
    ) -> GradientTrainer:
        """A trainer with the optimisation and monitor settings of a :class:`TrainingConfig`.

        The config's data settings (patches, rows) describe the datamodule, which is built separately
        (see :func:`~bandselect.training.train_two_phase`).
        """
        return cls(
            pipeline,
            datamodule,
            optimizer=config.optimizer,
            lr=config.lr,
            max_epochs=config.epochs,
            checkpoint_dir=checkpoint_dir,
            device=config.device,
            seed=config.seed,
            progress=progress,
            monitor=config.monitor,
            monitor_mode=config.monitor_mode,
            monitor_from_epoch=config.monitor_from_epoch,
            restore_best=config.restore_best,
            epoch_metrics=epoch_metrics,
        )

    # -- checkpoints -----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        """``checkpoint_dir / "last.pt"``, or None without a checkpoint directory."""
        return None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT_FILE

    @property
    def best_epoch(self) -> int | None:
        """The best epoch by ``monitor`` (None without a monitor or before an eligible epoch)."""
        return None if self.best_monitor is None else self.best_monitor.best_epoch

    @property
    def best_value(self) -> float | None:
        """The monitored metric at :attr:`best_epoch`."""
        return None if self.best_monitor is None else self.best_monitor.best_value

    def _save_checkpoint(self, epoch: int) -> None:
        path = self.checkpoint_path
        if path is None or self.optimizer is None:
            return
        Checkpoint(
            epoch=epoch,
            model=self.pipeline.state_dict(),
            optimizer=self.optimizer.state_dict(),
            history=self.history,
            rng=capture_rng(self.pipeline),
            trainable=trainable_names(self.pipeline),
            best={} if self.best_monitor is None else self.best_monitor.state_dict(),
        ).save(path)

    def _resume(self) -> int:
        """Load the checkpoint into the pipeline, optimizer, history, generators and monitor; next epoch."""
        checkpoint = read_checkpoint(self.checkpoint_path)
        checkpoint.check_resumable(self.pipeline)
        self.pipeline.load_state_dict(checkpoint.model)
        assert self.optimizer is not None  # created by fit() before resuming
        self.optimizer.load_state_dict(checkpoint.optimizer)
        self.history = list(checkpoint.history)
        restore_rng(self.pipeline, checkpoint.rng)
        if self.best_monitor is not None:
            self.best_monitor.load_state_dict(checkpoint.best)
        return checkpoint.epoch + 1

    # -- loop ------------------------------------------------------------------------------------
    def _with_validity(self, batch: Mapping[str, Any], names: Sequence[str]) -> Mapping[str, Any] | None:
        """``batch`` for the nodes ``names``; with ignored pixels (``valid`` False) every node involved
        must leave them out (:func:`validity_gaps`, else a ``LabelError``), and their values are set to
        0: an ignored pixel may hold anything, and a NaN there would reach the selector's gradient
        through the product even where the loss leaves the pixel out. None (skip the batch) when it
        holds fewer than :data:`MIN_COUNTED_BACKGROUND` counted background pixels (valid pixels; valid
        negatives when a node reads the mask): a patch drawn on a no-data border has nothing to
        estimate a batch statistic from."""
        valid = batch.get(PORT_VALID)
        if valid is None:
            return batch
        flags = torch.as_tensor(valid, dtype=torch.bool)
        n_ignored = int((~flags).sum())
        if not n_ignored:
            return batch
        key = tuple(names)
        if key not in self._reads_mask:  # the graph is fixed during a fit: checked once per node set
            require_validity(
                self.pipeline,
                names,
                what=f"a training batch holds {n_ignored} ignored or invalid pixels (ignore_label, or "
                "flagged invalid in the store), and the gradient phase would count them",
            )
            self._reads_mask[key] = bool(mask_readers(self.pipeline, names))
        counted = flags
        mask = batch.get(PORT_MASK)
        if mask is not None and self._reads_mask[key]:  # a background of negatives
            counted = flags & ~torch.as_tensor(mask, dtype=torch.bool).reshape(flags.shape)
        if int(counted.sum()) < MIN_COUNTED_BACKGROUND:
            return None  # no batch statistic (RX's background, the head's mean) can be estimated
        cube = batch[PORT_CUBE]
        zero = torch.zeros((), dtype=cube.dtype, device=cube.device)
        return {**batch, PORT_CUBE: torch.where(flags.to(cube.device), cube, zero)}

    def _check_mask(self, batch: Mapping[str, Any], names: Iterable[str]) -> None:
        if batch.get(PORT_MASK) is not None:
            return
        for name in names:
            for port in self.pipeline.nodes[name].INPUT_PORTS:
                if self.pipeline.source_of(name, port) == (DATA_NODE, PORT_MASK):
                    raise LabelError(
                        f"node {name!r} ({type(self.pipeline.nodes[name]).__name__}) needs the label mask "
                        f"on {name}.{port}",
                        expected="batches with a 'mask' entry (B, H, W, 1) bool",
                        found=f"a batch with keys {sorted(batch)}",
                        fix="give the datamodule a mask (labels) for a supervised loss",
                    )

    def _losses(self, outputs: Mapping[str, Mapping[str, Any]]) -> torch.Tensor:
        total: torch.Tensor | None = None
        for name in self.loss_nodes:
            value = outputs[name][LOSS_PORT]
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                raise TrainingError(
                    f"loss node {name!r} returned a non-scalar loss",
                    expected="a scalar tensor",
                    found=type(value).__name__ if not isinstance(value, torch.Tensor) else tuple(value.shape),
                    fix="reduce the loss to a scalar in the node's forward",
                )
            total = value.reshape(()) if total is None else total + value.reshape(())
        assert total is not None  # loss_nodes is never empty (checked in __init__)
        return total

    def _nan_error(self, epoch: int, batch_index: int, what: str) -> TrainingError:
        kept = (
            f"the last good checkpoint {self.checkpoint_path} (epoch {epoch - 1}) is kept"
            if self.checkpoint_path is not None and self.checkpoint_path.is_file()
            else "no checkpoint was written (no checkpoint_dir, or none completed)"
        )
        return TrainingError(
            f"{what} is not finite at epoch {epoch}, batch {batch_index}; training stopped and {kept}",
            expected="a finite loss",
            found="NaN or Inf",
            fix="lower the learning rate, check the data for NaN/Inf, and resume with fit(resume=True)",
        )

    def _train_epoch(self, epoch: int) -> float:
        assert self.optimizer is not None  # created by fit()
        self.pipeline.train()
        total, count = 0.0, 0
        skipped = 0
        for batch_index, given in enumerate(self.datamodule.train_dataloader()):
            raw = self._with_validity(given, self.loss_nodes)
            if raw is None:
                skipped += 1
                continue
            self._check_mask(raw, self.loss_nodes)
            batch = _to_device(raw, self.device)
            outputs = self.pipeline(outputs=self.loss_nodes, **batch)
            loss = self._losses(outputs)
            if not torch.isfinite(loss):
                raise self._nan_error(epoch, batch_index, "the training loss")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # One device sync for all gradients instead of one per parameter.
            grads = [p.grad for group in self.optimizer.param_groups for p in group["params"]]
            grads = [g for g in grads if g is not None]
            if grads and not torch.stack([torch.isfinite(g).all() for g in grads]).all():
                raise self._nan_error(epoch, batch_index, "a gradient")
            self.optimizer.step()
            total += float(loss.detach())
            count += 1
        if count == 0:
            raise TrainingError(
                f"no training batches in epoch {epoch}",
                expected="a non-empty train_dataloader() with counted pixels",
                found=f"0 batches trained ({skipped} skipped: fewer than {MIN_COUNTED_BACKGROUND} valid "
                "(negative) pixels, the rest ignored)",
                fix="give the datamodule training data (rows and patches that are not all ignore_label)",
            )
        if skipped:
            _LOG.warning(
                "epoch %d: %d of %d training batches skipped (fewer than %d valid (negative) pixels)",
                epoch, skipped, skipped + count, MIN_COUNTED_BACKGROUND,
            )  # fmt: skip
        return total / count

    def _validate(self) -> tuple[float | None, dict[str, float]]:
        if not isinstance(self.datamodule, ValidationDataModule):
            return None, {}
        loader = self.datamodule.val_dataloader()
        if loader is None:
            return None, {}
        hard_pass = self.best_monitor is not None and self.best_monitor.needs_hard_pass
        if hard_pass:
            loader = list(loader)  # replayed by the hard pass; otherwise streamed, not held in memory
        loss, metrics = self._validation_pass(loader)
        if hard_pass:
            with hard_selections(self.pipeline):
                _, hard = self._validation_pass(loader)
            metrics.update({f"{k}{HARD_SUFFIX}": v for k, v in hard.items()})
        return loss, metrics

    def _validation_pass(self, loader: Iterable[Any]) -> tuple[float | None, dict[str, float]]:
        self.pipeline.eval()
        losses: list[float] = []
        values: dict[str, list[float]] = {}
        with torch.no_grad():
            for given in loader:
                raw = self._with_validity(given, [*self.loss_nodes, *self.metric_nodes])
                if raw is None:
                    continue
                self._check_mask(raw, [*self.loss_nodes, *self.metric_nodes])
                batch = _to_device(raw, self.device)
                outputs = self.pipeline(outputs=[*self.loss_nodes, *self.metric_nodes], **batch)
                losses.append(float(self._losses(outputs)))
                for name in self.metric_nodes:
                    for port, value in outputs[name].items():
                        values.setdefault(f"{name}.{port}", []).append(_scalar(value))
        # NaN marks a batch without both classes: averaged over the others, NaN only when all are.
        metrics = {k: float(np.nanmean(v)) if not all(np.isnan(v)) else math.nan for k, v in values.items()}
        return (float(np.mean(losses)) if losses else None), metrics

    def _record(
        self, epoch: int, loss: float, val_loss: float | None, metrics: dict[str, float]
    ) -> EpochRecord:
        nodes = self.pipeline.nodes
        best = None
        if self.best_monitor is not None:
            best = self.best_monitor.update(epoch, metrics, self.pipeline)
        return EpochRecord(
            epoch=epoch,
            loss=loss,
            val_loss=val_loss,
            metrics=metrics,
            temperature={
                n: float(node.temperature) for n, node in nodes.items() if isinstance(node, Annealed)
            },
            weights={
                n: tuple(node.get_selection_weights(hard=False).detach().cpu().tolist())
                for n, node in nodes.items()
                if isinstance(node, WeightedSelector)
            },
            best=best,
        )

    def fit(self, resume: bool = False) -> list[EpochRecord]:
        """Train for ``max_epochs`` (or the remaining epochs of a checkpointed run).

        Parameters
        ----------
        resume
            Continue from ``checkpoint_dir/last.pt``: weights, optimizer state, history, the random
            generators, the best epoch so far and the epoch counter (so the temperature schedule
            continues).

        Returns
        -------
        list of EpochRecord
            :attr:`history`.

        Raises
        ------
        TrainingError
            Frozen or no trainable parameters, a non-finite loss or gradient (the last good checkpoint is
            kept), missing checkpoint on resume, empty training data.
        LabelError
            A loss or metric node needs ``data.mask`` and the batches carry none, or a node reading the
            mask meets a batch with ignored pixels (see the module docstring).
        """
        self.pipeline.to(self.device)
        parameters = trainable_parameters(self.pipeline, self.loss_nodes, self.allow_frozen)
        self.optimizer = OPTIMIZERS[self.optimizer_name](parameters, lr=self.lr)
        self.best_monitor = None
        if self.monitor is not None:
            first = self.monitor_from_epoch
            self.best_monitor = BestEpochMonitor(
                self.monitor,
                self.monitor_mode,  # type: ignore[arg-type]  # checked in __init__
                floor_epoch(self.pipeline, self.max_epochs) if first is None else first,
                self.checkpoint_dir,
            )
        if resume:
            start = self._resume()
        else:
            torch.manual_seed(self.seed)
            np.random.seed(self.seed % 2**32)
            random.seed(self.seed)
            self.history = []
            start = 0
        annealed = [node for node in self.pipeline.nodes.values() if isinstance(node, Annealed)]
        epochs = tqdm(
            range(start, self.max_epochs),
            initial=start,
            total=self.max_epochs,
            desc="gradient training",
            disable=not self.progress,
        )
        for epoch in epochs:
            for node in annealed:
                node.update_temperature(epoch)
            if isinstance(self.datamodule, EpochAwareDataModule):
                self.datamodule.set_epoch(epoch)
            train_loss = self._train_epoch(epoch)
            val_loss, metrics = self._validate()
            for key, function in self.epoch_metrics.items():
                value = function()
                if value is not None:
                    metrics[key] = float(value)
            self.history.append(self._record(epoch, train_loss, val_loss, metrics))
            self._save_checkpoint(epoch)
            report_epoch(self.history[-1], self.max_epochs)
            epochs.set_postfix({"loss": f"{train_loss:.4g}", **{k: f"{v:.4f}" for k, v in metrics.items()}})
        if self.restore_best and self.best_monitor is not None:
            # The best epoch's parameters and buffers (e.g. the temperature).
            self.best_monitor.restore(self.pipeline)
        self.pipeline.eval()
        return self.history
