"""Prefect tasks of the ``compare_selectors`` flow: compare, render, log to MLflow, publish the table.

Thin wrappers over :func:`bandselect.evaluation.compare.compare_selections`,
:func:`bandselect.reports.comparison.render_comparison` and
:func:`bandselect.tracking.comparison.log_comparison`; each is callable without Prefect through
``.fn(...)``. Tasks receive paths and small results (configs, the leaderboard), never the cube: the
compare and render tasks load the scene themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from bandselect.evaluation.compare import MEASURE_LABELS, Leaderboard, SplitSettings, StabilitySettings
from bandselect.evaluation.compare_classes import compare_scene
from bandselect.evaluation.leaderboard import merge_leaderboards
from bandselect.evaluation.scene import load_labelled_scene
from bandselect.progress import band_labels
from bandselect.reports.comparison import ComparisonFigures, render_comparison
from bandselect.tracking.comparison import log_comparison

__all__ = [
    "compare_task",
    "log_comparison_task",
    "merge_leaderboards_task",
    "publish_table_task",
    "render_comparison_task",
]

_KEY_PATTERN = re.compile(r"[^a-z0-9-]+")


@task(name="compare-selections", cache_policy=NO_CACHE)
def compare_task(
    scene: Mapping[str, Any],
    selectors: Mapping[str, Mapping[str, Any]],
    *,
    classifier: str = "logistic",
    split: SplitSettings | None = None,
    stability: StabilitySettings | None = None,
    measures: Sequence[str] | None = None,
    n_random_draws: int = 20,
    folds: int = 5,
    seed: int = 0,
    baselines: bool = True,
    random_ks: Sequence[int] = (),
) -> Leaderboard:
    """Load the scene and compare the selectors on it
    (:func:`~bandselect.evaluation.compare_classes.compare_scene`: binary or multi-class; one log line
    per selector, per training epoch of a learnable one). The flow maps it: one selector per task
    (``baselines=False``), then one task for the baselines (no selector, ``random_ks``). ``scene``:
    the arguments of :func:`~bandselect.evaluation.scene.load_labelled_scene` (the flow's ``scene:``)."""
    labelled = load_labelled_scene(**scene)
    with band_labels(labelled.wavelengths_nm):
        return compare_scene(
            labelled,
            selectors,
            measures=measures,
            classifier=classifier,
            split=split,
            stability=stability,
            n_random_draws=n_random_draws,
            folds=folds,
            seed=seed,
            baselines=baselines,
            random_ks=tuple(random_ks),
        )


@task(name="merge-leaderboard", cache_policy=NO_CACHE)
def merge_leaderboards_task(parts: Sequence[Leaderboard]) -> Leaderboard:
    """The mapped parts as one leaderboard (:func:`~bandselect.evaluation.leaderboard.merge_leaderboards`)."""
    return merge_leaderboards(parts)


@task(name="render-comparison", cache_policy=NO_CACHE)
def render_comparison_task(
    leaderboard: Leaderboard,
    scene: Mapping[str, Any],
    output_dir: str,
    *,
    title: str = "Selector comparison",
) -> ComparisonFigures:
    """Write the leaderboard files, charts, previews and stability plots (:func:`render_comparison`) of
    the scene that ``scene`` loads (the arguments of ``load_labelled_scene``, as :func:`compare_task`)."""
    return render_comparison(leaderboard, load_labelled_scene(**scene), output_dir, title=title)


@task(name="log-comparison", cache_policy=NO_CACHE)
def log_comparison_task(
    leaderboard: Leaderboard, figures: ComparisonFigures, parent_run_id: str, config: Mapping[str, Any]
) -> dict[str, str]:
    """Log the comparison to its parent MLflow run with one child per selector (:func:`log_comparison`)."""
    return log_comparison(leaderboard, figures, parent_run_id, config)


def table_artifact_key(campaign: str) -> str:
    """Prefect artifact key of a campaign's leaderboard (lowercase letters, digits and dashes)."""
    slug = _KEY_PATTERN.sub("-", campaign.lower()).strip("-")[:60].strip("-")
    return f"leaderboard-{slug or 'scene'}"


@task(name="publish-leaderboard-table", cache_policy=NO_CACHE)
def publish_table_task(leaderboard: Leaderboard, campaign: str, parent_run_id: str | None = None) -> str:
    """Publish the leaderboard as a Prefect table artifact; returns its key."""
    columns, table = leaderboard.display_table()
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
