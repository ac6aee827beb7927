"""Evaluation of band selections: spatial splits, downstream AUROC measures, baselines, stability."""

from __future__ import annotations

from bandselect.evaluation.metrics import (
    BaselineResult,
    Measure,
    all_bands_baseline,
    logistic_auroc,
    logistic_holdout_auroc,
    random_band_baseline,
    rx_auroc,
)
from bandselect.evaluation.split import SpatialSplit, block_grid, half_split, spatial_block_split
from bandselect.evaluation.stability import (
    SelectFunction,
    StabilityResult,
    band_stability,
    consistency_index,
    tolerant_matches,
)

__all__ = [
    "BaselineResult",
    "Measure",
    "SelectFunction",
    "SpatialSplit",
    "StabilityResult",
    "all_bands_baseline",
    "band_stability",
    "block_grid",
    "consistency_index",
    "half_split",
    "logistic_auroc",
    "logistic_holdout_auroc",
    "random_band_baseline",
    "rx_auroc",
    "spatial_block_split",
    "tolerant_matches",
]
