"""The trainers find annealed, freezable, weighted-selector and metric nodes through the capability
protocols (a custom node implementing one is honoured; a same-named attribute is not); the floor epoch is
computed without touching any node; the history is EpochRecords and survives a checkpoint round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from bandselect.errors import TrainingError
from bandselect.pipeline import Node, Pipeline, PortSpec
from bandselect.pipeline.node import Annealed, Freezable, WeightedSelector
from bandselect.synthetic import make_scene
from bandselect.training import EpochRecord, GradientTrainer, TrainingData, train_two_phase
from bandselect.training.checkpoint import CHECKPOINT_FILE, read_checkpoint
from bandselect.training.config import load_recipe
from bandselect.training.monitor import floor_epoch, hard_selections
from bandselect.training.patches import PatchDataModule
from bandselect.training.roles import is_metric_node
from bandselect.training.two_phase import resolve_pipeline

N_BANDS = 8
WEIGHTS = PortSpec("weights", torch.float32, ("C",))
SCALAR = PortSpec("value", torch.float32, ())


class AnnealedPenalty(Node):
    """A custom annealed, freezable loss node (not a selector): ``mean((scale · w)²) / T``."""

    INPUT_PORTS = (WEIGHTS,)
    OUTPUT_PORTS = (PortSpec("loss", torch.float32, ()),)

    def __init__(self, decay: float = 0.5) -> None:
        super().__init__(decay=decay)
        self.decay = decay
        self.temperature_min = 0.25
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("current", torch.tensor(2.0))

    @property
    def temperature(self) -> float:
        return float(self.current)

    def temperature_at(self, epoch: int) -> float:
        return max(self.temperature_min, 2.0 * self.decay**epoch)

    def update_temperature(self, epoch: int) -> float:
        self.current.fill_(self.temperature_at(epoch))
        return self.temperature

    @property
    def is_trainable(self) -> bool:
        return "scale" in self._parameters

    def unfreeze(self) -> None:
        if not self.is_trainable:
            self.scale = nn.Parameter(self._buffers.pop("scale").clone())

    def freeze(self) -> None:
        if self.is_trainable:
            self.register_buffer("scale", self._parameters.pop("scale").detach().clone())

    def forward(self, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": ((self.scale * weights) ** 2).mean() / self.temperature}


class PeakWeight(Node):
    """A custom metric node: the largest channel weight."""

    INPUT_PORTS = (WEIGHTS,)
    OUTPUT_PORTS = (SCALAR,)
    is_metric: ClassVar[bool] = True

    def forward(self, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"value": weights.max()}


class NotAMetricPeak(PeakWeight):
    """A metric-shaped node that opts out: ``is_metric = False``."""

    is_metric: ClassVar[bool] = False


class FixedSelector(Node):
    """A custom weighted selector (fixed weights on the first ``n_select`` channels)."""

    OUTPUT_PORTS = (WEIGHTS,)

    def __init__(self, n_select: int = 2) -> None:
        super().__init__(n_select=n_select)
        self.n_select = n_select
        self.hard = False

    def get_selection_weights(self, hard: bool = False) -> torch.Tensor:
        weights = torch.zeros(N_BANDS)
        weights[: self.n_select] = 1.0
        return weights

    def forward(self) -> dict[str, torch.Tensor]:
        return {"weights": self.get_selection_weights(self.hard)}


class Lookalike(Node):
    """Same-named attributes of every capability, none of the protocols: the old probes took it for an
    annealed node (``temperature`` + ``update_temperature``), a selector (``hard`` +
    ``get_selection_weights``), a freezable node (``unfreeze``) — and ``is_metric`` is False."""

    INPUT_PORTS = (WEIGHTS,)
    OUTPUT_PORTS = (SCALAR,)
    is_metric: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self.temperature = 1.0
        self.hard = False
        self.calls: list[str] = []

    def update_temperature(self, epoch: int) -> float:
        self.calls.append("update_temperature")
        return self.temperature

    def get_selection_weights(self, hard: bool = False) -> torch.Tensor:
        self.calls.append("get_selection_weights")
        return torch.ones(N_BANDS)

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")

    def forward(self, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"value": weights.sum()}


@pytest.fixture(scope="module")
def scene() -> Any:
    return make_scene(32, 32, n_bands=N_BANDS, seed=1, anomaly_fraction=0.03)


def _datamodule(scene: Any) -> PatchDataModule:
    return PatchDataModule.from_arrays(
        scene.cube,
        scene.mask,
        wavelengths=scene.wavelengths_nm,
        patch_size=16,
        batch_size=2,
        batches_per_epoch=2,
    )


def _variance_recipe() -> Pipeline:
    """The recipe's pipeline with its selector from the variance start (the tests fit it by hand)."""
    recipe = load_recipe()["pipeline"]
    recipe["nodes"]["selector"]["config"]["init_method"] = "variance"
    return resolve_pipeline(recipe, N_BANDS)


def _pipeline() -> Pipeline:
    """The recipe's pipeline (its selector from the variance start) plus the custom nodes, all fed by
    the selector's weights."""
    pipeline = _variance_recipe()
    for node, name in (
        (AnnealedPenalty(), "penalty"),
        (PeakWeight(), "peak"),
        (NotAMetricPeak(), "not_metric"),
    ):
        pipeline.add_node(node, name=name)
        pipeline.connect(("selector.weights", f"{name}.weights"))
    pipeline.add_node(Lookalike(), name="lookalike")
    pipeline.connect(("selector.weights", "lookalike.weights"))
    pipeline.add_node(FixedSelector(), name="fixed")
    return pipeline


def test_protocols_tell_the_custom_nodes_from_the_lookalike() -> None:
    pipeline = _pipeline()
    nodes = pipeline.nodes
    assert isinstance(nodes["penalty"], Annealed) and isinstance(nodes["penalty"], Freezable)
    assert isinstance(nodes["fixed"], WeightedSelector) and isinstance(nodes["selector"], WeightedSelector)
    assert is_metric_node(nodes["peak"]) and is_metric_node(nodes["auroc"])
    lookalike = nodes["lookalike"]
    assert not isinstance(lookalike, Annealed | Freezable | WeightedSelector)
    assert not is_metric_node(lookalike) and not is_metric_node(nodes["not_metric"])
    with hard_selections(pipeline) as switched:
        assert switched == ["selector", "fixed"]
        assert nodes["fixed"].hard and nodes["selector"].hard and not lookalike.hard
    assert not nodes["fixed"].hard and not nodes["selector"].hard


def test_floor_epoch_is_computed_without_changing_any_temperature() -> None:
    pipeline = _pipeline()
    selector, penalty = pipeline.nodes["selector"], pipeline.nodes["penalty"]
    selector.temperature = 2.345

    def refuse(epoch: int) -> float:
        raise AssertionError("floor_epoch must ask the pure schedule, not set a temperature")

    # Instance attributes shadow the methods: any call to them fails the test.
    selector.update_temperature = refuse  # type: ignore[method-assign]
    penalty.update_temperature = refuse  # type: ignore[method-assign]
    before = {k: v.clone() for k, v in pipeline.state_dict().items()}
    # Recipe selector (the seed's schedule): 5 · 0.9^e <= 0.1 first at e = 38; the penalty: 2 · 0.5^e <= 0.25
    # at e = 3.
    assert floor_epoch(pipeline, 50) == 38
    assert floor_epoch(pipeline, 30) == 29  # not reached within the run: the last epoch
    assert floor_epoch(pipeline, 5) == 4
    assert selector.temperature == pytest.approx(2.345) and penalty.temperature == 2.0
    assert all(torch.equal(v, before[k]) for k, v in pipeline.state_dict().items())
    assert floor_epoch(Pipeline(), 30) == 0


def test_trainer_honours_custom_nodes_and_ignores_the_lookalike(scene, tmp_path: Path) -> None:
    pipeline = _pipeline()
    pipeline.nodes["selector"].fit(torch.from_numpy(scene.cube[None]))
    pipeline.nodes["selector"].unfreeze()
    penalty, lookalike = pipeline.nodes["penalty"], pipeline.nodes["lookalike"]
    with pytest.raises(TrainingError, match=r"node 'penalty' \(AnnealedPenalty\) is frozen"):
        GradientTrainer(pipeline, _datamodule(scene), device="cpu", progress=False).fit()
    penalty.unfreeze()
    trainer = GradientTrainer(
        pipeline,
        _datamodule(scene),
        lr=0.1,
        max_epochs=4,
        device="cpu",
        progress=False,
        seed=3,
        checkpoint_dir=tmp_path,
        monitor="peak.value:hard",
        monitor_mode="min",
    )
    history = trainer.fit()
    assert all(isinstance(record, EpochRecord) for record in history)
    # The custom annealed node follows its schedule; the selector's too; the lookalike is never annealed.
    assert [r.temperature["penalty"] for r in history] == [2.0, 1.0, 0.5, 0.25]
    assert set(history[0].temperature) == {"selector", "penalty"}
    assert set(history[0].weights) == {"selector", "fixed"}
    assert history[0].weights["fixed"] == (1.0, 1.0) + (0.0,) * (N_BANDS - 2)
    # Metrics: AUROC and the custom metric (soft and hard passes), not the opted-out node.
    assert {"auroc.auroc", "peak.value", "peak.value:hard", "auroc.auroc:hard"} <= set(history[0].metrics)
    assert not any(key.startswith(("not_metric", "lookalike")) for key in history[0].metrics)
    assert history[0].metrics["peak.value:hard"] == 1.0  # hard selection: the top-3 mask
    assert lookalike.calls == []
    # The penalty's scale was trained (it was unfrozen), the first eligible epoch is the max floor (3).
    assert float(penalty.scale.detach()) != 1.0
    assert trainer.best_monitor is not None and trainer.best_monitor.first_epoch == 3
    assert not any(r.best for r in history[:3]) and history[3].best
    # The history survives the checkpoint round trip exactly (plain dicts on disk, weights_only).
    assert read_checkpoint(tmp_path / CHECKPOINT_FILE).history == history
    raw = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    assert raw["history"] == [record.to_dict() for record in history]


def test_resumed_history_equals_the_uninterrupted_history(scene, tmp_path: Path) -> None:
    def run(epochs: int, directory: Path, resume: bool = False) -> list[EpochRecord]:
        pipeline = _variance_recipe()
        pipeline.nodes["selector"].fit(torch.from_numpy(scene.cube[None]))
        pipeline.nodes["selector"].unfreeze()
        trainer = GradientTrainer(
            pipeline,
            _datamodule(scene),
            lr=0.2,
            max_epochs=epochs,
            device="cpu",
            progress=False,
            checkpoint_dir=directory,
            monitor="auroc.auroc:hard",
            monitor_from_epoch=1,
        )
        return trainer.fit(resume=resume)

    full = run(4, tmp_path / "full")
    run(2, tmp_path / "cut")
    resumed = run(4, tmp_path / "cut", resume=True)
    assert resumed == full  # every record: losses, metrics, temperatures, weights, best flags


def test_train_two_phase_unfreezes_every_freezable_node_and_freezes_it_back(scene) -> None:
    pipeline = _pipeline()
    data = TrainingData.from_arrays(scene.cube, scene.mask, wavelengths_nm=scene.wavelengths_nm)
    result = train_two_phase(
        pipeline,
        data,
        {"epochs": 2, "patch_size": 16, "batches_per_epoch": 2, "device": "cpu", "monitor": None},
    )
    penalty = result.pipeline.nodes["penalty"]
    assert result.pipeline is pipeline and result.selector == "selector"
    assert not penalty.is_trainable and not result.pipeline.nodes["selector"].is_trainable
    assert float(penalty.scale.detach()) != 1.0  # trained while unfrozen
    # Frozen back: the structure of an initialised pipeline (same keys; the fitted state in buffers).
    assert set(result.pipeline.state_dict()) == set(_pipeline().state_dict())
    buffers = dict(result.pipeline.named_buffers())
    assert "nodes.selector.channel_logits" in buffers and "nodes.penalty.scale" in buffers
    assert result.pipeline.nodes["lookalike"].calls == []
    assert np.isfinite(result.val_auroc_after)
