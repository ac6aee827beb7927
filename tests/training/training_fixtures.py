"""Data with a planted answer for the training tests (helpers, imported by the test modules)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any


def planted_campaign(path: Path) -> list[int]:
    """The demo's campaign (3 acquisitions 96 x 128, anomalies in 550/558/782/790 nm) written to ``path``;
    its planted bands."""
    from bandselect.names import ATTR_DISCRIMINATIVE_BANDS
    from bandselect.synthetic import write_campaign

    campaign = write_campaign(path, n_acquisitions=3, height=96, width=128, seed=0, anomaly_fraction=0.01)
    return list(campaign.open(campaign.ids()[0]).attrs[ATTR_DISCRIMINATIVE_BANDS])


#: Bands the learnable selectors pick in these tests.
N_SELECT = 3


def recipe_pipeline(**selector: Any) -> dict[str, Any]:
    """The shipped recipe's pipeline, with selector settings overridden."""
    from bandselect.training.config import DEFAULT_RECIPE, load_recipe

    pipeline = copy.deepcopy(load_recipe(DEFAULT_RECIPE)["pipeline"])
    pipeline["nodes"]["selector"]["config"].update(selector)
    return pipeline
