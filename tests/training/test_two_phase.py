"""train_two_phase on a real scene and a synthetic campaign: the trained selection must beat the
variance-initialised one with RX on held-out rows (spatial split: top half trains, bottom half validates)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bandselect.synthetic import make_scene
from bandselect.training.two_phase import DEFAULT_RECIPE, load_recipe, recipe_config, train_two_phase

N_SELECT = 3


def _check_schedule_and_concentration(result, recipe: dict) -> None:
    selector = recipe["pipeline"]["nodes"]["selector"]["config"]
    expected = [
        max(selector["temperature_min"], selector["temperature_init"] * selector["temperature_decay"] ** e)
        for e in range(len(result.history))
    ]
    assert [h["temperature"]["selector"] for h in result.history] == pytest.approx(expected, rel=1e-6)
    initial = np.sort(result.history[0]["weights"]["selector"])[::-1]
    final = np.sort(result.history[-1]["weights"]["selector"])[::-1]
    print(
        f"top-{N_SELECT} weights: first epoch {initial[:N_SELECT].round(3)}, last {final[:N_SELECT].round(3)}"
    )
    # Concentrated on n_select channels (most of the budget), no collapse onto one (diversity).
    assert final[:N_SELECT].sum() >= 0.7 * N_SELECT > 5 * initial[:N_SELECT].sum()
    assert final[0] <= 1.5


@pytest.mark.realdata
@pytest.mark.slow
def test_pavia_trained_selection_beats_variance_init(load_shared) -> None:
    data = load_shared("pavia_rosis_abu_beach4")
    config = recipe_config(
        {
            "cube": data["cube"],
            "mask": data["gt"],
            "wavelengths": data["wavelengths_nm"],
            "batches_per_epoch": 4,
        },
        device="cpu",
    )
    result = train_two_phase(config)
    print(
        f"pavia RX val AUROC: variance init {result.initial_selection.tolist()} -> "
        f"{result.val_auroc_before:.4f}, "
        f"trained {result.final_selection.tolist()} -> {result.val_auroc_after:.4f}"
    )
    assert result.val_auroc_after > result.val_auroc_before
    _check_schedule_and_concentration(result, load_recipe(DEFAULT_RECIPE))


def test_synthetic_campaign_streamed_from_store(tmp_path: Path) -> None:
    from bandselect.store import open_campaign

    scene = make_scene(96, 96, n_bands=40, seed=1, anomaly_fraction=0.01)
    campaign = open_campaign(tmp_path / "campaign", create=True)
    campaign.append(scene.to_dataset(), name="synthetic", chunk_yx=(32, 32))
    config = recipe_config(
        {"store": str(tmp_path / "campaign"), "batches_per_epoch": 4}, epochs=20, device="cpu"
    )
    result = train_two_phase(config)
    planted = scene.discriminative_bands.tolist()
    print(
        f"synthetic RX val AUROC: variance init {result.initial_selection.tolist()} -> "
        f"{result.val_auroc_before:.4f}, trained {result.final_selection.tolist()} -> "
        f"{result.val_auroc_after:.4f} (planted bands {planted})"
    )
    assert result.val_auroc_after > result.val_auroc_before + 0.2
    assert set(result.final_selection.tolist()) & set(planted)
    _check_schedule_and_concentration(result, load_recipe(DEFAULT_RECIPE))


def test_recipe_yaml_defines_the_seed_pipeline_with_rx() -> None:
    recipe = load_recipe(DEFAULT_RECIPE)
    connections = recipe["pipeline"]["connections"]
    for seed_connection in (
        ["data.cube", "selector.data"],
        ["selector.selected", "rx.data"],
        ["selector.weights", "entropy_loss.weights"],
        ["selector.weights", "diversity_loss.weights"],
    ):
        assert seed_connection in connections
    assert recipe["pipeline"]["nodes"]["rx"]["type"] == "RXDetector"
