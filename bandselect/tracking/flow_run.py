"""Everything that describes (and reproduces) one flow run, logged into its MLflow run.

Params: the flow config (``config.*``) and every pipeline node's type and config (``pipeline.<node>.*``).
Selection: indices and wavelengths as params and tags, the whole
:class:`~bandselect.selection.BandSelection` as ``selection.json``. Metrics: per epoch, the training and
validation loss, the validation metrics, the selector's temperature and channel weights. Artifacts: the
flow config (``config.yaml``), a run summary, the acquisition ids, the saved pipeline (``pipeline/``), the
plots and a few RGB previews.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from mlflow.tracking import MlflowClient

from bandselect.pipeline import CONFIG_FILE, load_yaml
from bandselect.selection import BandSelection
from bandselect.tracking import runs
from bandselect.training.records import EpochRecord

__all__ = ["MAX_LOGGED_PREVIEWS", "history_rows", "log_band_selection", "log_flow_run"]

#: RGB previews logged one by one (all of them are in the composites' preview folder).
MAX_LOGGED_PREVIEWS = 16


def history_rows(history: Sequence[EpochRecord], selector: str) -> list[dict[str, Any]]:
    """The records as the per-epoch rows :func:`bandselect.tracking.log_history` logs.

    Scalars: ``loss``, ``val_loss``, every finite validation metric (``node.port`` keys), the selector's
    ``temperature``; one array: the selector's ``weights`` (one metric per band).
    """
    rows = []
    for record in history:
        row: dict[str, Any] = {"epoch": record.epoch, "loss": record.loss, "val_loss": record.val_loss}
        row.update(record.finite_metrics())
        if selector in record.temperature:
            row["temperature"] = record.temperature[selector]
        if selector in record.weights:
            row["weights"] = list(record.weights[selector])
        rows.append(row)
    return rows


def log_band_selection(
    selection: BandSelection, *, extra: Mapping[str, Any] | None = None, run_id: str | None = None
) -> dict[str, Any]:
    """Log a selection: indices and wavelengths as params and tags, :meth:`BandSelection.to_dict` (with
    ``extra``) as ``selection.json``, the objective as a metric when the selector has one."""
    content = selection.to_dict()
    if selection.k >= 3:
        content.update(
            rgb_indices=list(selection.rgb_indices), rgb_wavelengths_nm=list(selection.rgb_wavelengths_nm)
        )
    content.update(extra or {})
    return runs.log_selection(
        list(selection.indices),
        list(selection.wavelengths_nm),
        objective=selection.objective,
        extra=content,
        run_id=run_id,
    )


def _node_configs(pipeline_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Each node's type and constructor arguments, ``{node: {"type": ..., **config}}`` (the params)."""
    nodes = load_yaml(Path(pipeline_dir) / CONFIG_FILE).get("nodes") or {}
    return {name: {"type": d.get("type"), **(d.get("config") or {})} for name, d in nodes.items()}


def log_flow_run(
    run_id: str,
    config: Mapping[str, Any],
    selection: BandSelection,
    *,
    selector: str,
    pipeline_dir: str | os.PathLike[str],
    history: Sequence[EpochRecord] = (),
    summary: Mapping[str, Any] | None = None,
    extra_selection: Mapping[str, Any] | None = None,
    plots: Sequence[str | os.PathLike[str]] = (),
    previews: Sequence[str | os.PathLike[str]] = (),
) -> None:
    """Log one flow run into the MLflow run ``run_id`` (see the module docstring for the layout).

    Parameters
    ----------
    run_id
        The flow run's MLflow run (opened by the flow).
    config
        The flow config, JSON-able.
    selection
        The run's selection.
    selector
        The selector node's name.
    pipeline_dir
        The saved pipeline (``pipeline.yaml`` + ``weights.pt``) the selection came from.
    history
        The gradient phase's records (empty when the pipeline was not trained).
    summary
        The run summary, logged as ``summary.json``; its ``acquisition_ids`` also as ``acquisitions.json``.
    extra_selection
        More content for ``selection.json`` (the export's config hash, whether it was trained, ...).
    plots, previews
        PNG files; at most :data:`MAX_LOGGED_PREVIEWS` previews.
    """
    runs.log_params_flat(dict(config), prefix="config", run_id=run_id)
    runs.log_params_flat(_node_configs(pipeline_dir), prefix="pipeline", run_id=run_id)
    log_band_selection(selection, extra={"selector": selector, **(extra_selection or {})}, run_id=run_id)
    if history:
        labels = [f"{w:06.1f}nm" for w in selection.sensor_wavelengths_nm]
        runs.log_history(history_rows(history, selector), band_labels=labels, run_id=run_id)
    client = MlflowClient(tracking_uri=runs.current_tracking_uri())
    client.log_text(run_id, yaml.safe_dump(dict(config), sort_keys=False), "config.yaml")
    if summary is not None:
        client.log_dict(run_id, dict(summary), "summary.json")
        ids = list(summary.get("acquisition_ids", []))
        client.log_text(run_id, json.dumps(ids, indent=1), "acquisitions.json")
    runs.log_directory(pipeline_dir, "pipeline", run_id=run_id)
    for path in plots:
        runs.log_file(path, "plots", run_id=run_id)
    for path in list(previews)[:MAX_LOGGED_PREVIEWS]:
        runs.log_file(path, "previews", run_id=run_id)
