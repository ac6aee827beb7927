"""Data with a planted answer for the training tests (helpers, imported by the test modules)."""

from __future__ import annotations

from pathlib import Path


def planted_campaign(path: Path) -> list[int]:
    """The demo's campaign (3 acquisitions 96 x 128, anomalies in 550/558/782/790 nm) written to ``path``;
    its planted bands."""
    from bandselect.names import ATTR_DISCRIMINATIVE_BANDS
    from bandselect.synthetic import write_campaign

    campaign = write_campaign(path, n_acquisitions=3, height=96, width=128, seed=0, anomaly_fraction=0.01)
    return list(campaign.open(campaign.ids()[0]).attrs[ATTR_DISCRIMINATIVE_BANDS])
