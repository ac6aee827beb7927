"""Figures and HTML reports for band selection runs (matplotlib without pyplot; no MLflow here)."""

from __future__ import annotations

from bandselect.reports.html import (
    ReportImage,
    ReportSection,
    ReportTable,
    render_html_report,
    write_html_report,
)
from bandselect.reports.plots import (
    plot_band_scores,
    plot_band_stability,
    plot_leaderboard,
    plot_rgb_previews,
    plot_temperature_schedule,
    plot_weight_evolution,
    save_figure,
)

__all__ = [
    "ReportImage",
    "ReportSection",
    "ReportTable",
    "plot_band_scores",
    "plot_band_stability",
    "plot_leaderboard",
    "plot_rgb_previews",
    "plot_temperature_schedule",
    "plot_weight_evolution",
    "render_html_report",
    "save_figure",
    "write_html_report",
]
