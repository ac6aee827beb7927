"""The one training configuration: :class:`TrainingConfig`, with its defaults in the shipped recipe.

``bandselect/recipes/two_phase.yaml`` is the single place the defaults live: its ``training`` section
lists every field of :class:`TrainingConfig` (the recipe's comments say why each value was chosen), and the
model reads it when this module is imported. The flow configs nest the model unchanged, tasks receive it
as the model itself, and :func:`~bandselect.training.train_two_phase` takes it (or a mapping of
overrides).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import yaml
from pydantic import (
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from bandselect.errors import ConfigError
from bandselect.settings import SettingsModel
from bandselect.validation import describe_validation_error, unknown_field_hints

__all__ = [
    "DEFAULT_RECIPE",
    "TrainingConfig",
    "describe_validation_error",
    "load_recipe",
    "training_config",
]

#: The recipe shipped inside the package (pipeline and training sections), so an installed wheel has it.
DEFAULT_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "two_phase.yaml"

#: ``"node.port"``, optionally with the hard-selection suffix (see :mod:`bandselect.training.monitor`).
_MONITOR_KEY = re.compile(r"^[^.\s:]+\.[^.\s:]+(:hard)?$")


def load_recipe(path: str | os.PathLike[str] = DEFAULT_RECIPE) -> dict[str, Any]:
    """Read a recipe YAML (``pipeline`` and ``training`` sections) with ``yaml.safe_load``.

    Raises
    ------
    ConfigError
        The file is not a mapping with a ``pipeline`` section.
    """
    with open(path, encoding="utf-8") as f:
        recipe = yaml.safe_load(f)
    if not isinstance(recipe, dict) or "pipeline" not in recipe:
        raise ConfigError(
            f"recipe {path}",
            expected="a mapping with a 'pipeline' section (and an optional 'training' section)",
            found=type(recipe).__name__ if not isinstance(recipe, dict) else f"sections {sorted(recipe)}",
            fix="start from bandselect/recipes/two_phase.yaml",
        )
    return recipe


_DEFAULTS: dict[str, Any] = load_recipe()["training"]


def _default(name: str) -> Any:
    """The recipe's value of ``name`` (every field must be listed there: one source of defaults)."""
    if name not in _DEFAULTS:
        raise ConfigError(
            f"recipe {DEFAULT_RECIPE} training section",
            expected=f"a value for {name!r} (every TrainingConfig field has its default there)",
            found=f"keys {sorted(_DEFAULTS)}",
            fix=f"add '{name}: <value>' to the training section",
        )
    return _DEFAULTS[name]


def _check_rows(rows: tuple[float, float] | None) -> tuple[float, float] | None:
    if rows is not None and not 0.0 <= rows[0] < rows[1] <= 1.0:
        raise ValueError(
            "must be fractions [start, stop) of each acquisition's height with 0 <= start < stop <= 1, "
            "e.g. [0.0, 0.5]"
        )
    return rows


class TrainingConfig(SettingsModel):
    """How a pipeline is trained: patches, spatial split, optimiser, schedule length, best-epoch monitor.

    The split is spatial and in three parts, so the number reported is honest: gradient steps see only
    ``train_rows``, the best epoch is picked on ``val_rows`` (that AUROC is optimistic: it is the best of
    many candidates on those rows), and ``test_rows``, seen by neither, give the AUROC reported.

    Every default is the recipe's (``bandselect/recipes/two_phase.yaml``, section ``training``). Building
    one with invalid values raises :class:`~bandselect.errors.ConfigError` naming each invalid field
    (``model_validate`` raises pydantic's ``ValidationError``, as inside a flow config).

    Examples
    --------
    >>> config = TrainingConfig(epochs=5)
    >>> config.epochs, config.lr, config.train_rows
    (5, 0.2, (0.0, 0.5))
    >>> TrainingConfig(train_rows=(0.0, 0.6))
    Traceback (most recent call last):
    ...
    bandselect.errors.ConfigError: TrainingConfig: expected valid training settings, ...
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    # -- data: patches and the spatial split ---------------------------------------------------------
    patch_size: StrictInt | tuple[StrictInt, StrictInt] = Field(
        _default("patch_size"),
        description="Training patch size in pixels: an int (square) or [height, width].",
    )
    batch_size: int = Field(_default("batch_size"), ge=1, strict=True, description="Patches per batch.")
    batches_per_epoch: int = Field(
        _default("batches_per_epoch"), ge=1, strict=True, description="Training batches per epoch."
    )
    train_rows: tuple[StrictFloat, StrictFloat] = Field(
        _default("train_rows"),
        description="Rows that train: fractions [start, stop) of each acquisition's height.",
    )
    val_rows: tuple[StrictFloat, StrictFloat] | None = Field(
        _default("val_rows"),
        description="Rows that validate (pick the best epoch); must not overlap train_rows. null: no "
        "validation.",
    )
    test_rows: tuple[StrictFloat, StrictFloat] | None = Field(
        _default("test_rows"),
        description="Rows that test: never trained on nor used to pick the epoch; the AUROC reported. Must "
        "not overlap train_rows or val_rows. null: no test part.",
    )
    num_workers: int = Field(
        _default("num_workers"), ge=0, strict=True, description="Background data-loading processes (0: none)."
    )
    # -- optimisation ----------------------------------------------------------------------------------
    epochs: int = Field(_default("epochs"), ge=1, strict=True, description="Number of training epochs.")
    lr: float = Field(_default("lr"), gt=0.0, strict=True, allow_inf_nan=False, description="Learning rate.")
    optimizer: Literal["adam", "adamw", "sgd"] = Field(_default("optimizer"), description="Optimizer.")
    seed: int = Field(
        _default("seed"), ge=0, strict=True, description="Seed of the patches, torch, NumPy and Python."
    )
    device: str = Field(
        _default("device"),
        description="'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N'.",
    )
    # -- best epoch --------------------------------------------------------------------------------------
    monitor: str | None = Field(
        _default("monitor"),
        description="Validation metric 'node.port' whose best epoch is kept; suffix ':hard' evaluates the "
        "hard top-k selection; 'selection.rx_auroc' (train_two_phase, the recipe's) is the reported "
        "measure on the validation rows. null: keep the last epoch.",
    )
    monitor_mode: Literal["max", "min"] = Field(
        _default("monitor_mode"), description="'max': larger monitored values are better; 'min': smaller."
    )
    monitor_from_epoch: int | None = Field(
        _default("monitor_from_epoch"),
        ge=0,
        strict=True,
        description="First epoch that may be kept. null: the first epoch at which every annealed "
        "selector's temperature has reached its floor.",
    )
    restore_best: bool = Field(
        _default("restore_best"),
        strict=True,
        description="With a monitor: end with the best epoch's weights (else the last epoch's).",
    )
    refine_window: Annotated[int, Field(ge=0, strict=True)] | Literal["all"] = Field(
        _default("refine_window"),
        description="After training, the local search of the hard selection on the validation RX AUROC "
        "(train_two_phase's refine_selection): each selected band may move to a band within this many of "
        "the trained one, or anywhere with 'all'; 0: off (and off without val_rows).",
    )

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise ConfigError(
                "TrainingConfig",
                expected="valid training settings",
                found=describe_validation_error(error),
                fix="; ".join(
                    [
                        *unknown_field_hints(type(self), error),
                        "correct the fields named (every field and its default: the training section of "
                        "bandselect/recipes/two_phase.yaml)",
                    ]
                ),
            ) from error

    @field_validator("patch_size")
    @classmethod
    def _positive_patch(cls, value: int | tuple[int, int]) -> int | tuple[int, int]:
        sizes = (value,) if isinstance(value, int) else value
        if any(s < 1 for s in sizes):
            raise ValueError("must be a positive int or [height, width], e.g. 32")
        return value

    @field_validator("train_rows")
    @classmethod
    def _train_rows(cls, value: tuple[float, float]) -> tuple[float, float]:
        checked = _check_rows(value)
        assert checked is not None  # train_rows is never None
        return checked

    @field_validator("val_rows", "test_rows")
    @classmethod
    def _optional_rows(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        return _check_rows(value)

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str) -> str:
        if value != "auto":
            try:
                torch.device(value)
            except (RuntimeError, TypeError) as exc:
                raise ValueError("must be 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
        return value

    @field_validator("monitor")
    @classmethod
    def _monitor_key(cls, value: str | None) -> str | None:
        if value is not None and not _MONITOR_KEY.match(value):
            raise ValueError(
                "must be a metric key 'node.port', optionally with ':hard' (e.g. 'auroc.auroc:hard'), "
                "or null to keep the last epoch"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainingConfig:
        parts = {"train_rows": self.train_rows, "val_rows": self.val_rows, "test_rows": self.test_rows}
        named = [(name, rows) for name, rows in parts.items() if rows is not None]
        for i, (first, a) in enumerate(named):
            for second, b in named[i + 1 :]:
                if a[0] < b[1] and b[0] < a[1]:
                    raise ValueError(
                        f"{first} {list(a)} and {second} {list(b)} overlap (the parts must not share "
                        "pixels): use disjoint ranges, e.g. [0.0, 0.5], [0.5, 0.75] and [0.75, 1.0]"
                    )
        if self.monitor is not None and self.val_rows is None:
            raise ValueError(
                f"monitor {self.monitor!r} needs val_rows to be evaluated on: set val_rows "
                "(e.g. [0.5, 1.0]) or monitor: null"
            )
        if self.monitor_from_epoch is not None and self.monitor_from_epoch >= self.epochs:
            raise ValueError(
                f"monitor_from_epoch {self.monitor_from_epoch} is not an epoch of the run (epochs "
                f"{self.epochs}): lower it, raise epochs, or use null (the temperature floor)"
            )
        return self

    def patch_options(self) -> dict[str, Any]:
        """The keyword arguments of :class:`~bandselect.training.patches.PatchDataModule` it sets."""
        return {
            "patch_size": self.patch_size,
            "batch_size": self.batch_size,
            "batches_per_epoch": self.batches_per_epoch,
            "train_rows": self.train_rows,
            "val_rows": self.val_rows,
            "num_workers": self.num_workers,
            "seed": self.seed,
        }


def training_config(value: TrainingConfig | Mapping[str, Any] | None = None) -> TrainingConfig:
    """``value`` as a :class:`TrainingConfig`: None → the recipe's defaults, a mapping → overrides of them.

    Raises
    ------
    ConfigError
        An invalid field (each named), or a value that is neither.
    """
    if value is None:
        return TrainingConfig()
    if isinstance(value, TrainingConfig):
        return value
    if isinstance(value, Mapping):
        return TrainingConfig(**{str(k): v for k, v in value.items()})
    raise ConfigError(
        "training settings",
        expected="a TrainingConfig, a mapping of its fields, or None (the recipe's defaults)",
        found=type(value).__name__,
        fix="pass TrainingConfig(epochs=...) or {'epochs': ...}",
    )
