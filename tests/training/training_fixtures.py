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


def rx_bce_pipeline(n_bands: int, *, valid: bool = False) -> Any:
    """Soft selector (variance start) → RX (batch background) → head → BCE against ``data.mask``;
    ``valid``: ``data.valid`` also feeds RX, the head and the loss (as the recipe connects it)."""
    from bandselect.nodes import AnomalyBCELoss, RXDetector, ScoreToLogit
    from bandselect.pipeline import Pipeline
    from bandselect.selectors import SoftChannelSelector

    pipeline = Pipeline()
    pipeline.add_node(
        SoftChannelSelector(n_select=N_SELECT, input_channels=n_bands, init_method="variance"), name="soft"
    )
    pipeline.add_node(RXDetector(input_channels=n_bands, background="batch"), name="rx")
    pipeline.add_node(ScoreToLogit(), name="head")
    pipeline.add_node(AnomalyBCELoss(), name="bce")
    pipeline.connect(
        ("data.cube", "soft.data"),
        ("soft.selected", "rx.data"),
        ("rx.scores", "head.scores"),
        ("head.logits", "bce.logits"),
        ("data.mask", "bce.mask"),
    )
    if valid:
        pipeline.connect(
            ("data.valid", "rx.valid"), ("data.valid", "head.valid"), ("data.valid", "bce.valid")
        )
    return pipeline


def supervised_pipeline(selector: Any) -> Any:
    """A pipeline of one supervised selector named ``selector``, fed data.cube, data.mask and the
    wavelengths (what a statistical initialisation reads)."""
    from bandselect.pipeline import Pipeline

    pipeline = Pipeline()
    pipeline.add_node(selector, name="selector")
    pipeline.connect(
        ("data.cube", "selector.cube"),
        ("data.wavelengths", "selector.wavelengths"),
        ("data.mask", "selector.mask"),
    )
    return pipeline
