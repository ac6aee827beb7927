"""GradientTrainer: resume equality, temperature schedule, checkpoints and the bad-input errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bandselect.errors import ConfigError, LabelError, TrainingError
from bandselect.nodes import AUROC, AnomalyBCELoss, RXDetector, ScoreToLogit
from bandselect.pipeline import Node, Pipeline, PortSpec
from bandselect.selectors import SelectorDiversityRegularizer, SoftChannelSelector
from bandselect.synthetic import make_scene
from bandselect.training.checkpoint import CHECKPOINT_FILE
from bandselect.training.gradient import GradientTrainer, resolve_device
from bandselect.training.patches import PatchDataModule

N_BANDS = 12


@pytest.fixture(scope="module")
def scene() -> dict[str, np.ndarray]:
    s = make_scene(40, 40, n_bands=N_BANDS, seed=3, anomaly_fraction=0.02)
    return {"cube": s.cube, "mask": s.mask, "wavelengths": s.wavelengths_nm}


def _datamodule(scene: dict[str, np.ndarray], with_mask: bool = True) -> PatchDataModule:
    return PatchDataModule.from_arrays(
        scene["cube"],
        scene["mask"] if with_mask else None,
        wavelengths=scene["wavelengths"],
        patch_size=16,
        batch_size=2,
        batches_per_epoch=2,
        val_rows=(0.5, 1.0) if with_mask else None,
    )


def _pipeline(*, unfreeze: bool = True, seed: int = 0) -> Pipeline:
    pipeline = Pipeline()
    selector = SoftChannelSelector(n_select=3, input_channels=N_BANDS, seed=seed, temperature_decay=0.8)
    if unfreeze:
        selector.unfreeze()
    pipeline.add_node(selector, name="selector")
    pipeline.add_node(SelectorDiversityRegularizer(weight=0.5), name="diversity")
    pipeline.add_node(RXDetector(input_channels=N_BANDS, background="batch"), name="rx")
    pipeline.add_node(ScoreToLogit(), name="head")
    pipeline.add_node(AnomalyBCELoss(), name="bce")
    pipeline.add_node(AUROC(single_class="nan"), name="auroc")
    pipeline.connect(
        ("data.cube", "selector.data"),
        ("selector.selected", "rx.data"),
        ("selector.weights", "diversity.weights"),
        ("rx.scores", "head.scores"),
        ("head.logits", "bce.logits"),
        ("data.mask", "bce.mask"),
        ("rx.scores", "auroc.scores"),
        ("data.mask", "auroc.mask"),
    )
    return pipeline


def _trainer(
    pipeline: Pipeline, dm: PatchDataModule, epochs: int, ckpt: Path | None = None
) -> GradientTrainer:
    return GradientTrainer(
        pipeline, dm, lr=0.1, max_epochs=epochs, checkpoint_dir=ckpt, device="cpu", seed=7, progress=False
    )


def test_history_temperature_schedule_and_metrics(scene, tmp_path: Path) -> None:
    pipeline = _pipeline()
    history = _trainer(pipeline, _datamodule(scene), 4, tmp_path).fit()
    temperatures = [h.temperature["selector"] for h in history]
    assert temperatures == pytest.approx([5.0 * 0.8**e for e in range(4)])
    for entry in history:
        assert set(entry.to_dict()) == {
            "epoch",
            "loss",
            "val_loss",
            "metrics",
            "temperature",
            "weights",
            "best",
        }
        assert entry.best is None  # no monitor
        assert 0.5 < entry.metrics["auroc.auroc"] <= 1.0
        assert sum(entry.weights["selector"]) == pytest.approx(3.0, abs=1e-4)
    assert (tmp_path / CHECKPOINT_FILE).is_file()
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_resumed_run_equals_uninterrupted_run(scene, tmp_path: Path) -> None:
    full = _pipeline()
    full_history = _trainer(full, _datamodule(scene), 4, tmp_path / "full").fit()

    first = _pipeline()
    _trainer(first, _datamodule(scene), 2, tmp_path / "cut").fit()
    resumed = _pipeline()  # a fresh process: same configuration, new objects
    resumed_history = _trainer(resumed, _datamodule(scene), 4, tmp_path / "cut").fit(resume=True)

    for key, value in full.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert [h.loss for h in resumed_history] == [h.loss for h in full_history]
    assert resumed.nodes["selector"].temperature == full.nodes["selector"].temperature


def test_frozen_selector_is_named(scene) -> None:
    with pytest.raises(TrainingError, match=r"pipeline.nodes\['selector'\].unfreeze\(\)"):
        _trainer(_pipeline(unfreeze=False), _datamodule(scene), 1).fit()


def test_no_trainable_parameters_names_the_node_to_unfreeze(scene) -> None:
    pipeline = Pipeline()
    pipeline.add_node(SoftChannelSelector(n_select=2, input_channels=N_BANDS), name="selector")
    pipeline.add_node(SelectorDiversityRegularizer(), name="diversity")
    pipeline.connect(("data.cube", "selector.data"), ("selector.weights", "diversity.weights"))
    trainer = GradientTrainer(pipeline, _datamodule(scene), allow_frozen=["selector"], progress=False)
    with pytest.raises(TrainingError, match=r"no trainable parameters.*unfreeze"):
        trainer.fit()


def test_mask_missing_for_supervised_loss(scene) -> None:
    with pytest.raises(LabelError, match=r"'bce'.*mask"):
        _trainer(_pipeline(), _datamodule(scene, with_mask=False), 1).fit()


def test_loss_node_not_connected(scene) -> None:
    pipeline = _pipeline()
    pipeline.add_node(AnomalyBCELoss(), name="orphan")
    with pytest.raises(TrainingError, match=r"loss node 'orphan'.*not connected"):
        _trainer(pipeline, _datamodule(scene), 1)
    with pytest.raises(TrainingError, match="no loss node"):
        GradientTrainer(Pipeline(), _datamodule(scene), progress=False)


class _ExplodingLoss(Node):
    """A loss that turns NaN from epoch ``at_epoch`` on (counted in calls), to test the NaN guard."""

    INPUT_PORTS = (PortSpec("weights", torch.float32, ("C",)),)
    OUTPUT_PORTS = (PortSpec("loss", torch.float32, ()),)

    def __init__(self, calls_before_nan: int = 4) -> None:
        super().__init__(calls_before_nan=calls_before_nan)
        self.calls_before_nan = calls_before_nan
        self.calls = 0

    def forward(self, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        self.calls += 1
        loss = (weights**2).sum()
        return {"loss": loss * float("nan") if self.calls > self.calls_before_nan else loss}


def test_nan_loss_stops_with_epoch_batch_and_keeps_the_last_good_checkpoint(scene, tmp_path: Path) -> None:
    pipeline = _pipeline()
    pipeline.add_node(_ExplodingLoss(calls_before_nan=4), name="exploding")
    pipeline.connect(("selector.weights", "exploding.weights"))
    trainer = _trainer(pipeline, _datamodule(scene), 5, tmp_path)
    # 2 training batches per epoch + 1 validation batch: calls 1-3 epoch 0, call 4-5 epoch 1 (NaN at 5).
    with pytest.raises(TrainingError, match=r"epoch 1, batch 1.*last good checkpoint .*epoch 0\) is kept"):
        trainer.fit()
    kept = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    assert kept["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())


class _InfiniteGradientLoss(Node):
    """A finite loss (0) whose gradient is NaN: sqrt'(0) = inf times abs'(0) = 0."""

    INPUT_PORTS = (PortSpec("weights", torch.float32, ("C",)),)
    OUTPUT_PORTS = (PortSpec("loss", torch.float32, ()),)

    def __init__(self) -> None:
        super().__init__()

    def forward(self, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": torch.sqrt((weights - weights.detach()).abs().sum())}


def test_non_finite_gradient_stops_at_the_first_batch(scene) -> None:
    pipeline = _pipeline()
    pipeline.add_node(_InfiniteGradientLoss(), name="bad_gradient")
    pipeline.connect(("selector.weights", "bad_gradient.weights"))
    before = pipeline.nodes["selector"].channel_logits.clone()
    with pytest.raises(TrainingError, match=r"a gradient is not finite at epoch 0, batch 0"):
        _trainer(pipeline, _datamodule(scene), 2).fit()
    assert torch.equal(pipeline.nodes["selector"].channel_logits, before)  # no step was taken


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("lr", 0.0),
        ("lr", float("nan")),
        ("lr", True),
        ("max_epochs", 0),
        ("max_epochs", 2.0),
        ("monitor_from_epoch", -1),
    ],
)
def test_bad_numeric_options_are_refused_by_name(scene, option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"'{option}' parameter of GradientTrainer"):
        GradientTrainer(_pipeline(), _datamodule(scene), progress=False, **{option: value})
