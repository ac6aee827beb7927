"""Downstream nodes: the RX anomaly detector, a score-to-logit head, the anomaly loss and metrics.

Every node is registered in :mod:`bandselect.pipeline.registry` under its class name, so YAML
configurations can name it (``type: RXDetector``).

- :mod:`~bandselect.nodes.rx`: ``RXDetector`` (global Reed–Xiaoli), ``mahalanobis_scores``
- :mod:`~bandselect.nodes.losses`: ``ScoreToLogit``, ``AnomalyBCELoss``
- :mod:`~bandselect.nodes.metrics`: ``AUROC``, ``binary_auroc``
"""

from __future__ import annotations

from bandselect.nodes.losses import AnomalyBCELoss, ScoreToLogit
from bandselect.nodes.metrics import AUROC, binary_auroc
from bandselect.nodes.rx import RXDetector, mahalanobis_scores

__all__ = ["AUROC", "AnomalyBCELoss", "RXDetector", "ScoreToLogit", "binary_auroc", "mahalanobis_scores"]
