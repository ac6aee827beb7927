"""Prefect flows, one per module; each takes one pydantic config (see :mod:`bandselect.flows.config`).

The names below are imported on first use, so running one flow (``bandselect run``) loads that flow's
modules only: the comparison flow's evaluation stack (scikit-learn, the report renderer) stays unloaded.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

# First: sets Prefect's environment defaults before prefect is imported (it reads its settings once).
import bandselect._prefect_env  # noqa: F401
from bandselect._lazy import lazy_attributes

if TYPE_CHECKING:
    from bandselect.flows._steps import FlowSummary
    from bandselect.flows.compare_selectors import CompareSelectorsConfig, ComparisonResult, compare_selectors
    from bandselect.flows.config import ProcessCampaignConfig, SelectBandsConfig, load_config
    from bandselect.flows.process_campaign import process_campaign
    from bandselect.flows.select_bands import select_bands

_LAZY = {
    "FlowSummary": "bandselect.flows._steps",
    "CompareSelectorsConfig": "bandselect.flows.compare_selectors",
    "ComparisonResult": "bandselect.flows.compare_selectors",
    "compare_selectors": "bandselect.flows.compare_selectors",
    "ProcessCampaignConfig": "bandselect.flows.config",
    "SelectBandsConfig": "bandselect.flows.config",
    "load_config": "bandselect.flows.config",
    "process_campaign": "bandselect.flows.process_campaign",
    "select_bands": "bandselect.flows.select_bands",
}

__all__ = [
    "CompareSelectorsConfig",
    "ComparisonResult",
    "FlowSummary",
    "ProcessCampaignConfig",
    "SelectBandsConfig",
    "compare_selectors",
    "load_config",
    "process_campaign",
    "select_bands",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


class _FlowsPackage(types.ModuleType):
    """The package whose attributes ``select_bands``, ``process_campaign``, ``compare_selectors`` stay the
    flows even after their modules (of the same names) are imported.

    Importing ``bandselect.flows.select_bands`` makes Python set the package attribute ``select_bands`` to
    that *module*, which would shadow the lazily imported flow: ``from bandselect.flows import
    select_bands`` would then give a module in one process and the flow in another, depending on import
    order. The flow is stored instead (the module stays in ``sys.modules``).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FLOW_MODULES and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


#: Flows defined in a module of the same name.
_FLOW_MODULES = frozenset({"select_bands", "process_campaign", "compare_selectors"})
sys.modules[__name__].__class__ = _FlowsPackage
