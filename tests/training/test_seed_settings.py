"""The issue-11 failure, on a real scene: the seed's exact settings train 50 epochs without a non-finite
value, and at the floor temperature the default relaxation is the hard top-k (the softmax collapses).

Its own module (the suite's slowest test): ``make test`` runs modules on parallel workers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from training_fixtures import N_SELECT, recipe_pipeline

from bandselect.selectors import SoftChannelSelector
from bandselect.training import TrainingData, train_two_phase
from bandselect.training.config import DEFAULT_RECIPE, load_recipe


@pytest.mark.realdata
@pytest.mark.slow
def test_seed_settings_train_fifty_epochs_without_a_non_finite_value(load_shared) -> None:
    """The issue's failure: the seed's schedule (5 → 0.1, decay 0.9) and regularizer weights (0.01,
    0.05) stopped with "a gradient is not finite" at epoch ~30 (log 0 in the entropy's gradient where the
    weights underflow). Both relaxations now train 50 epochs. With the default relaxation at the floor
    temperature the noise-free training weights are >= 0.9 on each of n_select distinct channels, no
    training draw puts more than 1.0 on a channel, and most draws are >= 0.9 on each of their top
    n_select (a draw is a Gumbel-top-k sample: it splits mass where its k-th and (k+1)-th perturbed
    logits are within ~2 T ln 9 = 0.44); the seed's softmax puts > 1.5 on one channel instead."""
    data = load_shared("pavia_rosis_abu_beach4")
    arrays = TrainingData.from_arrays(data["cube"], data["gt"], wavelengths_nm=data["wavelengths_nm"])
    recipe = load_recipe(DEFAULT_RECIPE)
    selector = recipe["pipeline"]["nodes"]["selector"]["config"]
    assert (selector["temperature_init"], selector["temperature_min"], selector["temperature_decay"]) == (
        5.0,
        0.1,
        0.9,
    )
    assert recipe["pipeline"]["nodes"]["entropy_loss"]["config"]["weight"] == 0.01
    assert recipe["pipeline"]["nodes"]["diversity_loss"]["config"]["weight"] == 0.05
    options = {"epochs": 50, "batches_per_epoch": 4, "device": "cpu", "monitor": None}
    # The seed's relaxation in the issue-5 pipeline (RX on every batch pixel, ridge 1e-3): the NaN run.
    seed_pipeline = recipe_pipeline(relaxation="softmax")
    seed_pipeline["nodes"]["rx"]["config"].update(background="batch", eps=0.001)
    seed_pipeline["connections"].remove(["data.mask", "rx.mask"])
    # The seed's exact settings include its variance start (the recipe now starts from uniform logits:
    # there 77 % of the floor draws are >= 0.9 on each of their top 3, its margins being smaller).
    for pipeline in (seed_pipeline, recipe_pipeline(init_method="variance")):
        result = train_two_phase(pipeline, arrays, options, evaluate=False)
        assert len(result.history) == 50
        assert all(math.isfinite(h.loss) and math.isfinite(h.val_loss) for h in result.history)
        assert all(np.isfinite(h.weights["selector"]).all() for h in result.history)
        assert result.history[-1].temperature["selector"] == pytest.approx(0.1)
    node = result.pipeline.nodes["selector"]
    assert node.relaxation == "subset"
    node.temperature = 0.1
    # Without noise (the relaxation of the trained logits): >= 0.9 on each of n_select channels.
    noise_free = torch.sort(node.get_selection_weights(hard=False), descending=True).values
    assert noise_free[:N_SELECT].min() >= 0.9 and float(noise_free[N_SELECT:].sum()) <= 0.3
    softmax = SoftChannelSelector(n_select=N_SELECT, input_channels=node.input_channels, relaxation="softmax")
    softmax.channel_logits.copy_(node.channel_logits)
    softmax.temperature = 0.1
    cube = torch.from_numpy(data["cube"][None, :8, :8])
    draws = {"subset": [], "softmax": []}
    for name, each in (("subset", node), ("softmax", softmax)):
        each.train()
        each.reseed(7)
        for _ in range(200):
            weights = each.forward(data=cube)["weights"].detach()
            draws[name].append(torch.sort(weights, descending=True).values)
    subset = torch.stack(draws["subset"])
    # Every draw: nothing above 1.0, so the budget n_select is on at least n_select distinct channels ...
    assert float(subset[:, 0].max()) <= 1.0 + 1e-6
    assert torch.allclose(subset.sum(dim=1), torch.full((200,), float(N_SELECT)), atol=1e-4)
    # ... and in most draws each of the top n_select is >= 0.9; the others split a near-tie of their
    # n_select-th and next perturbed logits. How many depends on the trained logits' margin (179 of 200
    # here); 0.8 leaves room for the binomial spread of 200 draws (about ±2 %).
    concentrated = float((subset[:, :N_SELECT].min(dim=1).values >= 0.9).double().mean())
    # The seed's softmax at the same temperature: more than 1.5 of the budget on one channel.
    collapsed = float((torch.stack(draws["softmax"])[:, 0] > 1.5).double().mean())
    print(f"T=0.1 draws: top-{N_SELECT} >= 0.9 in {concentrated:.0%} (subset), > 1.5 on one {collapsed:.0%}")
    assert concentrated >= 0.8 and collapsed >= 0.9
