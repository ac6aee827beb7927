"""MLflow: runs tagged with their Prefect flow run, selections, training histories, plots, reports.

Only this package, ``tasks/``, ``flows/`` and ``cli.py`` import MLflow.

- :mod:`~bandselect.tracking.runs`: generic helpers (``start_run``, ``log_params_flat``,
  ``log_selection``, ``log_history``, ``log_file``, ...; plain dicts and arrays in).
- :mod:`~bandselect.tracking.flow_run`: one flow run's record (``log_band_selection``,
  ``log_training_history``, ``log_flow_run``).
- :mod:`~bandselect.tracking.comparison`: a selector comparison as a parent run with child runs.
- :mod:`~bandselect.tracking.report`: an HTML page from a run (``bandselect report``).
"""

from __future__ import annotations

from bandselect.tracking.runs import (
    MLFLOW_DIRNAME,
    TAG_CAMPAIGN,
    TAG_FLOW_RUN_ID,
    TAG_FLOW_RUN_NAME,
    TAG_FLOW_RUN_URL,
    TAG_TRUNCATED_PARAMS,
    artifact_location_for,
    current_tracking_uri,
    flatten_params,
    log_directory,
    log_figure,
    log_file,
    log_history,
    log_params_flat,
    log_selection,
    resolve_tracking_uri,
    start_run,
    tracking_uri_default,
)

__all__ = [
    "MLFLOW_DIRNAME",
    "TAG_CAMPAIGN",
    "TAG_FLOW_RUN_ID",
    "TAG_FLOW_RUN_NAME",
    "TAG_FLOW_RUN_URL",
    "TAG_TRUNCATED_PARAMS",
    "artifact_location_for",
    "current_tracking_uri",
    "flatten_params",
    "log_directory",
    "log_figure",
    "log_file",
    "log_history",
    "log_params_flat",
    "log_selection",
    "resolve_tracking_uri",
    "start_run",
    "tracking_uri_default",
]
