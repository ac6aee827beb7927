"""Training: statistical initialisation of pipeline nodes and the datamodules feeding it.

Public API: :class:`StatisticalTrainer`, :func:`initialize_from_statistics` (``statistical.py``);
:class:`ArrayDataModule`, :class:`CampaignDataModule` (``datamodules.py``), :class:`PatchDataModule`
(``patches.py``), :class:`BatchIterable`, :class:`PatchStream` (``samplers.py``);
:class:`GradientTrainer` (``gradient.py``).
"""

from __future__ import annotations

from bandselect.training.datamodules import ArrayDataModule, CampaignDataModule
from bandselect.training.gradient import GradientTrainer
from bandselect.training.patches import PatchDataModule
from bandselect.training.samplers import BatchIterable, PatchStream
from bandselect.training.statistical import DataModule, StatisticalTrainer, initialize_from_statistics

__all__ = [
    "ArrayDataModule",
    "BatchIterable",
    "CampaignDataModule",
    "DataModule",
    "GradientTrainer",
    "PatchDataModule",
    "PatchStream",
    "StatisticalTrainer",
    "initialize_from_statistics",
]
