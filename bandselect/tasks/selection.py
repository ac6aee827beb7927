"""Tasks: initialise a pipeline's selectors from campaign statistics, train it, describe its selection.

Each step saves the pipeline (``pipeline.yaml`` + ``weights.pt``) under ``<work>/pipelines/<step>-<key>``
where ``key`` is a digest of everything the result depends on (store, acquisition ids, statistics
settings, pipeline config, positive label; plus the training settings for the trained pipeline). An
existing directory *is* the finished work: a re-run with the same content loads it instead of recomputing.
The Prefect cache keys are the same digests (results are small: paths, ids, history), and a cache entry
whose directory has gone is ignored.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from bandselect.errors import ConfigError, LabelError, PipelineError
from bandselect.export import CompositeSpec
from bandselect.names import COORD_WAVELENGTH, DIM_BAND, DIM_X, DIM_Y, VAR_CUBE
from bandselect.pipeline import Pipeline
from bandselect.selectors import BandSelectorBase
from bandselect.stats import load_campaign_statistics
from bandselect.store import open_campaign
from bandselect.tasks._logging import run_logger
from bandselect.training import GradientTrainer, initialize_from_statistics
from bandselect.training.patches import PatchDataModule

__all__ = [
    "AUTO",
    "PipelineState",
    "SelectionSummary",
    "TrainingOutcome",
    "content_key",
    "describe_selection",
    "find_selector",
    "initialise_pipeline",
    "initialise_selectors",
    "resolve_pipeline_config",
    "train_pipeline",
    "train_selectors",
]

AUTO = "auto"
_AUTO_KEYS = ("input_channels", "num_spectral_bands")
HISTORY_FILE = "history.json"
STATE_FILE = "state.json"
#: Cache entries of these tasks are kept this long (their directories are the durable record).
CACHE_EXPIRATION = timedelta(days=30)


class PipelineState(BaseModel):
    """A saved pipeline: where, under which content key, and what it holds."""

    directory: str
    key: str
    selector: str
    selector_type: str
    learnable: bool
    initialised: list[str]


class TrainingOutcome(BaseModel):
    """A trained pipeline and its per-epoch history (scalars and the selector's weights)."""

    state: PipelineState
    history: list[dict[str, Any]]
    temperature_min: float | None = None


class SelectionSummary(BaseModel):
    """The selection of a pipeline, small enough to pass between tasks and log."""

    selector: str
    selector_type: str
    selector_config: dict[str, Any]
    node_configs: dict[str, dict[str, Any]]
    indices: list[int]
    wavelengths_nm: list[float]
    rgb_indices: list[int]
    rgb_wavelengths_nm: list[float]
    band_scores: dict[str, list[float]]
    windows_nm: list[list[float]] | None
    config_hash: str
    pipeline_dir: str
    trained: bool

    def composite_spec(self, wavelengths_nm: Sequence[float]) -> CompositeSpec:
        """The export spec of this selection on the campaign's wavelength grid."""
        return CompositeSpec.create(
            self.rgb_indices,
            wavelengths_nm,
            selected_indices=self.indices,
            selector=f"{self.selector}: {self.selector_type}",
            selector_config=self.selector_config,
        )


def content_key(*parts: Any) -> str:
    """A 24-hex-digit digest of JSON-able parts (sorted keys)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def resolve_pipeline_config(config: Mapping[str, Any], n_bands: int) -> dict[str, Any]:
    """A copy of a pipeline mapping with ``input_channels: auto`` / ``num_spectral_bands: auto`` filled in."""
    resolved = copy.deepcopy(dict(config))
    if "pipeline" in resolved and "nodes" not in resolved:
        resolved = dict(resolved["pipeline"])
    nodes = resolved.get("nodes")
    if not isinstance(nodes, Mapping) or not nodes:
        raise ConfigError(
            "pipeline",
            expected="a mapping with 'nodes' (and 'connections') in the seed's form",
            found=f"keys {sorted(resolved)}",
            fix="see configs/select_bands.yaml for an example",
        )
    for definition in nodes.values():
        options = definition.get("config") if isinstance(definition, Mapping) else None
        if isinstance(options, dict):
            for key in _AUTO_KEYS:
                if options.get(key) == AUTO:
                    options[key] = int(n_bands)
    return resolved


def find_selector(pipeline: Pipeline, name: str | None) -> str:
    """The selector node: ``name`` when given, else the first band selector in topological order.

    Raises
    ------
    PipelineError
        ``name`` is not a node, or the pipeline has no band selector.
    """
    if name is not None:
        if name not in pipeline.nodes:
            raise PipelineError(
                f"selector node {name!r}",
                expected=f"one of {list(pipeline.nodes)}",
                found=repr(name),
                fix="set `selector:` in the flow config to the selector's node name",
            )
        return name
    for candidate in pipeline.topological_order():
        node = pipeline.nodes[candidate]
        if isinstance(node, BandSelectorBase) or callable(getattr(node, "get_selection_weights", None)):
            return candidate
    raise PipelineError(
        "pipeline selector",
        expected="a band selector node (a BandSelectorBase or SoftChannelSelector)",
        found=f"nodes {[type(n).__name__ for n in pipeline.nodes.values()]}",
        fix="add a selector node to the pipeline",
    )


def _is_learnable(pipeline: Pipeline) -> bool:
    has_unfreeze = any(callable(getattr(n, "unfreeze", None)) for n in pipeline.nodes.values())
    has_loss = any("loss" in getattr(n, "OUTPUT_PORTS", {}) for n in pipeline.nodes.values())
    return has_unfreeze and has_loss


def _publish_directory(staging: Path, final: Path) -> None:
    """Rename a finished directory into place; a concurrent identical result already there wins."""
    try:
        os.rename(staging, final)
    except OSError:
        if not (final / "pipeline.yaml").is_file():
            raise
        shutil.rmtree(staging, ignore_errors=True)


def _statistics_for(store: str, ids: Sequence[str], positive_label: int | None) -> Any:
    stored = load_campaign_statistics(open_campaign(store))
    if stored is None or not set(ids) <= set(stored.acquisition_ids):
        raise PipelineError(
            f"statistics of {store}",
            expected=f"statistics covering the {len(ids)} acquisitions to select on",
            found="none stored" if stored is None else f"{len(stored.acquisition_ids)} acquisitions covered",
            fix="run the update-statistics task (bandselect.tasks.update_statistics) first",
        )
    stats = stored.stats
    if positive_label is not None:
        classes = [int(c) for c in stats.classes]
        if int(positive_label) not in classes:
            raise LabelError(
                "positive_label",
                expected=f"one of the campaign's label classes {classes}",
                found=positive_label,
                fix="set positive_label to a class present in the masks (or null: labels > 0 are positive)",
            )
        stats = stats.one_vs_rest(int(positive_label))
    return stats


def _init_content_key(
    store: str, mapping: Mapping[str, Any], ids: Sequence[str], n_bins: int, positive_label: int | None
) -> str:
    return content_key("init", str(Path(store).resolve()), sorted(ids), n_bins, mapping, positive_label)


def initialise_pipeline(
    store: str,
    pipeline_config: Mapping[str, Any],
    work_dir: str,
    acquisition_ids: Sequence[str],
    *,
    selector: str | None = None,
    positive_label: int | None = None,
    n_bins: int = 0,
) -> PipelineState:
    """Build the pipeline, initialise its nodes from the campaign statistics, save it; reuse a saved one."""
    campaign = open_campaign(store)
    wavelengths = campaign.wavelengths
    if wavelengths is None:
        raise PipelineError(
            f"campaign {store}", expected="at least one acquisition", found="none", fix="ingest data first"
        )
    mapping = resolve_pipeline_config(pipeline_config, int(wavelengths.size))
    key = _init_content_key(store, mapping, acquisition_ids, n_bins, positive_label)
    directory = Path(work_dir) / "pipelines" / f"init-{key}"
    if (directory / STATE_FILE).is_file():
        return PipelineState.model_validate_json((directory / STATE_FILE).read_text(encoding="utf-8"))
    pipeline = Pipeline.from_config(mapping)
    name = find_selector(pipeline, selector)
    stats = _statistics_for(store, acquisition_ids, positive_label)
    initialised = initialize_from_statistics(pipeline, stats, wavelengths)
    state = PipelineState(
        directory=str(directory),
        key=key,
        selector=name,
        selector_type=type(pipeline.nodes[name]).__name__,
        learnable=_is_learnable(pipeline),
        initialised=initialised,
    )
    staging = directory.with_name(f".{directory.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    pipeline.save(staging)
    (staging / STATE_FILE).write_text(state.model_dump_json(indent=1), encoding="utf-8")
    _publish_directory(staging, directory)
    return state


def _history_rows(history: Sequence[Mapping[str, Any]], selector: str) -> list[dict[str, Any]]:
    rows = []
    for entry in history:
        row: dict[str, Any] = {"epoch": int(entry.get("epoch", len(rows)))}
        for key in ("loss", "val_loss"):
            if entry.get(key) is not None:
                row[key] = float(entry[key])
        for key, value in (entry.get("metrics") or {}).items():
            if value is not None and np.isfinite(value):
                row[str(key)] = float(value)
        temperature = (entry.get("temperature") or {}).get(selector)
        if temperature is not None:
            row["temperature"] = float(temperature)
        weights = (entry.get("weights") or {}).get(selector)
        if weights is not None:
            row["weights"] = [float(w) for w in weights]
        if "best" in entry:
            row["best"] = bool(entry["best"])
        rows.append(row)
    return rows


def train_pipeline(
    store: str,
    state: PipelineState,
    work_dir: str,
    acquisition_ids: Sequence[str],
    training: Mapping[str, Any],
) -> TrainingOutcome:
    """Phase 2 of the two-phase recipe: unfreeze the initialised pipeline and train it on store patches.

    ``training`` holds ``epochs, lr, optimizer, seed, device, patch_size, batch_size, batches_per_epoch,
    train_rows, val_rows``. The trained pipeline and its history are saved under a content key.
    """
    key = content_key("train", state.key, dict(training))
    directory = Path(work_dir) / "pipelines" / f"trained-{key}"
    if (directory / HISTORY_FILE).is_file() and (directory / STATE_FILE).is_file():
        return TrainingOutcome.model_validate_json((directory / HISTORY_FILE).read_text(encoding="utf-8"))
    pipeline = Pipeline.load(state.directory)
    for node in pipeline.nodes.values():
        unfreeze = getattr(node, "unfreeze", None)
        if callable(unfreeze):
            unfreeze()
    datamodule = PatchDataModule.from_store(
        store,
        list(acquisition_ids),
        patch_size=training["patch_size"],
        batch_size=training["batch_size"],
        batches_per_epoch=training["batches_per_epoch"],
        train_rows=tuple(training["train_rows"]),
        val_rows=None if training.get("val_rows") is None else tuple(training["val_rows"]),
        seed=training["seed"],
    )
    trainer = GradientTrainer(
        pipeline,
        datamodule,
        optimizer=training["optimizer"],
        lr=training["lr"],
        max_epochs=training["epochs"],
        device=training["device"],
        seed=training["seed"],
        progress=False,
        monitor=training.get("monitor"),
    )
    history = trainer.fit()
    pipeline.to("cpu")
    for node in pipeline.nodes.values():
        freeze = getattr(node, "freeze", None)
        if callable(freeze):
            freeze()  # saved as buffers, like the initialised pipeline: load() gives the same structure
    pipeline.eval()
    trained_state = state.model_copy(update={"directory": str(directory), "key": key})
    selector_node = pipeline.nodes[state.selector]
    outcome = TrainingOutcome(
        state=trained_state,
        history=_history_rows(history, state.selector),
        temperature_min=getattr(selector_node, "temperature_min", None),
    )
    staging = directory.with_name(f".{directory.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    pipeline.save(staging)
    (staging / STATE_FILE).write_text(trained_state.model_dump_json(indent=1), encoding="utf-8")
    (staging / HISTORY_FILE).write_text(outcome.model_dump_json(indent=1), encoding="utf-8")
    _publish_directory(staging, directory)
    return outcome


def _sample(store: str, acquisition_id: str, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    dataset = open_campaign(store).open(acquisition_id)
    cube = dataset[VAR_CUBE].transpose(DIM_Y, DIM_X, DIM_BAND)
    window = cube.isel({DIM_Y: slice(0, size), DIM_X: slice(0, size)}).values.astype(np.float32)
    wavelengths = np.asarray(dataset[COORD_WAVELENGTH].values, dtype=np.float32)
    return torch.from_numpy(window[None]), torch.from_numpy(wavelengths)


def _score_curves(stats: Any, node: Any, weights: np.ndarray | None) -> dict[str, list[float]]:
    curves: dict[str, list[float]] = {}
    classes = [int(c) for c in stats.classes]
    if len(classes) >= 2 and stats.has_histograms:
        binary = stats if set(classes) <= {0, 1} else stats.one_vs_rest(max(classes))
        for name in ("fisher", "auc", "mi"):
            curves[name] = [float(v) for v in np.nan_to_num(np.asarray(getattr(binary, name), float))]
    else:
        curves["variance"] = [float(v) for v in np.asarray(stats.variance, dtype=float)]
    band_scores = getattr(node, "band_scores", None)
    if isinstance(band_scores, torch.Tensor) and band_scores.numel() == len(stats.variance):
        curves["selector score"] = [float(v) for v in band_scores.detach().cpu().numpy()]
    if weights is not None:
        curves["channel weight"] = [float(v) for v in weights]
    return curves


def describe_selection_fn(
    store: str,
    state: PipelineState,
    acquisition_ids: Sequence[str],
    *,
    positive_label: int | None = None,
    trained: bool = False,
) -> SelectionSummary:
    """Read the selected bands (all picks and the R, G, B three) and per-band scores of a saved pipeline."""
    pipeline = Pipeline.load(state.directory)
    pipeline.eval()
    node = pipeline.nodes[state.selector]
    campaign = open_campaign(store)
    wavelengths = np.asarray(campaign.wavelengths, dtype=np.float64)
    weights = None
    if callable(getattr(node, "get_selection_weights", None)):
        weights = node.get_selection_weights(hard=False).detach().cpu().numpy().astype(np.float64)
        n_select = int(getattr(node, "n_select", 3))
        picks = np.argsort(-weights, kind="stable")[:n_select].astype(np.int64)
        if picks.size < 3:
            raise ConfigError(
                f"selector {state.selector!r} n_select",
                expected="at least 3 bands for an RGB composite",
                found=int(picks.size),
                fix="set n_select: 3 (or more) on the selector",
            )
        # The three largest weights, longest wavelength on red (the usual false-colour convention).
        rgb = sorted(picks[:3].tolist(), key=lambda i: -wavelengths[i])
        indices = picks.tolist()
    elif isinstance(node, BandSelectorBase):
        cube, wl = _sample(store, sorted(acquisition_ids)[0])
        with torch.no_grad():
            band_info = node(cube=cube, wavelengths=wl)["band_info"]
        rgb = [int(i) for i in band_info["band_indices"]]
        indices = [int(i) for i in band_info.get("selected_indices", rgb)]
    else:
        raise PipelineError(
            f"selector node {state.selector!r} ({state.selector_type})",
            expected="a band selector (BandSelectorBase or a node with get_selection_weights)",
            found=state.selector_type,
            fix="name the selector node in `selector:`",
        )
    stats = _statistics_for(store, acquisition_ids, positive_label)
    windows = node.config.get("windows")
    summary = SelectionSummary(
        selector=state.selector,
        selector_type=state.selector_type,
        selector_config=dict(node.config),
        node_configs={name: {"type": type(n).__name__, **n.config} for name, n in pipeline.nodes.items()},
        indices=[int(i) for i in indices],
        wavelengths_nm=[float(wavelengths[i]) for i in indices],
        rgb_indices=[int(i) for i in rgb],
        rgb_wavelengths_nm=[float(wavelengths[i]) for i in rgb],
        band_scores=_score_curves(stats, node, weights),
        windows_nm=None if windows is None else [[float(v) for v in w] for w in windows],
        config_hash="",
        pipeline_dir=state.directory,
        trained=trained,
    )
    spec = summary.composite_spec(wavelengths)
    return summary.model_copy(update={"config_hash": spec.config_hash})


def _cache_key_if_present(directory_of: Any) -> Any:
    """A ``cache_key_fn`` that returns the content key only while the saved directory still exists."""

    def key_fn(context: Any, parameters: dict[str, Any]) -> str | None:
        key, directory = directory_of(parameters)
        return key if directory.is_dir() else None

    return key_fn


def _init_key(parameters: dict[str, Any]) -> tuple[str, Path]:
    store = parameters["store"]
    wavelengths = open_campaign(store).wavelengths
    n_bands = 0 if wavelengths is None else int(wavelengths.size)
    mapping = resolve_pipeline_config(parameters["pipeline_config"], n_bands)
    key = _init_content_key(
        store,
        mapping,
        parameters["acquisition_ids"],
        parameters.get("n_bins", 0),
        parameters.get("positive_label"),
    )
    return f"bandselect-init-{key}", Path(parameters["work_dir"]) / "pipelines" / f"init-{key}"


def _train_key(parameters: dict[str, Any]) -> tuple[str, Path]:
    state = parameters["state"]
    key = content_key("train", state.key, dict(parameters["training"]))
    return f"bandselect-train-{key}", Path(parameters["work_dir"]) / "pipelines" / f"trained-{key}"


@task(
    name="initialise-selectors",
    retries=1,
    retry_delay_seconds=2,
    cache_key_fn=_cache_key_if_present(_init_key),
    cache_expiration=CACHE_EXPIRATION,
    persist_result=True,
)
def initialise_selectors(
    store: str,
    pipeline_config: dict[str, Any],
    work_dir: str,
    acquisition_ids: list[str],
    selector: str | None = None,
    positive_label: int | None = None,
    n_bins: int = 0,
) -> PipelineState:
    """Prefect task over :func:`initialise_pipeline` (statistics → ``initialize_from_statistics``)."""
    state = initialise_pipeline(
        store,
        pipeline_config,
        work_dir,
        acquisition_ids,
        selector=selector,
        positive_label=positive_label,
        n_bins=n_bins,
    )
    run_logger(__name__).info(
        "initialised %s from statistics; selector %s (%s), learnable: %s",
        state.initialised,
        state.selector,
        state.selector_type,
        state.learnable,
    )
    return state


@task(
    name="train-selectors",
    cache_key_fn=_cache_key_if_present(_train_key),
    cache_expiration=CACHE_EXPIRATION,
    persist_result=True,
)
def train_selectors(
    store: str,
    state: PipelineState,
    work_dir: str,
    acquisition_ids: list[str],
    training: dict[str, Any],
) -> TrainingOutcome:
    """Prefect task over :func:`train_pipeline` (gradient phase of the two-phase recipe)."""
    outcome = train_pipeline(store, state, work_dir, acquisition_ids, training)
    last = outcome.history[-1] if outcome.history else {}
    run_logger(__name__).info(
        "trained %d epochs; last loss %s",
        len(outcome.history),
        last.get("loss"),
    )
    return outcome


@task(name="describe-selection", cache_policy=NO_CACHE)
def describe_selection(
    store: str,
    state: PipelineState,
    acquisition_ids: list[str],
    positive_label: int | None = None,
    trained: bool = False,
) -> SelectionSummary:
    """Prefect task over :func:`describe_selection_fn`."""
    summary = describe_selection_fn(
        store, state, acquisition_ids, positive_label=positive_label, trained=trained
    )
    run_logger(__name__).info(
        "selected bands %s (%s nm); composite R, G, B = %s",
        summary.indices,
        ", ".join(f"{w:.1f}" for w in summary.wavelengths_nm),
        summary.rgb_indices,
    )
    return summary
