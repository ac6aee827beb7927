"""Training: statistical initialisation, gradient training and the two-phase recipe that joins them.

Public API: :func:`train_two_phase`, :class:`TrainingData`, :class:`TwoPhaseResult` (``two_phase.py``);
:class:`TrainingConfig` (``config.py``, defaults in ``bandselect/recipes/two_phase.yaml``);
:class:`StatisticalTrainer`, :func:`initialize_from_statistics` (``statistical.py``);
:class:`GradientTrainer` (``gradient.py``, with ``checkpoint.py`` and ``monitor.py``);
:class:`EpochRecord` (``records.py``); the datamodule protocols :class:`DataModule`,
:class:`ValidationDataModule`, :class:`EpochAwareDataModule` (``protocols.py``);
:class:`ArrayDataModule`, :class:`CampaignDataModule` (``datamodules.py``), :class:`PatchDataModule`
(``patches.py``), :class:`BatchIterable`, :class:`PatchStream` (``samplers.py``);
:func:`fit_node` (``fitting.py``); selection on a campaign store (``campaign.py``).
"""

from __future__ import annotations

from bandselect.training.config import TrainingConfig
from bandselect.training.datamodules import ArrayDataModule, CampaignDataModule
from bandselect.training.fitting import fit_node
from bandselect.training.gradient import GradientTrainer
from bandselect.training.patches import PatchDataModule
from bandselect.training.protocols import DataModule, EpochAwareDataModule, ValidationDataModule
from bandselect.training.records import EpochRecord
from bandselect.training.samplers import BatchIterable, PatchStream
from bandselect.training.statistical import StatisticalTrainer, initialize_from_statistics
from bandselect.training.two_phase import TrainingData, TwoPhaseResult, train_two_phase

__all__ = [
    "ArrayDataModule",
    "BatchIterable",
    "CampaignDataModule",
    "DataModule",
    "EpochAwareDataModule",
    "EpochRecord",
    "GradientTrainer",
    "PatchDataModule",
    "PatchStream",
    "StatisticalTrainer",
    "TrainingConfig",
    "TrainingData",
    "TwoPhaseResult",
    "ValidationDataModule",
    "fit_node",
    "initialize_from_statistics",
    "train_two_phase",
]
