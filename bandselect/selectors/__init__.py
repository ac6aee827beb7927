"""The seed's selector nodes and regularizers.

Every public node is registered in :mod:`bandselect.pipeline.registry` under its class name, so YAML
configurations can name it (``type: SoftChannelSelector``).

Seed modules ``cuvis_ai.node.selector``, ``cuvis_ai.node.band_selection`` and ``cuvis_ai.node.losses``
all map to this package:

- :mod:`~bandselect.selectors.soft`: ``SoftChannelSelector``, ``TopKIndices``
- :mod:`~bandselect.selectors.concrete`: ``ConcreteBandSelector`` (the seed's alternative selector)
- :mod:`~bandselect.selectors.relaxations`: the relaxed top-k and softmax relaxations, Gumbel noise
- :mod:`~bandselect.selectors.base`: ``BandSelectorBase`` (with ``_compose_rgb``)
- :mod:`~bandselect.selectors.fixed`: ``BaselineFalseRGBSelector``, ``CIRFalseColorSelector``,
  ``HighContrastBandSelector``, and beyond the seed ``FixedWavelengthSelector`` (any number of targets)
- :mod:`~bandselect.selectors.supervised`: ``SupervisedCIRBandSelector``,
  ``SupervisedWindowedFalseRGBSelector``, ``SupervisedFullSpectrumBandSelector``
- :mod:`~bandselect.selectors.unsupervised`: ``OrthogonalProjectionBandSelector``,
  ``CorrelationClusterBandSelector`` (beyond the seed: label-free selection from statistics)
- :mod:`~bandselect.selectors.regularizers`: ``SelectorEntropyRegularizer``, ``SelectorDiversityRegularizer``
"""

from __future__ import annotations

from bandselect.selectors.base import BandSelectorBase
from bandselect.selectors.concrete import ConcreteBandSelector
from bandselect.selectors.fixed import (
    BaselineFalseRGBSelector,
    CIRFalseColorSelector,
    FixedWavelengthSelector,
    HighContrastBandSelector,
)
from bandselect.selectors.regularizers import SelectorDiversityRegularizer, SelectorEntropyRegularizer
from bandselect.selectors.soft import SoftChannelSelector, TopKIndices
from bandselect.selectors.supervised import (
    SupervisedCIRBandSelector,
    SupervisedFullSpectrumBandSelector,
    SupervisedWindowedFalseRGBSelector,
)
from bandselect.selectors.unsupervised import (
    CorrelationClusterBandSelector,
    OrthogonalProjectionBandSelector,
)

__all__ = [
    "BandSelectorBase",
    "BaselineFalseRGBSelector",
    "CIRFalseColorSelector",
    "ConcreteBandSelector",
    "CorrelationClusterBandSelector",
    "FixedWavelengthSelector",
    "HighContrastBandSelector",
    "OrthogonalProjectionBandSelector",
    "SelectorDiversityRegularizer",
    "SelectorEntropyRegularizer",
    "SoftChannelSelector",
    "SupervisedCIRBandSelector",
    "SupervisedFullSpectrumBandSelector",
    "SupervisedWindowedFalseRGBSelector",
    "TopKIndices",
]
