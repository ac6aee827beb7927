"""Tasks: draw a run's plots (PNG files) and log a flow run to MLflow (params, selection, metrics, artifacts).

The MLflow run itself is opened by the flow (one run per flow run, tagged with the Prefect flow-run id by
:func:`bandselect.tracking.start_run`); these tasks run in worker threads and log with an explicit
``run_id``. Logging is retried: a tracking server restarting is a plausible transient failure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import yaml
from mlflow.tracking import MlflowClient
from prefect import task
from prefect.cache_policies import NO_CACHE

from bandselect import tracking
from bandselect.export import read_composite
from bandselect.reports import (
    plot_band_scores,
    plot_rgb_previews,
    plot_temperature_schedule,
    plot_weight_evolution,
    save_figure,
)
from bandselect.tasks.selection import SelectionSummary, TrainingOutcome

__all__ = ["MAX_LOGGED_PREVIEWS", "draw_plots", "log_flow_run", "make_plots"]

#: RGB previews logged one by one (all of them are in the composites' preview folder).
MAX_LOGGED_PREVIEWS = 16
_PREVIEWS_IN_FIGURE = 4
_FIGURE_PREVIEW_SIDE = 256


def _preview_image(output: str, acquisition_id: str) -> np.ndarray:
    composite = read_composite(output, acquisition_id)["composite"]
    stride = max(1, -(-max(int(composite.shape[0]), int(composite.shape[1])) // _FIGURE_PREVIEW_SIDE))
    return np.asarray(composite[::stride, ::stride, :].values, dtype=np.float32)


def make_plots(
    plots_dir: str | os.PathLike[str],
    wavelengths_nm: Sequence[float],
    selection: SelectionSummary,
    training: TrainingOutcome | None,
    output: str,
    acquisition_ids: Sequence[str],
) -> list[str]:
    """Write the run's figures as PNGs into ``plots_dir``; return their paths.

    Band scores vs wavelength (always), temperature schedule and weight heatmap (when trained), and the
    RGB previews of the first few acquisitions side by side.
    """
    folder = Path(plots_dir)
    written = []
    wavelengths = np.asarray(wavelengths_nm, dtype=np.float64)
    figure = plot_band_scores(
        wavelengths,
        selection.band_scores,
        selection.indices,
        selection.windows_nm,
        title=f"Band scores and selected bands ({selection.selector}: {selection.selector_type})",
    )
    written.append(save_figure(figure, folder / "band_scores.png"))
    if training is not None and training.history:
        temperatures = [row["temperature"] for row in training.history if "temperature" in row]
        if temperatures:
            figure = plot_temperature_schedule(temperatures, training.temperature_min)
            written.append(save_figure(figure, folder / "temperature_schedule.png"))
        rows = [row for row in training.history if "weights" in row]
        if rows:
            # With a best-epoch restore, the selection comes from the last epoch flagged best.
            kept = [index for index, row in enumerate(rows) if row.get("best")]
            figure = plot_weight_evolution(
                np.asarray([row["weights"] for row in rows]),
                wavelengths,
                len(selection.indices),
                selected=selection.indices,
                kept_epoch=kept[-1] if kept else None,
            )
            written.append(save_figure(figure, folder / "weight_evolution.png"))
    shown = list(acquisition_ids)[:_PREVIEWS_IN_FIGURE]
    if shown:
        caption = ", ".join(
            f"{channel} {w:.0f} nm" for channel, w in zip("RGB", selection.rgb_wavelengths_nm, strict=True)
        )
        previews = {acquisition_id: _preview_image(output, acquisition_id) for acquisition_id in shown}
        figure = plot_rgb_previews(
            previews,
            dict.fromkeys(previews, caption),
            title=f"Composites of {len(shown)} of {len(acquisition_ids)} acquisitions",
        )
        written.append(save_figure(figure, folder / "rgb_previews.png"))
    return [str(path) for path in written]


@task(name="draw-plots", cache_policy=NO_CACHE)
def draw_plots(
    plots_dir: str,
    wavelengths_nm: list[float],
    selection: SelectionSummary,
    training: TrainingOutcome | None,
    output: str,
    acquisition_ids: list[str],
) -> list[str]:
    """Prefect task over :func:`make_plots`."""
    return make_plots(plots_dir, wavelengths_nm, selection, training, output, acquisition_ids)


def _history_for_mlflow(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    # MLflow metric keys allow letters, digits, "_-./ ": node.port metric names pass as they are.
    return [dict(row) for row in history]


@task(name="log-to-mlflow", retries=3, retry_delay_seconds=[1, 5, 15], cache_policy=NO_CACHE)
def log_flow_run(
    run_id: str,
    config: dict[str, Any],
    selection: SelectionSummary,
    training: TrainingOutcome | None,
    wavelengths_nm: list[float],
    summary: dict[str, Any],
    plots: list[str],
    previews: list[str],
) -> None:
    """Log everything that describes (and reproduces) a flow run into the MLflow run ``run_id``.

    Params: the flow config (``config.*``) and every pipeline node's config (``pipeline.<node>.*``);
    selection: indices and wavelengths as params, tags and ``selection.json``; metrics: per-epoch loss,
    validation metrics, temperature and channel weights (``weight/<nm>``); artifacts: the flow config
    (``config.yaml``), the pipeline (``pipeline/pipeline.yaml`` + ``weights.pt``), the acquisition ids,
    the plots and up to :data:`MAX_LOGGED_PREVIEWS` RGB previews.
    """
    tracking.log_params_flat(config, prefix="config", run_id=run_id)
    tracking.log_params_flat(selection.node_configs, prefix="pipeline", run_id=run_id)
    tracking.log_selection(
        selection.indices,
        selection.wavelengths_nm,
        band_scores=selection.band_scores.get("selector score"),
        extra={
            "selector": selection.selector,
            "selector_type": selection.selector_type,
            "rgb_indices": selection.rgb_indices,
            "rgb_wavelengths_nm": selection.rgb_wavelengths_nm,
            "config_hash": selection.config_hash,
            "windows_nm": selection.windows_nm,
            "trained": selection.trained,
            "wavelengths_nm_all": list(wavelengths_nm),
            "band_scores_all": selection.band_scores,
        },
        run_id=run_id,
    )
    if training is not None and training.history:
        labels = [f"{w:06.1f}nm" for w in wavelengths_nm]
        tracking.log_history(_history_for_mlflow(training.history), band_labels=labels, run_id=run_id)
    client = MlflowClient(tracking_uri=mlflow.get_tracking_uri())
    client.log_text(run_id, yaml.safe_dump(config, sort_keys=False), "config.yaml")
    client.log_dict(run_id, summary, "summary.json")
    client.log_text(run_id, json.dumps(summary.get("acquisition_ids", []), indent=1), "acquisitions.json")
    tracking.log_directory(selection.pipeline_dir, "pipeline", run_id=run_id)
    for path in plots:
        tracking.log_file(path, "plots", run_id=run_id)
    for path in previews[:MAX_LOGGED_PREVIEWS]:
        tracking.log_file(path, "previews", run_id=run_id)
