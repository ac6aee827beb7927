"""A selector comparison in MLflow: the parent run (the flow run) and one finished child run per selector.

Parent: the config as params, per-selector and baseline metrics, the leaderboard files and charts,
previews and stability plots. Child (per selector): type and config as params, the measures and
stability as metrics, ``selection.json``, its preview and stability plot; for a trained learnable
selector also its training curves, one step per epoch (``loss``, ``val_loss``, the validation metrics,
``temperature``) and the kept epoch (``best_epoch``). Runs are addressed by id (callers may run in worker
threads, where MLflow's active run is not visible).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

from bandselect.evaluation.leaderboard import Leaderboard, LeaderboardRow
from bandselect.reports.comparison import ComparisonFigures
from bandselect.tracking import runs
from bandselect.tracking.flow_run import history_rows
from bandselect.tracking.liveness import TAG_PROCESS, process_tag
from bandselect.training.learnable import SELECTOR_NODE

__all__ = [
    "TAG_NOT_APPLICABLE",
    "TAG_ROLE",
    "TAG_SELECTOR_TYPE",
    "TAG_STATUS",
    "TAG_UNSTABLE",
    "TAG_UNSTABLE_SELECTORS",
    "log_comparison",
]

TAG_STATUS = "bandselect.status"
TAG_UNSTABLE = "bandselect.stability.unstable"
TAG_UNSTABLE_SELECTORS = "bandselect.unstable_selectors"
TAG_NOT_APPLICABLE = "bandselect.not_applicable_selectors"
TAG_SELECTOR_TYPE = "bandselect.selector_type"
TAG_ROLE = "bandselect.role"
TAG_BEST_SELECTOR = "bandselect.best_selector"
_MLFLOW_PARENT_TAG = "mlflow.parentRunId"


def log_comparison(
    leaderboard: Leaderboard,
    figures: ComparisonFigures,
    parent_run_id: str,
    config: Mapping[str, Any],
) -> dict[str, str]:
    """Log the comparison to the open parent run and create one finished child run per leaderboard row.

    Every selector *and* every baseline (all bands, random ``k``) is a child run carrying the measures
    under the same metric names (``rx_auroc``, ``logistic_auroc``, ...), so MLflow's compare view charts
    them side by side and a search over the parent's children ranks them by one metric. Parent:
    ``config`` as params, the best row's measures as ``best/<measure>`` (and its name as a tag), the
    leaderboard JSON/CSV and charts, the previews side by side, the stability plots, tags listing the
    unstable and the not-applicable selectors. Selector child: type and config as params, the measures
    and stability as metrics, ``selection.json``, its RGB preview and stability plot, the training curves
    of a trained selector. Baseline child: its kind (and ``k``) as params, the measures and their
    standard deviations over the random draws (``<measure>_std``).

    Returns
    -------
    dict of str to str
        Row name (selector or baseline) → child run id.
    """
    client = MlflowClient()
    parent = client.get_run(parent_run_id)
    runs.log_params_flat(config, run_id=parent_run_id)
    timestamp = int(time.time() * 1000)
    scored = [row for row in leaderboard.selector_rows if row.applicable]
    best = scored[0] if scored else None  # the rows are ranked best first
    parent_metrics = (
        [] if best is None else [Metric(f"best/{m}", float(v), timestamp, 0) for m, v in best.scores.items()]
    )
    unstable = [
        row.name for row in leaderboard.selector_rows if row.stability is not None and row.stability.unstable
    ]
    not_applicable = [row.name for row in leaderboard.selector_rows if not row.applicable]
    # The run's description in the MLflow UI: the winner first (a collapsed description shows a few
    # lines), then the whole ranking.
    lead = "No selector applies to this scene."
    if best is not None:
        measured = ", ".join(f"{measure} {value:.4f}" for measure, value in best.scores.items())
        bands = ", ".join(f"{w:.0f}" for w in best.wavelengths_nm)
        lead = f"**Best** {best.name}: {measured}" + (f"; bands {bands} nm" if bands else "")
    description = f"{lead}\n\n{leaderboard.to_markdown()}\n"
    client.log_batch(
        parent_run_id,
        metrics=parent_metrics,
        tags=[
            RunTag(MLFLOW_RUN_NOTE, runs.fit_description(description, "leaderboard.csv")),
            RunTag(TAG_ROLE, "comparison"),
            RunTag(TAG_UNSTABLE_SELECTORS, json.dumps(unstable)),
            RunTag(TAG_NOT_APPLICABLE, json.dumps(not_applicable)),
            *([] if best is None else [RunTag(TAG_BEST_SELECTOR, best.name)]),
        ],
    )
    runs.log_file(figures.leaderboard_json, run_id=parent_run_id)
    runs.log_file(figures.leaderboard_csv, run_id=parent_run_id)
    for path in figures.leaderboard.values():
        runs.log_file(path, "plots", run_id=parent_run_id)
    if figures.rgb_previews is not None:
        runs.log_file(figures.rgb_previews, "plots", run_id=parent_run_id)
    for path in figures.stability.values():
        runs.log_file(path, "plots/stability", run_id=parent_run_id)

    inherited = {
        key: value
        for key, value in parent.data.tags.items()
        if key.startswith("prefect.") or key == runs.TAG_CAMPAIGN
    }
    children: dict[str, str] = {}
    for row in leaderboard.rows:
        selector = row.kind == "selector"
        tags = {**inherited, _MLFLOW_PARENT_TAG: parent_run_id, TAG_STATUS: row.status}
        tags[TAG_SELECTOR_TYPE] = str(row.selector_type) if selector else row.kind
        tags[TAG_ROLE] = "selector" if selector else "baseline"
        tags[TAG_PROCESS] = process_tag()  # a child left RUNNING by a killed process is ended later
        child = client.create_run(parent.info.experiment_id, run_name=row.name, tags=tags)
        child_id = child.info.run_id
        try:
            if selector:
                runs.log_params_flat(
                    {"selector": {"type": row.selector_type, "config": dict(row.config)}}, run_id=child_id
                )
                if row.applicable:
                    _log_child_results(client, child_id, row, leaderboard, figures)
            else:
                _log_baseline(client, child_id, row)
        except BaseException:
            client.set_terminated(child_id, "FAILED")
            raise
        client.set_terminated(child_id, "FINISHED")
        children[row.name] = child_id
    return children


def _log_baseline(client: Any, run_id: str, row: LeaderboardRow) -> None:
    timestamp = int(time.time() * 1000)
    metrics = [Metric(m, float(v), timestamp, 0) for m, v in row.scores.items()]
    metrics += [Metric(f"{m}_std", float(v), timestamp, 0) for m, v in row.scores_std.items()]
    client.log_batch(run_id, metrics=metrics, params=[Param("baseline.kind", row.kind)])


def _log_child_results(
    client: Any, run_id: str, row: LeaderboardRow, leaderboard: Leaderboard, figures: ComparisonFigures
) -> None:
    timestamp = int(time.time() * 1000)
    metrics = [Metric(measure, float(value), timestamp, 0) for measure, value in row.scores.items()]
    tags = []
    if row.stability is not None:
        metrics.append(Metric("stability/index", float(row.stability.score), timestamp, 0))
        metrics.append(Metric("stability/unstable", float(row.stability.unstable), timestamp, 0))
        tags.append(RunTag(TAG_UNSTABLE, json.dumps(bool(row.stability.unstable))))
    if row.best_epoch is not None:
        metrics.append(Metric("best_epoch", float(row.best_epoch), timestamp, 0))
    client.log_batch(run_id, metrics=metrics, tags=tags)
    if row.trained:
        # The curves, without the per-band weights (hundreds of metrics per epoch; selection.json and
        # the leaderboard hold the bands kept).
        curves = [
            {k: v for k, v in r.items() if k != "weights"} for r in history_rows(row.history, SELECTOR_NODE)
        ]
        runs.log_history(curves, run_id=run_id)
    extra: dict[str, Any] = {
        "selector": row.name,
        "selector_type": row.selector_type,
        "rgb_indices": list(row.rgb_indices),
        "rgb_wavelengths_nm": [float(leaderboard.wavelengths_nm[i]) for i in row.rgb_indices],
        "scores": dict(row.scores),
        "trained": row.trained,
        "best_epoch": row.best_epoch,
    }
    if row.stability is not None:
        extra["stability"] = {
            "index": row.stability.score,
            "unstable": row.stability.unstable,
            "reason": row.stability.reason,
            "frequency": row.stability.frequency,
        }
    runs.log_selection(list(row.indices), list(row.wavelengths_nm), extra=extra, run_id=run_id)
    if row.name in figures.selector_previews:
        runs.log_file(figures.selector_previews[row.name], "plots", run_id=run_id)
    if row.name in figures.stability:
        runs.log_file(figures.stability[row.name], "plots/stability", run_id=run_id)
