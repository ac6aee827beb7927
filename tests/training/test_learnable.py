"""The recipe's pipeline around any learnable selector (soft or Concrete), and training one on arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from training_fixtures import planted_campaign

from bandselect.errors import PipelineError
from bandselect.selectors import ConcreteBandSelector, SoftChannelSelector, SupervisedFullSpectrumBandSelector
from bandselect.synthetic import make_scene
from bandselect.training import TrainingData, train_two_phase
from bandselect.training.config import DEFAULT_RECIPE, load_recipe
from bandselect.training.learnable import (
    REDUCED_RX_EPS,
    is_learnable_selector,
    train_selector,
    training_pipeline,
)


def test_the_soft_selector_gets_the_recipe_pipeline_as_it_is() -> None:
    selector = SoftChannelSelector(n_select=3, input_channels=20, init_method="variance", seed=0)
    pipeline = training_pipeline(selector)
    assert pipeline.nodes["selector"] is selector
    assert set(pipeline.nodes) == set(load_recipe(DEFAULT_RECIPE)["pipeline"]["nodes"])
    rx = pipeline.nodes["rx"]
    assert rx.input_channels == 20 and rx.eps == 1.0 and rx.background == "batch_negatives"
    assert pipeline.source_of("entropy_loss", "weights") == ("selector", "weights")
    assert pipeline.source_of("rx", "mask") == ("data", "mask")


def test_the_concrete_selector_feeds_rx_its_n_select_channels_and_the_regularizers_its_channel_weights() -> (
    None
):
    selector = ConcreteBandSelector(input_channels=20, n_select=3, seed=0)
    pipeline = training_pipeline(selector)
    rx = pipeline.nodes["rx"]
    # Three outputs that become the selected bands: the ridge only conditions their covariance.
    assert rx.input_channels == 3 and rx.eps == REDUCED_RX_EPS == 1e-3
    assert pipeline.nodes["head"].positive  # an increasing head: RX cannot be inverted
    assert pipeline.source_of("rx", "data") == ("selector", "selected")
    for regularizer in ("entropy_loss", "diversity_loss"):
        assert pipeline.source_of(regularizer, "weights") == ("selector", "channel_weights")


def test_a_statistical_selector_is_not_trained() -> None:
    supervised = SupervisedFullSpectrumBandSelector(num_spectral_bands=20)
    assert not is_learnable_selector(supervised)
    assert is_learnable_selector(SoftChannelSelector(n_select=3, input_channels=20))
    with pytest.raises(PipelineError, match=r"SupervisedFullSpectrumBandSelector as the recipe's selector"):
        training_pipeline(supervised)


def test_train_selector_on_arrays_trains_in_place_and_reports_the_test_rows() -> None:
    scene = make_scene(48, 48, n_bands=12, seed=2, anomaly_fraction=0.03)
    selector = ConcreteBandSelector(input_channels=12, init_method="variance", seed=1)
    options = {"epochs": 3, "patch_size": 16, "batches_per_epoch": 2, "device": "cpu", "monitor": None}
    result = train_selector(selector, scene.cube, scene.mask, scene.wavelengths_nm, options)
    assert result.pipeline.nodes["selector"] is selector and not selector.is_trainable
    assert result.selection_after == selector.selection(scene.wavelengths_nm)
    assert len(result.history) == 3 and result.history[0].weights["selector"]
    assert result.test_auroc_after is not None and 0.0 <= result.test_auroc_after <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["soft", "concrete"])
def test_the_planted_bands_of_the_synthetic_campaign_are_found(kind: str, tmp_path: Path) -> None:
    """Anomalies darken the background in 550/558/782/790 nm; RX needs one planted band and a reference."""
    planted = planted_campaign(tmp_path / "campaign")
    bands = 61
    node = (
        SoftChannelSelector(n_select=3, input_channels=bands, init_method="variance", seed=0)
        if kind == "soft"
        else ConcreteBandSelector(input_channels=bands, init_method="variance", seed=0)
    )
    result = train_two_phase(training_pipeline(node), tmp_path / "campaign", {"device": "cpu"})
    print(
        f"{kind}: trained {list(result.trained_selection.indices)}, searched"
        f" {list(result.selection_after.indices)} (planted {planted}), test {result.test_auroc_after}"
    )
    # The gradient phase itself finds a planted band (the search after it, on every band, could move a
    # band onto one from an untrained start: asserting on the searched selection alone cannot fail).
    assert result.trained_selection is not None
    assert set(result.trained_selection.indices) & set(planted)
    assert set(result.trained_selection.indices) != set(result.selection_before.indices)
    assert set(result.selection_after.indices) & set(planted)
    assert result.test_auroc_after > 0.99 > 0.6 > result.test_auroc_before
    assert len(set(result.selection_after.indices)) == 3


def test_resume_equals_an_uninterrupted_run_for_the_concrete_selector(tmp_path: Path) -> None:
    scene = make_scene(40, 40, n_bands=10, seed=4, anomaly_fraction=0.03)
    data = TrainingData.from_arrays(scene.cube, scene.mask, wavelengths_nm=scene.wavelengths_nm)
    options = {"patch_size": 16, "batches_per_epoch": 2, "device": "cpu", "monitor": None}

    def pipeline():  # type: ignore[no-untyped-def]
        return training_pipeline(ConcreteBandSelector(input_channels=10, init_method="variance", seed=3))

    full = train_two_phase(pipeline(), data, {**options, "epochs": 5}, checkpoint_dir=tmp_path / "a")
    train_two_phase(pipeline(), data, {**options, "epochs": 3}, checkpoint_dir=tmp_path / "b")
    resumed = train_two_phase(
        pipeline(), data, {**options, "epochs": 5}, checkpoint_dir=tmp_path / "b", resume=True
    )
    assert torch.equal(resumed.pipeline.nodes["selector"].logits, full.pipeline.nodes["selector"].logits)
    assert [h.loss for h in resumed.history] == [h.loss for h in full.history]
    np.testing.assert_array_equal(
        resumed.history[-1].weights["selector"], full.history[-1].weights["selector"]
    )


def test_the_recipe_head_is_increasing_so_the_loss_cannot_invert_the_detector() -> None:
    """Scores that rank the targets *below* the background: a free scale turns negative (the BCE then
    rewards a selector for hiding the targets, as Concrete did on the planted campaign); the recipe's
    positive head keeps a higher score a higher logit."""
    from bandselect.errors import ConfigError
    from bandselect.nodes import AnomalyBCELoss, ScoreToLogit

    scores = torch.linspace(0.5, 1.5, 64).reshape(1, 8, 8, 1)
    mask = scores < 0.6  # the lowest scores are the targets
    scales = {}
    for positive in (False, True):
        head, loss = ScoreToLogit(positive=positive), AnomalyBCELoss()
        optimizer = torch.optim.Adam(head.parameters(), lr=0.2)
        for _ in range(40):
            optimizer.zero_grad()
            loss(logits=head(scores=scores)["logits"], mask=mask)["loss"].backward()
            optimizer.step()
        logits = head(scores=scores)["logits"].detach().flatten()
        scales[positive] = float(logits[-1] - logits[0])
    assert scales[False] < 0 < scales[True]
    assert load_recipe(DEFAULT_RECIPE)["pipeline"]["nodes"]["head"]["config"]["positive"] is True
    with pytest.raises(ConfigError, match="scale_init"):
        ScoreToLogit(positive=True, scale_init=0.0)
