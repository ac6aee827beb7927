"""Flow ``process-campaign``: the scheduled run over an archive folder.

Each run picks up the archive's new (or changed) files and ingests them one by one (a corrupt file is
reported and skipped), updates the campaign statistics incrementally (only new acquisitions are read),
re-selects the bands (cached when nothing changed), and exports only what is new or changed: when the
selection is unchanged only new acquisitions are exported; when it changed, every composite is re-exported
under the new config hash. Runs on one store/output are serialised by a file lock; publishing is atomic and
idempotent, so overlapping or killed runs never leave a half-written or duplicated composite. Deployed by
``deployments/prefect.yaml`` and ``deployments/serve.py``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from bandselect.flows._steps import FlowSummary, run_flow
from bandselect.flows.config import ProcessCampaignConfig, load_config

__all__ = ["process_campaign"]


@flow(name="process-campaign", log_prints=True, validate_parameters=False)
def process_campaign(config: ProcessCampaignConfig | dict[str, Any]) -> FlowSummary:
    """Ingest new archive files, update statistics, re-select and export what is new or changed.

    Parameters
    ----------
    config
        The flow's settings: at least campaign, archive, store and output (what the deployments pass);
        see configs/select_bands.yaml for every other setting.

    Returns
    -------
    FlowSummary
    """
    if not isinstance(config, ProcessCampaignConfig):
        config = load_config(dict(config), ProcessCampaignConfig)
    return run_flow(config, run_name_prefix="process-campaign")
