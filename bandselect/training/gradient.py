"""Gradient training of a pipeline: a plain, readable PyTorch loop.

Per epoch: ``update_temperature(epoch)`` on every node that has it, one pass over the training batches
(sum of the loss nodes → backward → optimizer step), one pass over the validation batches (loss and
metric nodes, no gradients), a history entry, and an atomic checkpoint. A run resumed from the
checkpoint continues the temperature schedule, the optimizer and every random generator, so it ends with
exactly the weights of an uninterrupted run (on CPU).
"""

from __future__ import annotations

import copy
import math
import os
import random
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from bandselect.errors import ConfigError, LabelError, PipelineError, TrainingError
from bandselect.names import DATA_NODE, PORT_MASK
from bandselect.pipeline import Pipeline
from bandselect.validation import check_float, check_int

#: File name of the checkpoint written into ``checkpoint_dir`` after every epoch.
CHECKPOINT_FILE = "last.pt"
#: File name of the best epoch's weights (by ``monitor``), written into ``checkpoint_dir``.
BEST_FILE = "best.pt"
#: Suffix of metrics computed with every selector switched to its hard top-k selection.
HARD_SUFFIX = ":hard"  # MLflow metric names allow ":" (not "@")
LOSS_PORT = "loss"
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


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _generators(pipeline: Pipeline) -> dict[str, torch.Generator]:
    """Every ``torch.Generator`` a node keeps (e.g. a selector's Gumbel noise), keyed ``node.attribute``."""
    found: dict[str, torch.Generator] = {}
    for name, node in pipeline.nodes.items():
        for attribute, value in vars(node).items():
            if isinstance(value, torch.Generator):
                found[f"{name}.{attribute}"] = value
    return found


def _rng_state(pipeline: Pipeline) -> dict[str, Any]:
    numpy_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "python": random.getstate(),
        "generators": {k: g.get_state() for k, g in _generators(pipeline).items()},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(pipeline: Pipeline, state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    generators = _generators(pipeline)
    for key, value in state["generators"].items():
        if key not in generators:
            raise TrainingError(
                "cannot restore the checkpoint's random generators",
                expected=f"a generator at {key} in the pipeline",
                found=f"generators {sorted(generators)}",
                fix="resume with the same pipeline configuration that wrote the checkpoint",
            )
        generators[key].set_state(value)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
        ``train_dataloader()`` (and optionally ``val_dataloader()``) yielding ``{"cube", "mask",
        "wavelengths"}`` dicts. ``train_dataloader()`` is called once per epoch; a datamodule with
        ``set_epoch(epoch)`` is told the epoch first (so random patches differ per epoch yet a resumed run
        draws the same ones).
    loss_nodes
        Names of the nodes whose ``loss`` outputs are summed (task loss + regularizers). Default: every
        node with an output port named ``loss``.
    optimizer
        ``"adam"``, ``"adamw"`` or ``"sgd"``, over every parameter with ``requires_grad``.
    lr
        Learning rate.
    max_epochs
        Number of epochs (a resumed run continues up to it).
    metric_nodes
        Nodes evaluated on validation batches (their scalar outputs are averaged over the batches and
        recorded as ``"node.port"``). Default: nodes whose class sets ``is_metric = True`` (e.g. ``AUROC``).
    checkpoint_dir
        Where ``last.pt`` is written atomically after each epoch (None: no checkpoints).
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ...
    seed
        Seeds torch, NumPy and Python's ``random`` at the start of a fresh run.
    progress
        Show a progress bar over epochs with the last loss and metrics.
    allow_frozen
        Names of nodes with an ``unfreeze()`` method that may stay frozen. Any other such node that feeds
        a loss and has no trainable parameter is an error (the seed's "Issue 3": training would silently
        leave it untouched).
    monitor
        A validation metric key (``"node.port"``) that picks the best epoch, or None (keep the last
        epoch). A key ending in ``":hard"`` (e.g. ``"auroc.auroc:hard"``) is that metric computed in a
        second validation pass with every selector node (a node with ``hard`` and
        ``get_selection_weights``) switched to its hard top-``n_select`` selection: the selection a user
        deploys, not the soft weights it was trained with. Those metrics are recorded in ``metrics`` too.
    monitor_mode
        ``"max"`` (default) or ``"min"``: whether larger monitored values are better.
    monitor_from_epoch
        The first epoch that may be chosen as best. None (default): the first epoch at which every
        annealed node (one with ``temperature`` and ``temperature_min``) has reached its floor, so the
        kept weights are the concentrated ones of the annealed schedule; 0 if nothing anneals.
    restore_best
        With ``monitor``: load the best epoch's weights into the pipeline when training ends (default
        True). They are also written to ``checkpoint_dir/best.pt`` whenever they improve.

    Attributes
    ----------
    history
        One dict per completed epoch: ``epoch``, ``loss`` (mean training loss), ``val_loss``,
        ``metrics`` (``{"node.port": value}``), ``temperature`` (``{node: T}``), ``weights``
        (``{node: soft weights as a list}``) for every node with ``get_selection_weights``; with ``monitor``
        also ``best`` (whether the epoch was the best so far).
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
    >>> len(history), history[-1]["loss"] < history[0]["loss"]
    (3, True)
    """

    def __init__(
        self,
        pipeline: Pipeline,
        datamodule: Any,
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
    ) -> None:
        if not isinstance(pipeline, Pipeline):
            raise ConfigError(
                "GradientTrainer pipeline",
                expected="a bandselect.pipeline.Pipeline",
                found=type(pipeline).__name__,
                fix="build the nodes into a Pipeline first",
            )
        if not callable(getattr(datamodule, "train_dataloader", None)):
            raise ConfigError(
                "GradientTrainer datamodule",
                expected="an object with train_dataloader()",
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
        self.loss_nodes = self._resolve_loss_nodes(loss_nodes)
        self.metric_nodes = self._resolve_metric_nodes(metric_nodes)
        if monitor is not None:
            base = monitor.removesuffix(HARD_SUFFIX)
            known = {f"{n}.{p}" for n in self.metric_nodes for p in self.pipeline.nodes[n].OUTPUT_PORTS}
            if base not in known:
                raise ConfigError(
                    "GradientTrainer monitor",
                    expected=f"a metric key, one of {sorted(known)} (optionally with '{HARD_SUFFIX}')",
                    found=repr(monitor),
                    fix="add the metric node to the pipeline or pass monitor=None",
                )
        self.monitor = monitor
        self.monitor_mode = monitor_mode
        self.monitor_from_epoch = monitor_from_epoch
        self.restore_best = bool(restore_best)
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self._best_state: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []
        self.optimizer: torch.optim.Optimizer | None = None

    # -- configuration checks --------------------------------------------------------------------
    def _resolve_loss_nodes(self, loss_nodes: Sequence[str] | None) -> list[str]:
        nodes = self.pipeline.nodes
        if loss_nodes is None:
            names = [n for n in self.pipeline.topological_order() if LOSS_PORT in nodes[n].OUTPUT_PORTS]
            if not names:
                raise TrainingError(
                    "the pipeline has no loss node",
                    expected="at least one node with an output port named 'loss'",
                    found=f"nodes {list(nodes)}",
                    fix="add a loss node (e.g. AnomalyBCELoss) and connect it, or pass loss_nodes=[...]",
                )
        else:
            names = list(loss_nodes)
            if not names:
                raise TrainingError(
                    "loss_nodes is empty", expected="at least one loss node", found="[]", fix="leave it None"
                )
        for name in names:
            if name not in nodes:
                raise PipelineError(
                    f"loss node {name!r} is not in the pipeline",
                    expected=f"one of {list(nodes)}",
                    found=repr(name),
                    fix="check the name passed in loss_nodes",
                )
            if LOSS_PORT not in nodes[name].OUTPUT_PORTS:
                raise TrainingError(
                    f"node {name!r} ({type(nodes[name]).__name__}) is not a loss node",
                    expected="an output port named 'loss'",
                    found=f"outputs {sorted(nodes[name].OUTPUT_PORTS)}",
                    fix="list only loss nodes in loss_nodes",
                )
            self._check_inputs_connected(name, "loss")
        return names

    def _check_inputs_connected(self, name: str, role: str) -> None:
        node = self.pipeline.nodes[name]
        missing = [
            port
            for port, spec in node.INPUT_PORTS.items()
            if not spec.optional and self.pipeline.source_of(name, port) is None
        ]
        if missing:
            raise TrainingError(
                f"{role} node {name!r} ({type(node).__name__}) is not connected",
                expected=f"connections into its inputs {sorted(node.INPUT_PORTS)}",
                found=f"nothing feeds {', '.join(f'{name}.{p}' for p in missing)}",
                fix=f"connect them, e.g. pipeline.connect(('head.logits', '{name}.{missing[0]}'))",
            )

    def _resolve_metric_nodes(self, metric_nodes: Sequence[str] | None) -> list[str]:
        nodes = self.pipeline.nodes
        if metric_nodes is None:
            names = [n for n in self.pipeline.topological_order() if getattr(nodes[n], "is_metric", False)]
        else:
            names = list(metric_nodes)
        for name in names:
            if name not in nodes:
                raise PipelineError(
                    f"metric node {name!r} is not in the pipeline",
                    expected=f"one of {list(nodes)}",
                    found=repr(name),
                    fix="check the name passed in metric_nodes",
                )
            self._check_inputs_connected(name, "metric")
        return names

    def _trainable_parameters(self) -> list[torch.nn.Parameter]:
        nodes = self.pipeline.nodes
        feeding = set(self.loss_nodes)
        for name in self.loss_nodes:
            feeding |= self.pipeline.upstream_of(name)
        frozen = [
            name
            for name in self.pipeline.topological_order()
            if name in feeding
            and callable(getattr(nodes[name], "unfreeze", None))
            and name not in self.allow_frozen
            and not any(p.requires_grad for p in nodes[name].parameters())
        ]
        if frozen:
            calls = "; ".join(f"pipeline.nodes[{n!r}].unfreeze()" for n in frozen)
            raise TrainingError(
                f"node {frozen[0]!r} ({type(nodes[frozen[0]]).__name__}) is frozen: it has no trainable "
                "parameters, so gradient training would leave it unchanged",
                expected="its learnable state unfrozen after the statistical initialisation",
                found=f"frozen nodes {frozen}",
                fix=f"call {calls} before training (or list it in allow_frozen=[...])",
            )
        parameters = [p for p in self.pipeline.parameters() if p.requires_grad]
        if not parameters:
            candidates = [n for n in nodes if callable(getattr(nodes[n], "unfreeze", None))]
            fix = (
                "call " + "; ".join(f"pipeline.nodes[{n!r}].unfreeze()" for n in candidates)
                if candidates
                else "add a node with trainable parameters"
            )
            raise TrainingError(
                "the pipeline has no trainable parameters",
                expected="at least one parameter with requires_grad",
                found="none (every node frozen)",
                fix=fix,
            )
        return parameters

    # -- checkpoints -----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        """``checkpoint_dir / "last.pt"``, or None without a checkpoint directory."""
        return None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT_FILE

    def _save_checkpoint(self, epoch: int) -> None:
        path = self.checkpoint_path
        if path is None or self.optimizer is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "epoch": epoch,
            "model": self.pipeline.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
            "rng": _rng_state(self.pipeline),
            "trainable": [n for n, p in self.pipeline.named_parameters() if p.requires_grad],
            "best": {"epoch": self.best_epoch, "value": self.best_value, "model": self._best_state},
        }
        self._atomic_save(state, path)

    def _atomic_save(self, state: Mapping[str, Any], path: Path) -> None:
        handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as f:
                torch.save(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp_name, path)  # atomic: a crash leaves the previous checkpoint intact
        finally:
            Path(temp_name).unlink(missing_ok=True)

    def _load_checkpoint(self) -> int:
        path = self.checkpoint_path
        if path is None or not path.is_file():
            raise TrainingError(
                "cannot resume",
                expected=f"a checkpoint {CHECKPOINT_FILE} in checkpoint_dir",
                found="no checkpoint_dir" if path is None else f"no file {path}",
                fix="pass the checkpoint_dir of the interrupted run, or fit(resume=False)",
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        trainable = [n for n, p in self.pipeline.named_parameters() if p.requires_grad]
        if trainable != state["trainable"]:
            raise TrainingError(
                "cannot resume: the pipeline's trainable parameters differ from the checkpoint's",
                expected=f"trainable {state['trainable']}",
                found=f"trainable {trainable}",
                fix="unfreeze the same nodes as in the interrupted run before resuming",
            )
        self.pipeline.load_state_dict(state["model"])
        assert self.optimizer is not None
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = list(state["history"])
        _set_rng_state(self.pipeline, state["rng"])
        best = state.get("best") or {}
        self.best_epoch, self.best_value, self._best_state = (
            best.get("epoch"),
            best.get("value"),
            best.get("model"),
        )
        return int(state["epoch"]) + 1

    # -- loop ------------------------------------------------------------------------------------
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
        assert total is not None
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
        assert self.optimizer is not None
        self.pipeline.train()
        total, count = 0.0, 0
        for batch_index, raw in enumerate(self.datamodule.train_dataloader()):
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
                expected="a non-empty train_dataloader()",
                found="0 batches",
                fix="give the datamodule training data",
            )
        return total / count

    def _selectors(self) -> list[Any]:
        return [
            node
            for node in self.pipeline.nodes.values()
            if hasattr(node, "hard") and callable(getattr(node, "get_selection_weights", None))
        ]

    def _validate(self) -> tuple[float | None, dict[str, float]]:
        make = getattr(self.datamodule, "val_dataloader", None)
        loader = make() if callable(make) else None
        if loader is None:
            return None, {}
        hard_pass = self.monitor is not None and self.monitor.endswith(HARD_SUFFIX)
        if hard_pass:
            loader = list(loader)  # replayed by the hard pass; otherwise streamed, not held in memory
        loss, metrics = self._validation_pass(loader)
        if hard_pass:
            selectors = self._selectors()
            previous = [node.hard for node in selectors]
            try:
                for node in selectors:
                    node.hard = True
                _, hard = self._validation_pass(loader)
            finally:
                for node, value in zip(selectors, previous, strict=True):
                    node.hard = value
            metrics.update({f"{k}{HARD_SUFFIX}": v for k, v in hard.items()})
        return loss, metrics

    def _validation_pass(self, loader: Iterable[Any]) -> tuple[float | None, dict[str, float]]:
        self.pipeline.eval()
        losses: list[float] = []
        values: dict[str, list[float]] = {}
        with torch.no_grad():
            for raw in loader:
                self._check_mask(raw, [*self.loss_nodes, *self.metric_nodes])
                batch = _to_device(raw, self.device)
                outputs = self.pipeline(outputs=[*self.loss_nodes, *self.metric_nodes], **batch)
                losses.append(float(self._losses(outputs)))
                for name in self.metric_nodes:
                    for port, value in outputs[name].items():
                        values.setdefault(f"{name}.{port}", []).append(_scalar(value))
        metrics = {k: float(np.nanmean(v)) if not all(np.isnan(v)) else math.nan for k, v in values.items()}
        return (float(np.mean(losses)) if losses else None), metrics

    def _snapshot(self) -> tuple[dict[str, float], dict[str, list[float]]]:
        temperatures: dict[str, float] = {}
        weights: dict[str, list[float]] = {}
        for name, node in self.pipeline.nodes.items():
            if hasattr(node, "temperature") and callable(getattr(node, "update_temperature", None)):
                temperatures[name] = float(node.temperature)
            if callable(getattr(node, "get_selection_weights", None)):
                weights[name] = node.get_selection_weights(hard=False).detach().cpu().tolist()
        return temperatures, weights

    def _first_monitored_epoch(self) -> int:
        if self.monitor_from_epoch is not None:
            return self.monitor_from_epoch
        first = 0
        for node in self.pipeline.nodes.values():
            floor = getattr(node, "temperature_min", None)
            update = getattr(node, "update_temperature", None)
            if floor is None or not callable(update):
                continue
            saved = node.temperature
            epoch = 0
            while epoch < self.max_epochs - 1 and update(epoch) > floor:
                epoch += 1
            node.temperature = saved
            first = max(first, epoch)
        return first

    def _track_best(self, epoch: int, metrics: Mapping[str, float]) -> bool:
        if self.monitor is None or epoch < self._monitor_start:
            return False
        value = metrics.get(self.monitor)
        if value is None or not math.isfinite(value):
            return False
        better = self.best_value is None or (
            value > self.best_value if self.monitor_mode == "max" else value < self.best_value
        )
        if better:
            self.best_epoch, self.best_value = epoch, float(value)
            self._best_state = {k: v.detach().cpu().clone() for k, v in self.pipeline.state_dict().items()}
            if self.checkpoint_dir is not None:
                self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
                best = {"epoch": epoch, "value": self.best_value, "model": self._best_state}
                self._atomic_save(best, self.checkpoint_dir / BEST_FILE)
        return better

    def fit(self, resume: bool = False) -> list[dict[str, Any]]:
        """Train for ``max_epochs`` (or the remaining epochs of a checkpointed run).

        Parameters
        ----------
        resume
            Continue from ``checkpoint_dir/last.pt``: weights, optimizer state, history, the random
            generators and the epoch counter (so the temperature schedule continues).

        Returns
        -------
        list of dict
            :attr:`history`.

        Raises
        ------
        TrainingError
            Frozen or no trainable parameters, a non-finite loss or gradient (the last good checkpoint is
            kept), missing checkpoint on resume, empty training data.
        LabelError
            A loss or metric node needs ``data.mask`` and the batches carry none.
        """
        self.pipeline.to(self.device)
        parameters = self._trainable_parameters()
        options: dict[str, Any] = {"lr": self.lr}
        self.optimizer = OPTIMIZERS[self.optimizer_name](parameters, **options)
        if resume:
            start = self._load_checkpoint()
        else:
            torch.manual_seed(self.seed)
            np.random.seed(self.seed % 2**32)
            random.seed(self.seed)
            self.history = []
            self.best_epoch, self.best_value, self._best_state = None, None, None
            start = 0
        # The schedule is fixed for the run: simulate it once, not every epoch.
        self._monitor_start = self._first_monitored_epoch()
        epochs = tqdm(
            range(start, self.max_epochs),
            initial=start,
            total=self.max_epochs,
            desc="gradient training",
            disable=not self.progress,
        )
        for epoch in epochs:
            for node in self.pipeline.nodes.values():
                update = getattr(node, "update_temperature", None)
                if callable(update):
                    update(epoch)
            set_epoch = getattr(self.datamodule, "set_epoch", None)
            if callable(set_epoch):
                set_epoch(epoch)
            train_loss = self._train_epoch(epoch)
            val_loss, metrics = self._validate()
            is_best = self._track_best(epoch, metrics)
            temperatures, weights = self._snapshot()
            entry = {
                "epoch": epoch,
                "loss": train_loss,
                "val_loss": val_loss,
                "metrics": metrics,
                "temperature": temperatures,
                "weights": weights,
            }
            if self.monitor is not None:
                entry["best"] = is_best
            self.history.append(entry)
            self._save_checkpoint(epoch)
            epochs.set_postfix({"loss": f"{train_loss:.4g}", **{k: f"{v:.4f}" for k, v in metrics.items()}})
        if self.restore_best and self._best_state is not None:
            # Restore the best epoch's weights (parameters and buffers, e.g. the temperature).
            state = copy.copy(self._best_state)
            self.pipeline.load_state_dict(state)
        self.pipeline.eval()
        return self.history
