"""Prefect tasks of the ``compare_selectors`` flow: load a labelled scene, compare, render, log to MLflow.

Thin wrappers over :func:`bandselect.evaluation.compare.compare_selections`,
:mod:`bandselect.reports` and :mod:`bandselect.tracking`; each is callable without Prefect through
``.fn(...)``. Tasks receive paths and small results (configs, the leaderboard), never the cube: the
compare and render tasks load the scene themselves.

MLflow layout of a comparison: one parent run (the flow run) and one child run per selector, the child
tagged ``mlflow.parentRunId``. MLflow runs are addressed by id everywhere (tasks may run in worker
threads, where MLflow's active run is not visible).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from bandselect.errors import InputError, LabelError
from bandselect.evaluation.compare import (
    MEASURE_LABELS,
    Leaderboard,
    LeaderboardRow,
    SelectorSpec,
    SplitSettings,
    StabilitySettings,
    compare_selections,
)

__all__ = [
    "TAG_NOT_APPLICABLE",
    "TAG_STATUS",
    "TAG_UNSTABLE",
    "TAG_UNSTABLE_SELECTORS",
    "ComparisonFigures",
    "LabelledScene",
    "compare_task",
    "load_labelled_scene",
    "log_comparison_task",
    "publish_table_task",
    "render_comparison_task",
]

TAG_STATUS = "bandselect.status"
TAG_UNSTABLE = "bandselect.stability.unstable"
TAG_UNSTABLE_SELECTORS = "bandselect.unstable_selectors"
TAG_NOT_APPLICABLE = "bandselect.not_applicable_selectors"
TAG_SELECTOR_TYPE = "bandselect.selector_type"
TAG_ROLE = "bandselect.role"
LEADERBOARD_JSON = "leaderboard.json"
LEADERBOARD_CSV = "leaderboard.csv"
_MLFLOW_PARENT_TAG = "mlflow.parentRunId"
_KEY_PATTERN = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class LabelledScene:
    """One scene with binary labels: ``cube`` ``(H, W, C)`` float32, ``positive`` ``(H, W)`` bool."""

    cube: np.ndarray
    positive: np.ndarray
    wavelengths_nm: np.ndarray
    name: str


def _binary_positive(labels: np.ndarray, label: int | None, source: str) -> np.ndarray:
    values = np.unique(labels)
    if label is None:
        if not set(values.tolist()) <= {0, 1}:
            raise LabelError(
                f"labels of {source}",
                expected="a binary mask (0 negative, 1 positive) when no label is given",
                found=f"classes {values.tolist()[:10]}",
                fix="set scene.label to the class to detect (that class against the rest)",
            )
        return labels > 0
    if int(label) not in values.tolist() or int(label) == 0:
        raise LabelError(
            f"labels of {source}",
            expected=f"class {label} present (and not the background 0)",
            found=f"classes {values.tolist()[:10]}",
            fix=f"choose scene.label among {[v for v in values.tolist() if v != 0][:10]}",
        )
    return labels == int(label)


def load_labelled_scene(
    path: str | os.PathLike[str], *, acquisition: str | None = None, label: int | None = None
) -> LabelledScene:
    """Read one labelled scene from a ``.npz``/ENVI/``.mat`` file or from a campaign store.

    Parameters
    ----------
    path
        A file readable by :func:`bandselect.store.open_source` (with a ``mask``/``gt`` label array) or a
        campaign store directory.
    acquisition
        Acquisition id in a store; may be omitted when the store holds exactly one.
    label
        Class to detect, against the rest; ``None`` when the labels are already binary.

    Returns
    -------
    LabelledScene
    """
    from bandselect.names import COORD_WAVELENGTH, VAR_CUBE, VAR_MASK
    from bandselect.store import open_campaign, open_source

    source_path = Path(path)
    if source_path.is_dir():
        campaign = open_campaign(source_path)
        ids = campaign.ids()
        if acquisition is None:
            if len(ids) != 1:
                raise InputError(
                    f"campaign store {source_path}",
                    expected="scene.acquisition naming one acquisition (the store holds several)",
                    found=f"{len(ids)} acquisitions: {ids[:5]}",
                    fix="set scene.acquisition to one of them",
                )
            acquisition = ids[0]
        dataset = campaign.open(acquisition)
        if VAR_MASK not in dataset:
            raise LabelError(
                f"acquisition {acquisition}",
                expected="a label mask",
                found="none",
                fix="ingest a labelled cube",
            )
        cube = np.asarray(dataset[VAR_CUBE].values, dtype=np.float32)
        labels = np.asarray(dataset[VAR_MASK].values)
        wavelengths = np.asarray(dataset[COORD_WAVELENGTH].values, dtype=np.float64)
        name = f"{source_path.stem}/{acquisition}"
    else:
        source = open_source(source_path)
        if source.mask_dtype is None:
            raise LabelError(
                f"scene {source_path}",
                expected="a label array (mask or gt)",
                found="none",
                fix="use a labelled scene",
            )
        cubes, masks = [], []
        for block_cube, block_mask, block_valid in source.read_blocks(source.shape[0]):
            if block_valid is not None and not np.all(block_valid):
                raise InputError(
                    f"scene {source_path}",
                    expected="finite values everywhere",
                    found="invalid (non-finite) pixels",
                    fix="repair the scene or crop the invalid pixels away before comparing",
                )
            cubes.append(np.asarray(block_cube, dtype=np.float32))
            masks.append(np.asarray(block_mask))
        cube, labels = np.concatenate(cubes), np.concatenate(masks)
        wavelengths = np.asarray(source.wavelengths_nm, dtype=np.float64)
        name = source_path.stem
    positive = _binary_positive(labels, label, str(source_path))
    if label is not None:
        name = f"{name}, class {label} vs rest"
    return LabelledScene(cube=cube, positive=positive, wavelengths_nm=wavelengths, name=name)


@task(name="compare-selections", cache_policy=NO_CACHE)
def compare_task(
    scene_path: str,
    selectors: Mapping[str, Mapping[str, Any]],
    *,
    acquisition: str | None = None,
    label: int | None = None,
    split: Mapping[str, Any] | None = None,
    stability: Mapping[str, Any] | None = None,
    measures: Sequence[str] | None = None,
    n_random_draws: int = 20,
    folds: int = 5,
    seed: int = 0,
) -> Leaderboard:
    """Load the scene and run :func:`~bandselect.evaluation.compare.compare_selections`.

    ``selectors`` maps names to ``{"type": ..., "config": {...}}``; ``split``/``stability`` hold the
    fields of :class:`SplitSettings`/:class:`StabilitySettings`.
    """
    scene = load_labelled_scene(scene_path, acquisition=acquisition, label=label)
    specs = {
        name: SelectorSpec(spec["type"], dict(spec.get("config") or {})) for name, spec in selectors.items()
    }
    split_settings = SplitSettings(**_tuples(split or {}))
    stability_settings = StabilitySettings(**_tuples(stability or {}))
    kwargs: dict[str, Any] = {}
    if measures is not None:
        kwargs["measures"] = tuple(measures)
    return compare_selections(
        scene.cube,
        scene.positive,
        scene.wavelengths_nm,
        specs,
        split=split_settings,
        stability=stability_settings,
        n_random_draws=n_random_draws,
        folds=folds,
        seed=seed,
        **kwargs,
    )


def _tuples(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in settings.items()}


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
    return f"AUROC ({MEASURE_LABELS[measure]})"


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


@task(name="render-comparison", cache_policy=NO_CACHE)
def render_comparison_task(
    leaderboard: Leaderboard,
    scene_path: str,
    output_dir: str,
    *,
    acquisition: str | None = None,
    label: int | None = None,
    title: str = "Selector comparison",
) -> ComparisonFigures:
    """Write the leaderboard (JSON, CSV, one chart per measure), RGB previews and stability plots.

    Rows that are not applicable have no image; the chart names them under the x axis.
    """
    from bandselect.render import atomic_path, composite
    from bandselect.reports import (
        plot_band_stability,
        plot_leaderboard,
        plot_rgb_previews,
        save_figure,
    )

    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    scene = load_labelled_scene(scene_path, acquisition=acquisition, label=label)
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
        previews[row.name] = composite(scene.cube, np.asarray(row.rgb_indices))
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


def table_artifact_key(campaign: str) -> str:
    """Prefect artifact key of a campaign's leaderboard (lowercase letters, digits and dashes)."""
    slug = _KEY_PATTERN.sub("-", campaign.lower()).strip("-")[:60].strip("-")
    return f"leaderboard-{slug or 'scene'}"


@task(name="publish-leaderboard-table", cache_policy=NO_CACHE)
def publish_table_task(leaderboard: Leaderboard, campaign: str, parent_run_id: str | None = None) -> str:
    """Publish the leaderboard as a Prefect table artifact; returns its key."""
    columns, table = leaderboard.table()
    records = [{column: _plain(value) for column, value in zip(columns, row, strict=True)} for row in table]
    key = table_artifact_key(campaign)
    description = f"Selector leaderboard of **{campaign}**, ranked by `{leaderboard.measures[0]}` " + (
        f"({MEASURE_LABELS[leaderboard.measures[0]]})."
    )
    if parent_run_id:
        description += f" MLflow parent run `{parent_run_id}`."
    create_table_artifact(table=records, key=key, description=description)
    return key


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return value


@task(name="log-comparison", cache_policy=NO_CACHE)
def log_comparison_task(
    leaderboard: Leaderboard,
    figures: ComparisonFigures,
    parent_run_id: str,
    config: Mapping[str, Any],
) -> dict[str, str]:
    """Log the comparison to the open parent run and create one finished child run per selector.

    Parent: ``config`` as params, per-selector and baseline metrics (``<name>/<measure>``), the
    leaderboard JSON/CSV and charts, the previews side by side, the stability plots, tags listing the
    unstable and the not-applicable selectors. Child (per selector): type and config as params, the
    measures and stability as metrics, ``selection.json``, its RGB preview and stability plot.

    Returns
    -------
    dict of str to str
        Selector name → child run id.
    """
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    from bandselect import tracking

    client = MlflowClient()
    parent = client.get_run(parent_run_id)
    tracking.log_params_flat(config, run_id=parent_run_id)
    timestamp = int(time.time() * 1000)
    parent_metrics: list[Metric] = []
    for row in leaderboard.rows:
        if not row.applicable:
            continue
        prefix = row.name if row.kind == "selector" else f"baseline/{row.kind}"
        for measure, value in row.scores.items():
            parent_metrics.append(Metric(f"{prefix}/{measure}", float(value), timestamp, 0))
        for measure, value in row.scores_std.items():
            parent_metrics.append(Metric(f"{prefix}/{measure}_std", float(value), timestamp, 0))
    unstable = [
        row.name for row in leaderboard.selector_rows if row.stability is not None and row.stability.unstable
    ]
    not_applicable = [row.name for row in leaderboard.selector_rows if not row.applicable]
    client.log_batch(
        parent_run_id,
        metrics=parent_metrics,
        tags=[
            RunTag(TAG_ROLE, "comparison"),
            RunTag(TAG_UNSTABLE_SELECTORS, json.dumps(unstable)),
            RunTag(TAG_NOT_APPLICABLE, json.dumps(not_applicable)),
        ],
    )
    tracking.log_file(figures.leaderboard_json, run_id=parent_run_id)
    tracking.log_file(figures.leaderboard_csv, run_id=parent_run_id)
    for path in figures.leaderboard.values():
        tracking.log_file(path, "plots", run_id=parent_run_id)
    if figures.rgb_previews is not None:
        tracking.log_file(figures.rgb_previews, "plots", run_id=parent_run_id)
    for path in figures.stability.values():
        tracking.log_file(path, "plots/stability", run_id=parent_run_id)

    inherited = {
        key: value
        for key, value in parent.data.tags.items()
        if key.startswith("prefect.") or key == tracking.TAG_CAMPAIGN
    }
    children: dict[str, str] = {}
    for row in leaderboard.selector_rows:
        tags = {**inherited, _MLFLOW_PARENT_TAG: parent_run_id, TAG_STATUS: row.status}
        tags[TAG_SELECTOR_TYPE] = str(row.selector_type)
        tags[TAG_ROLE] = "selector"
        child = client.create_run(parent.info.experiment_id, run_name=row.name, tags=tags)
        child_id = child.info.run_id
        try:
            tracking.log_params_flat(
                {"selector": {"type": row.selector_type, "config": dict(row.config)}}, run_id=child_id
            )
            if row.applicable:
                _log_child_results(client, child_id, row, leaderboard, figures)
        except BaseException:
            client.set_terminated(child_id, "FAILED")
            raise
        client.set_terminated(child_id, "FINISHED")
        children[row.name] = child_id
    return children


def _log_child_results(
    client: Any, run_id: str, row: LeaderboardRow, leaderboard: Leaderboard, figures: ComparisonFigures
) -> None:
    from mlflow.entities import Metric, RunTag

    from bandselect import tracking

    timestamp = int(time.time() * 1000)
    metrics = [Metric(measure, float(value), timestamp, 0) for measure, value in row.scores.items()]
    tags = []
    if row.stability is not None:
        metrics.append(Metric("stability/index", float(row.stability.score), timestamp, 0))
        metrics.append(Metric("stability/unstable", float(row.stability.unstable), timestamp, 0))
        tags.append(RunTag(TAG_UNSTABLE, json.dumps(bool(row.stability.unstable))))
    client.log_batch(run_id, metrics=metrics, tags=tags)
    extra: dict[str, Any] = {
        "selector": row.name,
        "selector_type": row.selector_type,
        "rgb_indices": list(row.rgb_indices),
        "rgb_wavelengths_nm": [float(leaderboard.wavelengths_nm[i]) for i in row.rgb_indices],
        "scores": dict(row.scores),
    }
    if row.stability is not None:
        extra["stability"] = {
            "index": row.stability.score,
            "unstable": row.stability.unstable,
            "reason": row.stability.reason,
            "frequency": row.stability.frequency,
        }
    tracking.log_selection(list(row.indices), list(row.wavelengths_nm), extra=extra, run_id=run_id)
    if row.name in figures.selector_previews:
        tracking.log_file(figures.selector_previews[row.name], "plots", run_id=run_id)
    if row.name in figures.stability:
        tracking.log_file(figures.stability[row.name], "plots/stability", run_id=run_id)
