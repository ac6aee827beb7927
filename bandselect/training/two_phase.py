"""The two-phase recipe: statistical initialisation → ``unfreeze()`` → gradient training with RX.

Phase 1 runs :class:`~bandselect.training.StatisticalTrainer` over the training region (variance
initialisation of the SoftChannelSelector). Phase 2 unfreezes the selector and runs
:class:`~bandselect.training.GradientTrainer` on random training patches: the selection feeds an RX
detector (``background="batch"``, so RX always sees the statistics of the currently weighted data), a
score-to-logit head and a BCE loss against the anomaly mask, plus the entropy and diversity regularizers.

Before and after, the hard top-``n_select`` selection is judged the same way: global RX on only those
bands, background statistics from the training region, AUROC on the validation region (a spatial split,
see :class:`~bandselect.training.loader.PatchDataModule`).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bandselect.errors import ConfigError, PipelineError
from bandselect.evaluation.metrics import rx_auroc
from bandselect.names import PORT_CUBE, PORT_MASK
from bandselect.pipeline import Pipeline
from bandselect.pipeline.config import load_yaml
from bandselect.training.gradient import GradientTrainer
from bandselect.training.patches import PatchDataModule
from bandselect.training.statistical import StatisticalTrainer

#: The recipe shipped inside the package (pipeline, data and training sections), so an installed wheel
#: has it too.
DEFAULT_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "two_phase.yaml"
AUTO = "auto"


class DataConfig(BaseModel):
    """Where the data comes from and how it is cut into patches.

    Exactly one of ``store`` (a campaign store path) or ``cube`` (an ``(H, W, C)`` or ``(B, H, W, C)``
    array, with ``mask`` and ``wavelengths``) is given.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    store: str | None = None
    ids: list[str] | None = None
    cube: Any = None
    mask: Any = None
    wavelengths: Any = None
    patch_size: int | tuple[int, int] = 32
    batch_size: int = 4
    batches_per_epoch: int = 8
    train_rows: tuple[float, float] = (0.0, 0.5)
    val_rows: tuple[float, float] = (0.5, 1.0)
    num_workers: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if (self.store is None) == (self.cube is None):
            raise ValueError("give exactly one data source: store=<campaign path> or cube=<array>")
        if self.cube is not None and self.wavelengths is None:
            raise ValueError("in-memory data needs wavelengths=<(C,) array in nm>")
        return self


class TwoPhaseConfig(BaseModel):
    """Configuration of :func:`train_two_phase`.

    ``pipeline`` is a YAML path, YAML text or the parsed mapping in the seed's form; ``input_channels:
    auto`` in a node's config is replaced by the data's band count. ``selector`` names the
    SoftChannelSelector node. ``monitor``, ``monitor_from_epoch`` and ``restore_best`` are passed to
    :class:`~bandselect.training.GradientTrainer`: e.g. ``monitor: auroc.auroc:hard`` keeps the epoch
    whose hard top-``n_select`` selection scores best on the validation rows (among the epochs after the
    temperature reached its floor); None keeps the last epoch.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    pipeline: Any = None
    data: DataConfig
    selector: str = "selector"
    epochs: int = Field(30, ge=1)
    lr: float = Field(0.05, gt=0)
    optimizer: str = "adam"
    seed: int = 0
    device: str = "auto"
    checkpoint_dir: str | None = None
    resume: bool = False
    progress: bool = False
    monitor: str | None = None
    monitor_from_epoch: int | None = None
    restore_best: bool = True


@dataclass
class TwoPhaseResult:
    """What :func:`train_two_phase` returns.

    Attributes
    ----------
    pipeline
        The trained pipeline (evaluation mode).
    history
        The gradient trainer's per-epoch history (loss, metrics, temperature, channel weights).
    initial_selection, final_selection
        Hard top-``n_select`` band indices after phase 1 (variance initialisation) and after phase 2.
    val_auroc_before, val_auroc_after
        Validation AUROC of RX on those bands (background from the training region).
    best_epoch
        The epoch whose weights were kept (by ``monitor``); None when the last epoch was kept.
    """

    pipeline: Pipeline
    history: list[dict[str, Any]]
    initial_selection: np.ndarray
    final_selection: np.ndarray
    val_auroc_before: float
    val_auroc_after: float
    best_epoch: int | None = None


class _RegionBatches:
    """A datamodule over the training region, in row blocks (phase 1 statistics, bounded memory)."""

    def __init__(self, datamodule: PatchDataModule, block_rows: int) -> None:
        self.datamodule = datamodule
        self.block_rows = block_rows

    def train_dataloader(self) -> list[dict[str, Any]]:
        from bandselect.store import Window
        from bandselect.training.samplers import collate as _collate
        from bandselect.training.samplers import row_range as _row_range

        source = self.datamodule.source
        batches = []
        for index, (height, width) in enumerate(source.shapes):
            y0, y1 = _row_range(height, self.datamodule.train_rows)
            for start in range(y0, y1, self.block_rows):
                window = Window(index, start, min(start + self.block_rows, y1), 0, width)
                batches.append(_collate(source, [window]))
        return batches


def load_recipe(path: str | os.PathLike[str] = DEFAULT_RECIPE) -> dict[str, Any]:
    """Read a recipe YAML (``pipeline``, ``data``, ``training`` sections) with ``yaml.safe_load``."""
    with open(path, encoding="utf-8") as f:
        recipe = yaml.safe_load(f)
    if not isinstance(recipe, dict) or "pipeline" not in recipe:
        raise ConfigError(
            f"recipe {path}",
            expected="a mapping with a 'pipeline' section (and optional 'data', 'training')",
            found=type(recipe).__name__,
            fix="start from bandselect/recipes/two_phase.yaml",
        )
    return recipe


def recipe_config(
    data: dict[str, Any], path: str | os.PathLike[str] = DEFAULT_RECIPE, **overrides: Any
) -> TwoPhaseConfig:
    """A :class:`TwoPhaseConfig` from a recipe YAML: its pipeline, data and training sections.

    ``data`` (e.g. ``{"store": path}`` or ``{"cube": ..., "mask": ..., "wavelengths": ...}``) is merged
    over the recipe's data section; ``overrides`` over its training section (``epochs=5``, ...).
    """
    recipe = load_recipe(path)
    fields = {**(recipe.get("training") or {}), **overrides}
    fields["epochs"] = fields.pop("epochs", 30)
    return TwoPhaseConfig(
        pipeline=recipe["pipeline"], data=DataConfig(**{**(recipe.get("data") or {}), **data}), **fields
    )


def _pipeline_config(source: Any, n_bands: int) -> dict[str, Any]:
    if source is None:
        source = load_recipe()["pipeline"]
    config = copy.deepcopy(source) if isinstance(source, dict) else load_yaml(source)
    if "pipeline" in config and "nodes" not in config:
        config = config["pipeline"]
    for node in config.get("nodes", {}).values():
        options = node.get("config") or {}
        if options.get("input_channels") == AUTO:
            options["input_channels"] = n_bands
    return config


def _datamodule(data: DataConfig, seed: int) -> PatchDataModule:
    options = {
        "patch_size": data.patch_size,
        "batch_size": data.batch_size,
        "batches_per_epoch": data.batches_per_epoch,
        "train_rows": data.train_rows,
        "val_rows": data.val_rows,
        "num_workers": data.num_workers,
        "seed": seed,
    }
    if data.store is not None:
        return PatchDataModule.from_store(data.store, data.ids, **options)
    return PatchDataModule.from_arrays(data.cube, data.mask, wavelengths=data.wavelengths, **options)


def selection_auroc(datamodule: PatchDataModule, indices: np.ndarray) -> float:
    """Mean over acquisitions of the validation AUROC of global RX on the bands ``indices``.

    The RX background comes from the training region, the AUROC from the validation region.
    """
    values = []
    for source in range(len(datamodule.source.shapes)):
        train = datamodule.full_region(datamodule.train_rows, source)
        val = datamodule.full_region(datamodule.val_rows, source)
        cube = np.concatenate([train[PORT_CUBE][0].numpy(), val[PORT_CUBE][0].numpy()], axis=0)
        mask = np.concatenate(
            [train[PORT_MASK][0, ..., 0].numpy(), val[PORT_MASK][0, ..., 0].numpy()], axis=0
        )
        is_train = np.zeros(mask.shape, bool)
        is_train[: train[PORT_CUBE].shape[1]] = True
        values.append(rx_auroc(cube, mask, indices, background=is_train, evaluate=~is_train))
    return float(np.mean(values))


def _hard_selection(selector: Any) -> np.ndarray:
    weights = selector.get_selection_weights(hard=False).cpu()
    # Top-n by weight, largest first, ties to the lower index (TopKIndices' rule).
    order = np.argsort(-weights.numpy(), kind="stable")
    return order[: selector.n_select].astype(np.int64)


def train_two_phase(config: TwoPhaseConfig | dict[str, Any]) -> TwoPhaseResult:
    """Run the two-phase recipe and report the selection's RX AUROC before and after gradient training.

    Parameters
    ----------
    config
        A :class:`TwoPhaseConfig` or a mapping validated into one.

    Returns
    -------
    TwoPhaseResult

    Examples
    --------
    >>> from bandselect.synthetic import make_scene
    >>> scene = make_scene(48, 48, n_bands=16, seed=0, anomaly_fraction=0.02)
    >>> result = train_two_phase({"data": {"cube": scene.cube, "mask": scene.mask,
    ...     "wavelengths": scene.wavelengths_nm, "patch_size": 16, "batches_per_epoch": 2}, "epochs": 2})
    >>> len(result.history), len(result.final_selection)
    (2, 3)
    """
    if not isinstance(config, TwoPhaseConfig):
        config = TwoPhaseConfig.model_validate(config)
    datamodule = _datamodule(config.data, config.seed)
    n_bands = int(datamodule.wavelengths.size)
    pipeline = Pipeline.from_config(_pipeline_config(config.pipeline, n_bands))
    if config.selector not in pipeline.nodes:
        raise PipelineError(
            f"selector node {config.selector!r} is not in the pipeline",
            expected=f"one of {list(pipeline.nodes)}",
            found=repr(config.selector),
            fix="name the SoftChannelSelector node in TwoPhaseConfig.selector",
        )
    selector = pipeline.nodes[config.selector]

    # Phase 1: statistical initialisation over the training region only.
    block_rows = datamodule.patch_size[0]
    StatisticalTrainer(pipeline=pipeline, datamodule=_RegionBatches(datamodule, block_rows)).fit()
    selector.eval()
    initial = _hard_selection(selector)
    before = selection_auroc(datamodule, initial)

    # Phase 2: unfreeze → gradient training.
    selector.unfreeze()
    trainer = GradientTrainer(
        pipeline,
        datamodule,
        optimizer=config.optimizer,
        lr=config.lr,
        max_epochs=config.epochs,
        checkpoint_dir=config.checkpoint_dir,
        device=config.device,
        seed=config.seed,
        progress=config.progress,
        monitor=config.monitor,
        monitor_from_epoch=config.monitor_from_epoch,
        restore_best=config.restore_best,
    )
    history = trainer.fit(resume=config.resume)
    final = _hard_selection(selector)
    after = selection_auroc(datamodule, final)
    return TwoPhaseResult(
        pipeline=pipeline,
        history=history,
        initial_selection=initial,
        final_selection=final,
        val_auroc_before=before,
        val_auroc_after=after,
        best_epoch=trainer.best_epoch if config.restore_best else None,
    )
