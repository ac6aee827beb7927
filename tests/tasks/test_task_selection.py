"""initialise_selectors.fn, train_selectors.fn, selection_of.fn: the flow's selection steps on a store."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bandselect.names import ATTR_DISCRIMINATIVE_BANDS
from bandselect.store import Campaign
from bandselect.tasks import initialise_selectors, selection_of, train_selectors, update_statistics
from bandselect.training import TrainingConfig
from bandselect.training.config import load_recipe

SUPERVISED = {
    "nodes": {
        "selector": {
            "type": "SupervisedFullSpectrumBandSelector",
            "config": {"num_spectral_bands": "auto", "criterion": "separability", "k": 3},
        }
    },
    "connections": [
        ["data.cube", "selector.cube"],
        ["data.wavelengths", "selector.wavelengths"],
        ["data.mask", "selector.mask"],
    ],
}


def test_supervised_pipeline_is_initialised_once_and_reports_a_planted_band(
    campaign: Campaign, tmp_path: Path
) -> None:
    store = str(campaign.path)
    summary = update_statistics.fn(store, 64)
    ids = list(summary.acquisition_ids)
    saved = initialise_selectors.fn(store, SUPERVISED, str(tmp_path), ids, None, None, 64)
    assert saved.selector == "selector" and not saved.learnable and saved.initialised == ("selector",)
    assert initialise_selectors.fn(store, SUPERVISED, str(tmp_path), ids, None, None, 64) == saved  # reused
    selection = selection_of.fn(store, saved)
    planted = set(campaign.open(ids[0]).attrs[ATTR_DISCRIMINATIVE_BANDS])
    assert selection.k == 3 and planted & set(selection.indices)
    assert selection.selector_type == "SupervisedFullSpectrumBandSelector"


def test_learnable_pipeline_trains_and_keeps_its_history(campaign: Campaign, tmp_path: Path) -> None:
    store = str(campaign.path)
    ids = list(update_statistics.fn(store, 64).acquisition_ids)
    saved = initialise_selectors.fn(store, load_recipe()["pipeline"], str(tmp_path), ids, None, None, 64)
    assert saved.learnable and saved.selector_type == "SoftChannelSelector"
    # refine_window 0: the saved selection is then the last epoch's top weights (the refinement would
    # move bands after the history's last record).
    training = TrainingConfig(
        epochs=3, patch_size=16, batches_per_epoch=2, monitor=None, device="cpu", refine_window=0
    )
    trained = train_selectors.fn(store, saved, str(tmp_path), ids, training)
    assert [record.epoch for record in trained.history] == [0, 1, 2]
    assert trained.temperature_min == 0.1 and trained.saved.directory != saved.directory
    weights = np.asarray(trained.history[-1].weights["selector"])
    selection = selection_of.fn(store, trained.saved)
    assert sorted(selection.indices) == sorted(np.argsort(-weights, kind="stable")[:3].tolist())
    assert train_selectors.fn(store, saved, str(tmp_path), ids, training) == trained  # reused


def test_the_refinement_is_recorded_with_the_trained_pipeline(campaign: Campaign, tmp_path: Path) -> None:
    from bandselect.training.campaign import HISTORY_FILE, TrainedPipeline

    store = str(campaign.path)
    ids = list(update_statistics.fn(store, 64).acquisition_ids)
    saved = initialise_selectors.fn(store, load_recipe()["pipeline"], str(tmp_path), ids, None, None, 64)
    training = TrainingConfig(epochs=3, patch_size=16, batches_per_epoch=2, monitor=None, device="cpu")
    trained = train_selectors.fn(store, saved, str(tmp_path), ids, training)
    assert trained.trained_bands is not None and len(trained.trained_bands) == 3
    # The saved selection is the trained bands with the recorded moves applied, and the record survives
    # the round trip through history.json.
    bands = list(trained.trained_bands)
    for old, new in trained.refine_moves:
        bands[bands.index(old)] = new
    assert sorted(selection_of.fn(store, trained.saved).indices) == sorted(bands)
    text = (Path(trained.saved.directory) / HISTORY_FILE).read_text()
    assert TrainedPipeline.from_json(text) == trained


def test_a_training_pipeline_starts_from_its_training_rows_only(tmp_path: Path) -> None:
    """The flows' phase 1 of a learnable pipeline sees neither the validation nor the test rows: the
    variance start is the training rows' (as train_two_phase on the same store makes it), not the whole
    acquisition's, whose loudest bands sit in the rows the report is made on."""
    import copy

    from bandselect.store import create_campaign, make_acquisition
    from bandselect.training import TrainingData, train_two_phase

    rng = np.random.default_rng(5)
    cube = rng.normal(1.0, 0.05, (32, 32, 12)).astype(np.float32)
    cube[:16, :, :3] += rng.normal(0.0, 0.5, (16, 32, 3)).astype(np.float32)  # training rows: 0, 1, 2
    cube[16:, :, 9:] += rng.normal(0.0, 2.0, (16, 32, 3)).astype(np.float32)  # the rest: 9, 10, 11
    mask = (rng.random((32, 32)) < 0.05).astype(np.uint8)
    store = tmp_path / "c.zarr"
    campaign = create_campaign(store)
    campaign.append(make_acquisition(cube, np.linspace(400.0, 900.0, 12), mask), chunk_yx=(8, 8))
    ids = list(update_statistics.fn(str(store), 64).acquisition_ids)
    pipeline = copy.deepcopy(load_recipe()["pipeline"])
    pipeline["nodes"]["selector"]["config"]["init_method"] = "variance"

    saved = initialise_selectors.fn(str(store), pipeline, str(tmp_path), ids, None, None, 64)
    assert saved.learnable and saved.initialised == ()  # left to the training's phase 1
    training = TrainingConfig(epochs=1, patch_size=8, batches_per_epoch=1, device="cpu", refine_window=0)
    trained = train_selectors.fn(str(store), saved, str(tmp_path), ids, training)
    assert trained.saved.initialised == ("selector",)
    assert trained.start_bands is not None and sorted(trained.start_bands) == [0, 1, 2]
    whole = np.argsort(-cube.reshape(-1, 12).var(axis=0))[:3]
    assert sorted(whole.tolist()) == [9, 10, 11]  # what the campaign statistics would have started from
    on_arrays = train_two_phase(pipeline, TrainingData.from_store(store, ids), training)
    assert on_arrays.initialised == ("selector",)
    assert sorted(on_arrays.selection_before.indices) == sorted(trained.start_bands)
