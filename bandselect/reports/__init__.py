"""Figures and HTML reports for band selection runs (matplotlib without pyplot; no MLflow here).

- :mod:`~bandselect.reports.plots`: one figure each (band scores, temperature, weights, previews,
  leaderboard, stability) from arrays; :func:`save_figure` writes a PNG atomically.
- :mod:`~bandselect.reports.figures`: a flow run's figures, from its ``BandSelection`` and history.
- :mod:`~bandselect.reports.comparison`: a comparison's leaderboard files, charts and previews.
- :mod:`~bandselect.reports.html`: a self-contained HTML page.
"""

from __future__ import annotations

from bandselect.reports import html, plots
from bandselect.reports.html import *  # noqa: F403 - the package's face is its modules' public names
from bandselect.reports.plots import *  # noqa: F403

__all__ = [*html.__all__, *plots.__all__]
