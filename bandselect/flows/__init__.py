"""Prefect flows, one per module; each takes one pydantic config (see :mod:`bandselect.flows.config`)."""

from __future__ import annotations

# First: sets Prefect's environment defaults before prefect is imported (it reads its settings once).
import bandselect._prefect_env  # noqa: F401
from bandselect.flows._steps import FlowSummary
from bandselect.flows.compare_selectors import CompareSelectorsConfig, ComparisonResult, compare_selectors
from bandselect.flows.config import ProcessCampaignConfig, SelectBandsConfig, load_config
from bandselect.flows.process_campaign import process_campaign
from bandselect.flows.select_bands import select_bands

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
