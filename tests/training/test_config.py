"""TrainingConfig: defaults from the recipe (one place), typed and clear validation errors."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from bandselect.errors import BandSelectError, ConfigError
from bandselect.training import TrainingConfig
from bandselect.training.config import DEFAULT_RECIPE, load_recipe, training_config


def test_every_default_is_the_recipe_value() -> None:
    section = load_recipe(DEFAULT_RECIPE)["training"]
    assert set(section) == set(TrainingConfig.model_fields)  # every field listed there, nothing else
    defaults = TrainingConfig().model_dump()
    for name, value in section.items():
        expected = tuple(value) if isinstance(value, list) else value
        assert defaults[name] == expected, name
    assert defaults["epochs"] == 50 and defaults["lr"] == 0.2 and defaults["monitor"] == "selection.rx_auroc"
    # Three spatial parts: train, validation (picks the epoch), test (reported).
    assert (defaults["train_rows"], defaults["val_rows"], defaults["test_rows"]) == (
        (0.0, 0.5),
        (0.5, 0.75),
        (0.75, 1.0),
    )


def test_every_field_has_a_description_for_the_run_form() -> None:
    properties = TrainingConfig.model_json_schema()["properties"]
    assert set(properties) == set(TrainingConfig.model_fields)
    assert all(properties[name].get("description") for name in properties)


def test_yaml_lists_become_tuples_and_the_model_is_frozen() -> None:
    config = TrainingConfig(train_rows=[0.0, 0.4], val_rows=[0.6, 1.0], test_rows=None, patch_size=[16, 24])
    assert config.train_rows == (0.0, 0.4) and config.val_rows == (0.6, 1.0) and config.test_rows is None
    assert config.patch_size == (16, 24)
    with pytest.raises(ValidationError):
        config.epochs = 3  # type: ignore[misc]
    assert config.patch_options() == {
        "patch_size": (16, 24),
        "batch_size": 4,
        "batches_per_epoch": 8,
        "train_rows": (0.0, 0.4),
        "val_rows": (0.6, 1.0),
        "num_workers": 0,
        "seed": 0,
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"epochs": 0}, r"epochs: Input should be greater than or equal to 1 \(found 0\)"),
        ({"epochs": True}, r"epochs: Input should be a valid integer \(found True\)"),
        ({"epochs": 2.0}, r"epochs: Input should be a valid integer"),
        ({"lr": 0.0}, r"lr: Input should be greater than 0"),
        ({"lr": float("nan")}, r"lr: Input should be a finite number"),
        ({"lr": "0.2"}, r"lr: Input should be a valid number \(found '0.2'\)"),
        ({"optimizer": "rmsprop"}, r"optimizer: Input should be 'adam', 'adamw' or 'sgd'"),
        (
            {"train_rows": (0.5, 0.2)},
            r"train_rows: must be fractions \[start, stop\).*0 <= start < stop <= 1",
        ),
        ({"val_rows": (0.5, 1.5)}, r"val_rows: must be fractions .*\(found \(0.5, 1.5\)\)"),
        ({"train_rows": (0.0, 0.6)}, r"train_rows \[0.0, 0.6\] and val_rows \[0.5, 0.75\] overlap"),
        ({"val_rows": (0.2, 0.4)}, r"train_rows \[0.0, 0.5\] and val_rows \[0.2, 0.4\] overlap"),
        ({"test_rows": (0.7, 1.0)}, r"val_rows \[0.5, 0.75\] and test_rows \[0.7, 1.0\] overlap"),
        ({"test_rows": (0.4, 0.45)}, r"train_rows \[0.0, 0.5\] and test_rows \[0.4, 0.45\] overlap"),
        ({"test_rows": (0.8, 0.8)}, r"test_rows: must be fractions \[start, stop\)"),
        ({"val_rows": None}, r"monitor 'selection.rx_auroc' needs val_rows"),
        ({"monitor": "auroc"}, r"monitor: must be a metric key 'node.port'"),
        ({"monitor_mode": "best"}, r"monitor_mode: Input should be 'max' or 'min'"),
        ({"monitor_from_epoch": 50}, r"monitor_from_epoch 50 is not an epoch of the run \(epochs 50\)"),
        ({"monitor_from_epoch": -1}, r"monitor_from_epoch: Input should be greater than or equal to 0"),
        ({"patch_size": 0}, r"patch_size: must be a positive int or \[height, width\]"),
        ({"device": "gpu"}, r"device: must be 'auto', 'cpu', 'cuda' or 'cuda:N' \(found 'gpu'\)"),
        ({"num_workers": -1}, r"num_workers: Input should be greater than or equal to 0"),
        ({"restore_best": "yes"}, r"restore_best: Input should be a valid boolean"),
        (
            {"epoch": 5},
            r"epoch: Extra inputs are not permitted.*'epoch' is not a setting \(did you mean 'epochs'\?\)",
        ),
    ],
)
def test_invalid_settings_are_config_errors_naming_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        TrainingConfig(**fields)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, BandSelectError)
    assert "Fix: " in str(caught.value) and "correct the fields named" in str(caught.value)
    # The same settings through a mapping (train_two_phase(training={...})) fail the same way.
    with pytest.raises(ConfigError, match=message):
        training_config(fields)


def test_every_invalid_field_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        TrainingConfig(epochs=0, lr=-1.0, batch_size=0)
    for problem in ("batch_size: ", "epochs: ", "lr: Input should be greater than 0 (found -1.0)"):
        assert problem in str(caught.value)


def test_nested_in_a_flow_config_it_validates_as_a_model() -> None:
    """Inside a flow config pydantic validates the mapping (no __init__): ValidationError, same message."""

    class Flow(BaseModel):
        training: TrainingConfig = TrainingConfig()

    assert Flow.model_validate({"training": {"epochs": 5}}).training == TrainingConfig(epochs=5)
    with pytest.raises(ValidationError, match=r"train_rows \[0.0, 0.6\] and val_rows \[0.5, 0.75\] overlap"):
        Flow.model_validate({"training": {"train_rows": [0.0, 0.6]}})
    assert (
        Flow.model_validate_json(Flow(training=TrainingConfig(epochs=3)).model_dump_json()).training.epochs
        == 3
    )


def test_training_config_accepts_none_a_mapping_or_a_config() -> None:
    assert training_config(None) == TrainingConfig()
    config = TrainingConfig(epochs=4)
    assert training_config(config) is config
    assert training_config({"epochs": 4}) == config
    with pytest.raises(ConfigError, match="a TrainingConfig, a mapping of its fields, or None"):
        training_config(4)  # type: ignore[arg-type]


def test_recipe_without_a_pipeline_section_is_refused(tmp_path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("training: {epochs: 3}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"a 'pipeline' section.*found sections \['training'\]"):
        load_recipe(path)
