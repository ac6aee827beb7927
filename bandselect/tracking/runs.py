"""MLflow tracking helpers: one run per flow run, generic dicts and arrays in.

The :mod:`bandselect.tracking` package (with ``tasks/``, ``flows/`` and ``cli.py``) is the only place that
imports MLflow. These helpers know nothing of selector classes: callers pass plain dicts, sequences and
arrays (:mod:`bandselect.tracking.flow_run` logs a :class:`~bandselect.selection.BandSelection`).

Every ``log_*`` helper takes an optional ``run_id``. Without it the helper logs to the run opened by
:func:`start_run` in the calling thread; MLflow's active run is thread-local, so code running in another
thread (a Prefect task in a thread pool) passes ``run_id`` explicitly. A helper never opens a run on its own.

Examples
--------
>>> with start_run("campaign-a", run_name="select", campaign="campaign-a") as run:  # doctest: +SKIP
...     log_params_flat({"selector": {"k": 3, "windows": [[450, 500]]}})
...     log_selection([4, 17, 30], [450.0, 550.0, 650.0])
...     log_history([{"loss": 0.7, "weights": [0.1, 0.9]}, {"loss": 0.5, "weights": [0.0, 1.0]}])
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import mlflow
import numpy as np
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import (
    MAX_ENTITIES_PER_BATCH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)

from bandselect.errors import BandSelectError, ConfigError, ShapeError
from bandselect.tracking.liveness import TAG_PROCESS, end_dead_runs, process_tag

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "MLFLOW_DIRNAME",
    "TAG_CAMPAIGN",
    "TAG_FLOW_RUN_ID",
    "TAG_FLOW_RUN_NAME",
    "TAG_FLOW_RUN_URL",
    "TAG_TRUNCATED_PARAMS",
    "artifact_location_for",
    "current_tracking_uri",
    "fit_description",
    "fit_tag",
    "flatten_params",
    "flow_run_page",
    "flow_run_ui_url",
    "log_directory",
    "log_figure",
    "log_file",
    "log_history",
    "log_params_flat",
    "log_selection",
    "mlflow_run_link",
    "resolve_tracking_uri",
    "start_run",
    "tracking_uri_default",
]

MLFLOW_DIRNAME = ".mlflow"
"""Project-local folder of the embedded store: ``mlflow.db`` and ``artifacts/``."""

TAG_FLOW_RUN_ID = "prefect.flow_run_id"
TAG_FLOW_RUN_NAME = "prefect.flow_run_name"
TAG_FLOW_RUN_URL = "prefect.flow_run_url"
TAG_CAMPAIGN = "bandselect.campaign"
TAG_TRUNCATED_PARAMS = "bandselect.truncated_params"
TAG_SELECTED_INDICES = "bandselect.selected_indices"
TAG_SELECTED_WAVELENGTHS = "bandselect.selected_wavelengths_nm"

PARAMS_ARTIFACT = "params.json"
SELECTION_ARTIFACT = "selection.json"
_TRUNCATION_MARK = "...[truncated, full value in params.json]"

# Array-valued history entries logged one metric per band under a singular prefix (`weight/<band>`).
DEFAULT_ARRAY_PREFIXES: Mapping[str, str] = {"weights": "weight", "channel_weights": "weight"}


def tracking_uri_default(project_dir: str | os.PathLike[str]) -> str:
    """Embedded tracking URI of a project: ``sqlite:///<abs project>/.mlflow/mlflow.db``.

    Parameters
    ----------
    project_dir
        The project folder; made absolute. The ``.mlflow`` folder is created.

    Returns
    -------
    str
        A SQLAlchemy SQLite URI with an absolute path (four slashes on POSIX).
    """
    folder = Path(project_dir).resolve() / MLFLOW_DIRNAME
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def resolve_tracking_uri(configured: str | None, project_dir: str | os.PathLike[str]) -> str:
    """The tracking URI a run logs to: ``configured`` when set, else ``$MLFLOW_TRACKING_URI`` when set, else
    the embedded store of ``project_dir`` (:func:`tracking_uri_default`, only then created)."""
    if configured:
        return configured
    return os.environ.get("MLFLOW_TRACKING_URI") or tracking_uri_default(project_dir)


def artifact_location_for(tracking_uri: str) -> str | None:
    """Artifact root to give new experiments of a tracking URI.

    A ``sqlite:///…/mlflow.db`` store keeps its artifacts next to the database in ``artifacts/`` (MLflow
    would otherwise use ``./mlruns`` relative to the current directory). A server decides by itself
    (``None``).

    Parameters
    ----------
    tracking_uri
        An MLflow tracking URI.

    Returns
    -------
    str or None
        A ``file://`` URI, or ``None`` to let the tracking server choose.
    """
    if urlparse(tracking_uri).scheme != "sqlite":
        return None
    # sqlite:///relative.db or sqlite:////absolute.db: the path is what follows the third slash.
    database = Path(unquote(tracking_uri.removeprefix("sqlite:///")))
    if not database.is_absolute() or str(database) in {"/", ":memory:"}:
        raise ConfigError(
            "MLflow sqlite tracking URI",
            expected="an absolute database path, sqlite:////abs/path/mlflow.db",
            found=tracking_uri,
            fix="use tracking_uri_default(project_dir)",
        )
    return (database.parent / "artifacts").as_uri()


def _prefect_tags() -> dict[str, str]:
    """Tags naming the Prefect flow run this code runs in; empty outside a flow run."""
    from prefect.runtime import flow_run  # imported lazily: prefect is slow to import

    flow_run_id = flow_run.get_id()
    if flow_run_id is None:
        return {}
    tags = {TAG_FLOW_RUN_ID: flow_run_id}
    name = flow_run.get_name()
    if name:
        tags[TAG_FLOW_RUN_NAME] = str(name)
    url = flow_run_ui_url()
    if url:
        tags[TAG_FLOW_RUN_URL] = url
    return tags


def flow_run_ui_url() -> str | None:
    """The Prefect UI page of the current flow run, or None outside one or without a UI.

    Prefect's own helper writes ``None/flow-runs/...`` when no UI URL is configured (the ephemeral API);
    a link that opens nothing is worse than none.
    """
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_UI_URL

    return flow_run_page(PREFECT_UI_URL.value(), flow_run.get_id())


def flow_run_page(ui_url: str | None, flow_run_id: str | None) -> str | None:
    """The page of flow run ``flow_run_id`` on the Prefect UI at ``ui_url``; None when either is missing."""
    if flow_run_id is None or not ui_url:
        return None
    return f"{str(ui_url).rstrip('/')}/flow-runs/flow-run/{flow_run_id}"


#: MLflow 3's UI opens an experiment in its GenAI view unless this tag says otherwise; band selection is
#: model training ("Model training" in the UI).
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


#: Where ``mlflow ui`` serves by default: the link of a run in a local (sqlite) store points there.
LOCAL_UI_URL = "http://127.0.0.1:5000"


UI_WORKFLOW = "machine_learning"


def mlflow_run_link(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI page of a run: on the tracking server, or where ``mlflow ui`` serves a local store.

    The link opens the UI's "Model training" view: without ``workflowType`` the MLflow 3 UI falls back
    to the browser's last choice, GenAI on a fresh browser, which hides metrics behind trace panels.
    """
    parsed = urlparse(tracking_uri)
    base = tracking_uri.rstrip("/") if parsed.scheme in ("http", "https") else LOCAL_UI_URL
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType={UI_WORKFLOW}"


def _ensure_experiment(client: MlflowClient, name: str, tracking_uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(
                name,
                artifact_location=artifact_location_for(tracking_uri),
                tags={TAG_EXPERIMENT_KIND: EXPERIMENT_KIND},
            )
        except MlflowException as error:
            # Two flow runs starting at once (two campaigns on two workers) both found no experiment;
            # the one that created it second reads the other's.
            experiment = client.get_experiment_by_name(name)
            if error.error_code != "RESOURCE_ALREADY_EXISTS" or experiment is None:
                raise
    if TAG_EXPERIMENT_KIND not in experiment.tags:
        client.set_experiment_tag(experiment.experiment_id, TAG_EXPERIMENT_KIND, EXPERIMENT_KIND)
    return experiment.experiment_id


@contextmanager
def start_run(
    experiment: str,
    run_name: str | None = None,
    tags: Mapping[str, object] | None = None,
    *,
    campaign: str | None = None,
    tracking_uri: str | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """Open an MLflow run tagged with the Prefect flow run and the campaign.

    Parameters
    ----------
    experiment
        Experiment name; created when missing (a sqlite store gets its artifacts next to its database).
    run_name
        Run name shown in the UI; inside a Prefect flow run it defaults to the flow run's name.
    tags
        Extra tags; values are converted with ``str``.
    campaign
        Campaign name, tagged as ``bandselect.campaign``.
    tracking_uri
        Where to log. ``None`` keeps MLflow's current URI (``MLFLOW_TRACKING_URI`` when set); flows pass
        :func:`tracking_uri_default` for the embedded mode.

    Yields
    ------
    mlflow.ActiveRun
        The run; it ends ``FINISHED``, or ``FAILED`` when the block raises. A run whose process is
        killed is ended ``KILLED`` by the next run started in the experiment
        (:mod:`bandselect.tracking.liveness`).
    """
    if not experiment or not isinstance(experiment, str):
        raise ConfigError(
            "MLflow experiment",
            expected="a non-empty name",
            found=repr(experiment),
            fix="pass experiment=...",
        )
    if tracking_uri is not None:
        mlflow.set_tracking_uri(tracking_uri)
    uri = mlflow.get_tracking_uri()
    client = MlflowClient(tracking_uri=uri)
    experiment_id = _ensure_experiment(client, experiment, uri)
    end_dead_runs(client, experiment_id)  # runs left RUNNING by a killed process
    all_tags = {key: str(value) for key, value in (tags or {}).items()}
    all_tags.update(_prefect_tags())
    all_tags[TAG_PROCESS] = process_tag()
    if campaign is not None:
        all_tags[TAG_CAMPAIGN] = campaign
    if run_name is None:
        run_name = all_tags.get(TAG_FLOW_RUN_NAME)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=all_tags) as run:
        yield run


def _run_id(run_id: str | None) -> str:
    if run_id is not None:
        return run_id
    active = mlflow.active_run()
    if active is None:
        raise BandSelectError(
            "MLflow logging",
            expected="an active run in this thread or an explicit run_id",
            found="no active run",
            fix="log inside `with tracking.start_run(...)` or pass run_id=run.info.run_id",
        )
    return active.info.run_id


def current_tracking_uri() -> str:
    """The tracking URI this process logs to (set by :func:`start_run` or ``MLFLOW_TRACKING_URI``)."""
    return mlflow.get_tracking_uri()


def _client() -> MlflowClient:
    return MlflowClient(tracking_uri=current_tracking_uri())


def _scalar_text(value: object) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)  # true/false/null, and NaN/Infinity as JSON-ish text
    return str(value)


def _to_jsonable(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(key): _to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_to_jsonable(item) for item in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten nested configs to MLflow params: ``{"node": {"k": 3}}`` → ``{"node.k": "3"}``.

    Lists, tuples and arrays become JSON (``[1, 2]``), scalars JSON-like text (``true``, ``null``),
    strings stay as they are. An empty mapping is kept as ``{}`` so the key is not lost.

    Parameters
    ----------
    params
        Nested mappings of configuration values.
    prefix
        Key prefix (used by the recursion).

    Returns
    -------
    dict of str to str
        Flat keys joined with ``.``, values as text (not yet truncated).
    """
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            if value:
                flat.update(flatten_params(value, name))
            else:
                flat[name] = "{}"
        elif isinstance(value, list | tuple | np.ndarray | set | frozenset):
            flat[name] = json.dumps(_to_jsonable(value))
        else:
            flat[name] = _scalar_text(value)
    return flat


def _truncate(value: str, limit: int) -> str:
    return value[: limit - len(_TRUNCATION_MARK)] + _TRUNCATION_MARK


def log_params_flat(
    params: Mapping[str, Any],
    *,
    prefix: str = "",
    run_id: str | None = None,
    max_value_length: int = MAX_PARAM_VAL_LENGTH,
) -> dict[str, str]:
    """Log a nested config as flat params, the full values also in the ``params.json`` artifact.

    A value longer than MLflow's limit is cut to ``max_value_length`` characters ending in a visible
    ``...[truncated, full value in params.json]`` mark, and its key is listed in the
    ``bandselect.truncated_params`` tag; nothing is dropped silently.

    Parameters
    ----------
    params
        Nested mappings (e.g. ``{node_name: node.config}``).
    prefix
        Optional key prefix (``"pipeline"`` → ``pipeline.node.k``).
    run_id
        Target run; default the active run of this thread.
    max_value_length
        Longest param value logged (MLflow's server limit by default).

    Returns
    -------
    dict of str to str
        What was logged as params (after truncation).
    """
    run = _run_id(run_id)
    flat = flatten_params(params, prefix)
    logged = {
        key: value if len(value) <= max_value_length else _truncate(value, max_value_length)
        for key, value in flat.items()
    }
    truncated = sorted(key for key in flat if logged[key] != flat[key])
    client = _client()
    items = [Param(key, value) for key, value in logged.items()]
    for start in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run, params=items[start : start + MAX_PARAMS_TAGS_PER_BATCH])
    artifact = PARAMS_ARTIFACT if not prefix else f"params/{prefix}.json"
    client.log_dict(run, _to_jsonable(dict(params)), artifact)
    if truncated:
        client.set_tag(run, TAG_TRUNCATED_PARAMS, fit_tag(json.dumps(truncated)))
    return logged


def fit_tag(value: str) -> str:
    """``value`` shortened (marked as such) to what an MLflow tag can hold."""
    return value if len(value) <= MAX_TAG_VAL_LENGTH else _truncate(value, MAX_TAG_VAL_LENGTH)


def fit_description(text: str, full: str) -> str:
    """A run description (markdown) cut at a line to what an MLflow tag holds, ending with where the
    whole is (``full``, e.g. an artifact's name) when it had to be cut."""
    if len(text) <= MAX_TAG_VAL_LENGTH:
        return text
    note = f"\n\n*(shortened: the whole is in {full})*\n"
    kept = text[: MAX_TAG_VAL_LENGTH - len(note)]
    return kept[: kept.rfind("\n") + 1 if "\n" in kept else len(kept)].rstrip("\n") + note


def log_selection(
    indices: Sequence[int] | np.ndarray,
    wavelengths_nm: Sequence[float] | np.ndarray | None = None,
    *,
    band_scores: Sequence[float] | np.ndarray | None = None,
    objective: float | None = None,
    extra: Mapping[str, Any] | None = None,
    prefix: str = "selection",
    run_id: str | None = None,
) -> dict[str, Any]:
    """Log selected bands as params, tags and a ``selection.json`` artifact.

    Parameters
    ----------
    indices
        Selected band indices, in pick order, shape ``(k,)``.
    wavelengths_nm
        Wavelength of each *selected* band, shape ``(k,)``; or ``None``.
    band_scores
        Optional score of every band of the sensor, shape ``(C,)``, kept in the JSON only.
    objective
        Optional objective value of the selection, also logged as the metric ``<prefix>/objective``.
    extra
        More JSON-able content for the artifact (selector name, windows, ...).
    prefix
        Param prefix and artifact name: ``<prefix>.indices`` and ``<prefix>.json``.
    run_id
        Target run; default the active run of this thread.

    Returns
    -------
    dict
        The artifact's content.
    """
    index_array = np.asarray(indices)
    if index_array.ndim != 1 or not np.issubdtype(index_array.dtype, np.integer):
        raise ShapeError(
            "selected band indices",
            expected="a 1-D sequence of integers",
            found=f"shape {index_array.shape}, dtype {index_array.dtype}",
            fix="pass selection.indices",
        )
    content: dict[str, Any] = {"indices": [int(i) for i in index_array], "k": int(index_array.size)}
    params = {f"{prefix}.indices": json.dumps(content["indices"]), f"{prefix}.k": str(index_array.size)}
    if wavelengths_nm is not None:
        wavelength_array = np.asarray(wavelengths_nm, dtype=np.float64)
        if wavelength_array.shape != index_array.shape:
            raise ShapeError(
                "selected wavelengths",
                expected=f"one wavelength per selected band, shape {index_array.shape}",
                found=f"shape {wavelength_array.shape}",
                fix="pass wavelengths_nm[indices], not the sensor's full wavelength axis",
            )
        content["wavelengths_nm"] = [float(w) for w in wavelength_array]
        # Params and tags are read by people: 0.01 nm is finer than any sensor's band centres are
        # known; the exact values are in the JSON artifact.
        params[f"{prefix}.wavelengths_nm"] = json.dumps([round(w, 2) for w in content["wavelengths_nm"]])
    if band_scores is not None:
        content["band_scores"] = [float(s) for s in np.asarray(band_scores, dtype=np.float64).ravel()]
    if objective is not None:
        content["objective"] = float(objective)
    if extra:
        content.update({str(key): _to_jsonable(value) for key, value in extra.items()})

    run = _run_id(run_id)
    client = _client()
    params = {
        key: value if len(value) <= MAX_PARAM_VAL_LENGTH else _truncate(value, MAX_PARAM_VAL_LENGTH)
        for key, value in params.items()
    }
    tags = [RunTag(f"bandselect.{prefix}.indices", fit_tag(params[f"{prefix}.indices"]))]
    if wavelengths_nm is not None:
        tags.append(
            RunTag(f"bandselect.{prefix}.wavelengths_nm", fit_tag(params[f"{prefix}.wavelengths_nm"]))
        )
    metrics = []
    if objective is not None:
        metrics.append(Metric(f"{prefix}/objective", float(objective), int(time.time() * 1000), 0))
    client.log_batch(run, metrics=metrics, params=[Param(k, v) for k, v in params.items()], tags=tags)
    client.log_dict(run, content, f"{prefix}.json")
    return content


def _history_rows(
    history: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
) -> list[Mapping[str, Any]]:
    if isinstance(history, Mapping):
        lengths = {key: len(values) for key, values in history.items()}
        if len(set(lengths.values())) > 1:
            raise ShapeError(
                "training history",
                expected="one value per epoch for every key",
                found=f"lengths {lengths}",
                fix="pad or drop keys so every series has the same number of epochs",
            )
        n_epochs = next(iter(lengths.values()), 0)
        return [{key: values[epoch] for key, values in history.items()} for epoch in range(n_epochs)]
    return list(history)


def log_history(
    history: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
    *,
    band_labels: Sequence[str] | None = None,
    array_prefixes: Mapping[str, str] | None = None,
    step_key: str = "epoch",
    run_id: str | None = None,
) -> int:
    """Log a training history as per-epoch metrics.

    Scalars (``loss``, ``auroc``, ``temperature``, ...) become one metric each; 1-D arrays become one
    metric per band, ``weights`` → ``weight/<band>``. ``None`` entries (a metric not computed that epoch)
    are skipped.

    Parameters
    ----------
    history
        Either a list of per-epoch dicts, or a dict of per-epoch sequences.
    band_labels
        Label of each band for array metrics (e.g. ``"0450nm"``); default the band index, zero padded.
        Labels may hold letters, digits, ``_ - . /`` and spaces (MLflow's key rules).
    array_prefixes
        Key → metric prefix for array entries; default ``{"weights": "weight", "channel_weights": "weight"}``,
        other array keys keep their own name.
    step_key
        Entry giving the step number; when absent the row's position is the step.
    run_id
        Target run; default the active run of this thread.

    Returns
    -------
    int
        Number of metric values logged.
    """
    prefixes = dict(DEFAULT_ARRAY_PREFIXES if array_prefixes is None else array_prefixes)
    rows = _history_rows(history)
    timestamp = int(time.time() * 1000)
    metrics: list[Metric] = []
    for position, row in enumerate(rows):
        step = int(row[step_key]) if step_key in row and row[step_key] is not None else position
        for key, value in row.items():
            if key == step_key or value is None:
                continue
            array = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
            if array.ndim == 0:
                metrics.append(Metric(str(key), float(array), timestamp, step))
                continue
            if array.ndim != 1:
                raise ShapeError(
                    f"history entry {key!r}",
                    expected="a scalar or a 1-D per-band array per epoch",
                    found=f"shape {array.shape}",
                    fix="log one 1-D array per key (e.g. split a (n_selectors, C) array by selector)",
                )
            labels = (
                band_labels
                if band_labels is not None
                else [f"{band:0{len(str(array.size - 1))}d}" for band in range(array.size)]
            )
            if len(labels) != array.size:
                raise ShapeError(
                    "band_labels",
                    expected=f"{array.size} labels for {key!r}",
                    found=f"{len(labels)} labels",
                    fix="pass one label per band",
                )
            name = prefixes.get(str(key), str(key))
            metrics.extend(
                Metric(f"{name}/{label}", float(item), timestamp, step)
                for label, item in zip(labels, array, strict=True)
            )
    run = _run_id(run_id)
    client = _client()
    for start in range(0, len(metrics), MAX_ENTITIES_PER_BATCH):
        client.log_batch(run, metrics=metrics[start : start + MAX_ENTITIES_PER_BATCH])
    return len(metrics)


def log_figure(fig: Figure, name: str, *, run_id: str | None = None) -> str:
    """Log a matplotlib figure as an image artifact.

    Parameters
    ----------
    fig
        A matplotlib figure (not closed by this function).
    name
        Artifact path with its extension, e.g. ``"plots/band_scores.png"``.
    run_id
        Target run; default the active run of this thread.

    Returns
    -------
    str
        The artifact path.
    """
    if not Path(name).suffix:
        raise ConfigError(
            "figure artifact name",
            expected="a file name with an extension (.png)",
            found=repr(name),
            fix=f"use {name!r} + '.png'",
        )
    _client().log_figure(_run_id(run_id), fig, name)
    return name


def log_file(
    path: str | os.PathLike[str], artifact_path: str | None = None, *, run_id: str | None = None
) -> str:
    """Log one file (pipeline YAML, weights, PNG, zarr metadata) as an artifact.

    Parameters
    ----------
    path
        An existing file.
    artifact_path
        Folder inside the run's artifacts; ``None`` for the root.
    run_id
        Target run; default the active run of this thread.

    Returns
    -------
    str
        The artifact's path inside the run.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(
            "artifact file",
            expected="an existing file",
            found=str(file),
            fix="check the path; use log_directory for folders",
        )
    _client().log_artifact(_run_id(run_id), str(file), artifact_path)
    return f"{artifact_path}/{file.name}" if artifact_path else file.name


def log_directory(
    path: str | os.PathLike[str], artifact_path: str | None = None, *, run_id: str | None = None
) -> str | None:
    """Log a folder's files (e.g. a saved pipeline: ``pipeline.yaml`` + ``weights.pt``) as artifacts.

    Parameters
    ----------
    path
        An existing folder.
    artifact_path
        Folder inside the run's artifacts; ``None`` for the root.
    run_id
        Target run; default the active run of this thread.

    Returns
    -------
    str or None
        The artifact folder.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(
            "artifact folder",
            expected="an existing folder",
            found=str(folder),
            fix="check the path; use log_file for single files",
        )
    _client().log_artifacts(_run_id(run_id), str(folder), artifact_path)
    return artifact_path
