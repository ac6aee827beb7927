"""Everything that describes (and reproduces) one flow run, logged into its MLflow run.

Params: the flow config (``config.*``) and every pipeline node's type and config (``pipeline.<node>.*``).
Selection: indices and wavelengths as params and tags, the whole
:class:`~bandselect.selection.BandSelection` as ``selection.json``. Metrics: per epoch, the training and
validation loss, the validation (and test) metrics and the selector's temperature — a handful of charts;
once, the RX AUROC of the exported selection (after the search that follows training) on the validation
and on the test rows (:data:`SELECTED_VAL_AUROC`, :data:`SELECTED_TEST_AUROC`). The per-band channel
weights of every epoch are one table (``training/weights.csv`` and ``.json``), not one metric per band.
Input: the campaign store as the run's dataset (name, digest). Model: the selection as an MLflow pyfunc
model (``model/``, optionally registered). Artifacts: the flow config (``config.yaml``), a run summary,
the acquisition ids, the saved pipeline (``pipeline/``), the plots and a few RGB previews.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from mlflow.data.meta_dataset import MetaDataset
from mlflow.data.sources import LocalArtifactDatasetSource
from mlflow.entities import DatasetInput, InputTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_RUN_NOTE

from bandselect import storage
from bandselect.pipeline import CONFIG_FILE, load_yaml
from bandselect.selection import BandSelection
from bandselect.tracking import runs
from bandselect.tracking.selection_model import log_selection_model
from bandselect.training.records import EpochRecord

__all__ = [
    "MAX_LOGGED_PREVIEWS",
    "SELECTED_TEST_AUROC",
    "SELECTED_VAL_AUROC",
    "campaign_dataset_digest",
    "history_rows",
    "log_band_selection",
    "log_campaign_input",
    "log_flow_run",
    "weights_table",
]

#: The selector's class, on every flow run's MLflow run (filter and group runs by it).
TAG_SELECTOR_TYPE = "bandselect.selector_type"
#: RX AUROC of the exported (trained, then searched) selection on the validation rows, which chose the
#: epoch and guided the search (optimistic), and on the test rows, which neither saw (the number to
#: compare runs by). The per-epoch ``selection.rx_auroc`` is each epoch's trained selection.
SELECTED_VAL_AUROC = "selected.val_rx_auroc"
SELECTED_TEST_AUROC = "selected.test_rx_auroc"
#: RGB previews logged one by one (all of them are in the composites' preview folder).
MAX_LOGGED_PREVIEWS = 16


def history_rows(history: Sequence[EpochRecord], selector: str) -> list[dict[str, Any]]:
    """The records as the per-epoch metric rows :func:`bandselect.tracking.log_history` logs.

    ``loss``, ``val_loss``, every finite validation metric (``node.port`` keys) and the selector's
    ``temperature``; the channel weights go to :func:`weights_table` instead.
    """
    rows = []
    for record in history:
        row: dict[str, Any] = {"epoch": record.epoch, "loss": record.loss, "val_loss": record.val_loss}
        row.update(record.finite_metrics())
        if selector in record.temperature:
            row["temperature"] = record.temperature[selector]
        rows.append(row)
    return rows


def weights_table(
    history: Sequence[EpochRecord], selector: str, wavelengths_nm: Sequence[float]
) -> dict[str, Any]:
    """The selector's channel weights of every epoch as one table: ``wavelengths_nm`` and ``rows``
    (``epoch``, ``best``, ``weights``); empty rows when the selector has no weights."""
    rows = [
        {"epoch": record.epoch, "best": record.best, "weights": list(record.weights[selector])}
        for record in history
        if selector in record.weights
    ]
    return {"selector": selector, "wavelengths_nm": list(wavelengths_nm), "rows": rows}


def _weights_csv(table: Mapping[str, Any]) -> str:
    header = ["epoch", "best", *(f"{w:.1f}nm" for w in table["wavelengths_nm"])]
    lines = [",".join(header)]
    for row in table["rows"]:
        best = "" if row["best"] is None else str(bool(row["best"])).lower()
        lines.append(",".join([str(row["epoch"]), best, *(f"{w:.6g}" for w in row["weights"])]))
    return "\n".join(lines) + "\n"


def campaign_dataset_digest(acquisition_ids: Sequence[str]) -> str:
    """A digest of a campaign's content: its acquisition ids derive from their content, so their sorted
    list identifies what the run read (16 hex digits)."""
    return hashlib.sha256("\n".join(sorted(acquisition_ids)).encode()).hexdigest()[:16]


def log_campaign_input(
    run_id: str, store: str | os.PathLike[str], name: str, acquisition_ids: Sequence[str]
) -> None:
    """Record the campaign store as the run's input dataset (name, digest, source path)."""
    where = storage.location(store)
    if isinstance(where, Path):
        source: Any = LocalArtifactDatasetSource(str(where.resolve()))
    else:  # a URL keeps its scheme (MLflow's source for it, e.g. S3ArtifactDatasetSource)
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.exceptions import MlflowException

        try:
            source = resolve_dataset_source(where)
        except MlflowException:  # a scheme MLflow has no source for (gcs://, az://): the URL as it is
            source = LocalArtifactDatasetSource(where)
    dataset = MetaDataset(
        source,
        name=name,
        digest=campaign_dataset_digest(acquisition_ids),
    )
    context = InputTag(key=MLFLOW_DATASET_CONTEXT, value="selection")
    client = MlflowClient(tracking_uri=runs.current_tracking_uri())
    client.log_inputs(run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), tags=[context])])


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
    campaign: tuple[str, str | os.PathLike[str], Sequence[str]] | None = None,
    model_product: str = "composite",
    registered_model: str | None = None,
    input_example: Any = None,
    metrics: Mapping[str, float | None] | None = None,
    description: str | None = None,
) -> str:
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
    campaign
        ``(name, store path, acquisition ids)``: logged as the run's input dataset.
    model_product, registered_model, input_example
        The selection model's default product, the name to register it under (None: not registered) and
        a small cube stored with it (see :func:`~bandselect.tracking.selection_model.log_selection_model`).
    metrics
        Single values of the run (e.g. :data:`SELECTED_TEST_AUROC`), logged without a step; None values
        are left out.
    description
        The run's description (markdown; the MLflow UI's "Description" of the run, the tag
        ``mlflow.note.content``); None: none.

    Returns
    -------
    str
        The logged model's URI.
    """
    runs.log_params_flat(dict(config), prefix="config", run_id=run_id)
    runs.log_params_flat(_node_configs(pipeline_dir), prefix="pipeline", run_id=run_id)
    log_band_selection(selection, extra={"selector": selector, **(extra_selection or {})}, run_id=run_id)
    client = MlflowClient(tracking_uri=runs.current_tracking_uri())
    client.set_tag(run_id, TAG_SELECTOR_TYPE, selection.selector_type)
    if description:
        client.set_tag(run_id, MLFLOW_RUN_NOTE, runs.fit_description(description, "summary.json"))
    for key, value in (metrics or {}).items():
        if value is not None:
            client.log_metric(run_id, key, float(value))
    if history:
        runs.log_history(history_rows(history, selector), run_id=run_id)
        table = weights_table(history, selector, selection.sensor_wavelengths_nm)
        if table["rows"]:
            client.log_dict(run_id, table, "training/weights.json")
            client.log_text(run_id, _weights_csv(table), "training/weights.csv")
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
    if campaign is not None:
        log_campaign_input(run_id, campaign[1], campaign[0], campaign[2])
    return log_selection_model(
        run_id,
        selection,
        product=model_product,
        registered_name=registered_model,
        input_example=input_example,
    )
