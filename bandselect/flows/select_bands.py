"""Flow ``select-bands``: archive or store → statistics → initialisation → training → composites → MLflow.

>>> from bandselect.flows import select_bands
>>> config = {"campaign": "a", "store": "a.zarr", "output": "a-rgb.zarr"}
>>> summary = select_bands(config)  # doctest: +SKIP
>>> summary.selection.wavelengths_nm  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from bandselect.flows._steps import FlowSummary, run_flow
from bandselect.flows.config import SelectBandsConfig, load_config

__all__ = ["select_bands"]


@flow(name="select-bands", log_prints=True, validate_parameters=False)
def select_bands(config: SelectBandsConfig | dict[str, Any]) -> FlowSummary:
    """Select bands for a campaign and export its RGB composites.

    Parameters
    ----------
    config
        The flow's settings: campaign, store, output, and optionally archive, pipeline, training,
        tracking and export (see configs/select_bands.yaml).

    Returns
    -------
    FlowSummary
        Paths of the store, products, plots and previews; the MLflow run; the selection.
    """
    if not isinstance(config, SelectBandsConfig):
        config = load_config(dict(config), SelectBandsConfig)
    return run_flow(config, run_name_prefix="select-bands")
