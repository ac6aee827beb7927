"""Prefect tasks: thin, typed wrappers over the library (each body is testable with ``task.fn(...)``).

Tasks pass store paths and small results (ids, summaries, histories), never cubes.
"""

from __future__ import annotations

from bandselect.tasks.compare import (
    compare_task,
    log_comparison_task,
    publish_table_task,
    render_comparison_task,
)
from bandselect.tasks.export import ExportRecord, export_composites
from bandselect.tasks.ingest import IngestReport, ingest_archive
from bandselect.tasks.selection import (
    PipelineState,
    SelectionSummary,
    TrainingOutcome,
    describe_selection,
    initialise_selectors,
    train_selectors,
)
from bandselect.tasks.statistics import StatisticsSummary, update_statistics
from bandselect.tasks.tracking import draw_plots, log_flow_run

__all__ = [
    "ExportRecord",
    "IngestReport",
    "PipelineState",
    "SelectionSummary",
    "StatisticsSummary",
    "TrainingOutcome",
    "compare_task",
    "describe_selection",
    "draw_plots",
    "export_composites",
    "ingest_archive",
    "initialise_selectors",
    "log_comparison_task",
    "log_flow_run",
    "publish_table_task",
    "render_comparison_task",
    "train_selectors",
    "update_statistics",
]
