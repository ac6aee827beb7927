"""MLflow: runs tagged with their Prefect flow run, selections, training histories, plots, reports.

Only this package, ``tasks/``, ``flows/`` and ``cli.py`` import MLflow.

- :mod:`~bandselect.tracking.runs`: generic helpers (``start_run``, ``log_params_flat``,
  ``log_selection``, ``log_history``, ``log_file``, ...; plain dicts and arrays in).
- :mod:`~bandselect.tracking.flow_run`: one flow run's record (``log_band_selection``,
  ``log_training_history``, ``log_flow_run``).
- :mod:`~bandselect.tracking.comparison`: a selector comparison as a parent run with child runs.
- :mod:`~bandselect.tracking.report`: an HTML page from a run (``bandselect report``).
- :mod:`~bandselect.tracking.liveness`: runs left ``RUNNING`` by a killed process, ended ``KILLED``.
"""

from __future__ import annotations

from bandselect.tracking import runs
from bandselect.tracking.runs import *  # noqa: F403 - the package's face: the generic helpers of runs.py

__all__ = list(runs.__all__)
