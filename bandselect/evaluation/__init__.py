"""Evaluation of band selections: spatial splits, downstream AUROC and classification measures, baselines,
stability."""

from __future__ import annotations

from bandselect.evaluation.classification import (
    ClassificationScores,
    block_folds,
    classification_scores,
    cross_validated_classification,
)
from bandselect.evaluation.metrics import (
    BaselineResult,
    Measure,
    SubsetRX,
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
    "ClassificationScores",
    "Measure",
    "SelectFunction",
    "SpatialSplit",
    "StabilityResult",
    "SubsetRX",
    "all_bands_baseline",
    "band_stability",
    "block_folds",
    "block_grid",
    "classification_scores",
    "consistency_index",
    "cross_validated_classification",
    "half_split",
    "logistic_auroc",
    "logistic_holdout_auroc",
    "random_band_baseline",
    "rx_auroc",
    "spatial_block_split",
    "tolerant_matches",
]
