"""Training: statistical initialisation of pipeline nodes and the datamodules feeding it.

Public API: :class:`StatisticalTrainer`, :func:`initialize_from_statistics` (``statistical.py``);
:class:`ArrayDataModule`, :class:`CampaignDataModule`, :class:`BatchIterable` (``datamodule.py``);
:class:`GradientTrainer` (``gradient.py``).
"""

from __future__ import annotations

from bandselect.training.datamodule import ArrayDataModule, BatchIterable, CampaignDataModule
from bandselect.training.gradient import GradientTrainer
from bandselect.training.statistical import DataModule, StatisticalTrainer, initialize_from_statistics

__all__ = [
    "ArrayDataModule",
    "BatchIterable",
    "CampaignDataModule",
    "DataModule",
    "GradientTrainer",
    "StatisticalTrainer",
    "initialize_from_statistics",
]
