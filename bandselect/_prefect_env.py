"""Environment defaults for running flows locally; set before Prefect is imported, never overriding.

Prefect reads its settings from the environment when it is first imported, so these take effect only
if nothing imported ``prefect`` earlier: importing this module sets them (``bandselect.flows`` imports it
first thing; the CLI before any Prefect import).
"""

from __future__ import annotations

import os

#: Seconds Prefect waits for its temporary (ephemeral) API server. Its default, 20 s, is too short on a
#: loaded 2-core machine: the server's start (database migrations, app import) then takes 30-60 s.
EPHEMERAL_STARTUP_TIMEOUT_S = 180

DEFAULTS = {
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(EPHEMERAL_STARTUP_TIMEOUT_S),
    # The library's own loggers (bandselect.progress: one line per training epoch and compared selector)
    # go to the Prefect run's logs and console too.
    "PREFECT_LOGGING_EXTRA_LOGGERS": "bandselect",
    # Outside a flow run (a notebook training after it ran a flow) those lines have no run to go to:
    # Prefect's API handler would warn on every one of them; they still reach the console.
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    # MLflow's tqdm bar when it validates a logged model's input example ("Downloading artifacts" with
    # carriage returns) lands in the flow's console and worker logs: a line of noise per run.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # MLflow prints "View run ... / View experiment ..." for every run it ends on a tracking server: 30
    # lines for a comparison's child runs. The flows print the one page that matters themselves.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


def set_local_defaults() -> None:
    """Set :data:`DEFAULTS` in ``os.environ`` where the user has not set them."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)


set_local_defaults()
