"""Files of a selector comparison: the leaderboard (JSON, CSV, one chart per measure), previews, stability.

The library half of the comparison flow's rendering (no Prefect, no MLflow): the flow's task wraps
:func:`render_comparison`, and :mod:`bandselect.tracking.comparison` logs what it writes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bandselect.atomic import atomic_path
from bandselect.evaluation.leaderboard import MEASURE_LABELS, Leaderboard, LeaderboardRow, measure_axis_label
from bandselect.evaluation.scene import LabelledScene
from bandselect.render import composite, mask_invalid
from bandselect.reports.plots import plot_band_stability, plot_leaderboard, plot_rgb_previews, save_figure

__all__ = [
    "LEADERBOARD_CSV",
    "LEADERBOARD_JSON",
    "ComparisonFigures",
    "leaderboard_payload",
    "render_comparison",
]

LEADERBOARD_JSON = "leaderboard.json"
LEADERBOARD_CSV = "leaderboard.csv"


@dataclass(frozen=True)
class ComparisonFigures:
    """Files written by :func:`render_comparison_task` (all under one folder).

    ``leaderboard`` maps each measure to its chart; ``selector_previews`` and ``stability`` map selector
    names to their PNGs.
    """

    folder: Path
    leaderboard_json: Path
    leaderboard_csv: Path
    leaderboard: dict[str, Path]
    rgb_previews: Path | None
    selector_previews: dict[str, Path] = field(default_factory=dict)
    stability: dict[str, Path] = field(default_factory=dict)


def _band_caption(row: LeaderboardRow, wavelengths_nm: np.ndarray) -> str:
    rgb = ", ".join(
        f"{channel} {wavelengths_nm[index]:.0f} nm"
        for channel, index in zip("RGB", row.rgb_indices, strict=True)
    )
    if len(row.indices) > 3 or set(row.indices) != set(row.rgb_indices):
        picks = ", ".join(f"{w:.0f}" for w in row.wavelengths_nm)
        rgb += f" (picks {picks} nm)"
    return rgb


def _measure_label(measure: str) -> str:
    return measure_axis_label(measure)


def leaderboard_payload(leaderboard: Leaderboard, title: str) -> dict[str, Any]:
    """The content of ``leaderboard.json``: title, measures, summary, display table and raw records."""
    columns, table = leaderboard.table()
    return {
        "title": title,
        "measures": list(leaderboard.measures),
        "measure_labels": {m: MEASURE_LABELS[m] for m in leaderboard.measures},
        "summary": dict(leaderboard.summary),
        "columns": columns,
        "table": table,
        "rows": leaderboard.records(),
    }


def render_comparison(
    leaderboard: Leaderboard,
    scene: LabelledScene,
    output_dir: str | os.PathLike[str],
    *,
    title: str = "Selector comparison",
) -> ComparisonFigures:
    """Write the leaderboard (JSON, CSV, one chart per measure), RGB previews and stability plots.

    Rows that are not applicable have no image; the chart names them under the x axis.
    """
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    wavelengths = leaderboard.wavelengths_nm
    json_path, csv_path = folder / LEADERBOARD_JSON, folder / LEADERBOARD_CSV
    with atomic_path(json_path) as temporary:
        temporary.write_text(json.dumps(leaderboard_payload(leaderboard, title), indent=2), encoding="utf-8")
    with atomic_path(csv_path) as temporary:
        temporary.write_text(leaderboard.to_csv(), encoding="utf-8")

    not_applicable = [row.name for row in leaderboard.selector_rows if not row.applicable]
    charts: dict[str, Path] = {}
    for number, measure in enumerate(leaderboard.measures):
        fig = plot_leaderboard(
            leaderboard.chart_rows(measure),
            measure=measure,
            measure_label=_measure_label(measure),
            title=f"{title}: {measure}",
        )
        if not_applicable:
            fig.supxlabel(
                "not applicable on this sensor (no score): " + ", ".join(not_applicable),
                fontsize=9,
                color="#C00000",
            )
        name = "leaderboard.png" if number == 0 else f"leaderboard_{measure}.png"
        charts[measure] = save_figure(fig, folder / name)

    previews: dict[str, np.ndarray] = {}
    captions: dict[str, str] = {}
    selector_previews: dict[str, Path] = {}
    stability_plots: dict[str, Path] = {}
    for row in leaderboard.selector_rows:
        if not row.applicable:
            continue
        rgb = composite(scene.cube, np.asarray(row.rgb_indices))  # no data drawn as such, not black
        previews[row.name] = mask_invalid(rgb, None if scene.nodata is None else ~scene.nodata)
        captions[row.name] = _band_caption(row, wavelengths)
        fig = plot_rgb_previews(
            {row.name: previews[row.name]}, {row.name: captions[row.name]}, title=f"{row.selector_type}"
        )
        selector_previews[row.name] = save_figure(fig, folder / "previews" / f"{row.name}.png")
        if row.stability is not None:
            fig = plot_band_stability(
                wavelengths,
                row.stability.frequency,
                row.stability.selected,
                row.stability.unstable,
                score=row.stability.score,
                reason=row.stability.reason,
                title=f"Band selection stability: {row.name}",
            )
            stability_plots[row.name] = save_figure(fig, folder / "stability" / f"{row.name}.png")
    rgb_previews = None
    if previews:
        fig = plot_rgb_previews(previews, captions, title=f"Composites per selector, {scene.name}")
        rgb_previews = save_figure(fig, folder / "rgb_previews.png")
    return ComparisonFigures(
        folder=folder,
        leaderboard_json=json_path,
        leaderboard_csv=csv_path,
        leaderboard=charts,
        rgb_previews=rgb_previews,
        selector_previews=selector_previews,
        stability=stability_plots,
    )
