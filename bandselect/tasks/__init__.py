"""Prefect tasks: thin, typed wrappers over one library call each (each body testable with ``task.fn``).

Tasks pass store paths and small results (ids, summaries, selections, histories), never cubes.
"""

from __future__ import annotations

from bandselect.tasks.compare import (
    compare_task,
    log_comparison_task,
    publish_table_task,
    render_comparison_task,
)
from bandselect.tasks.export import batches, export_composites, export_products
from bandselect.tasks.ingest import ingest_archive
from bandselect.tasks.selection import initialise_selectors, selection_of, train_selectors
from bandselect.tasks.statistics import update_statistics
from bandselect.tasks.tracking import draw_plots, log_flow_run

__all__ = [
    "batches",
    "compare_task",
    "draw_plots",
    "export_composites",
    "export_products",
    "ingest_archive",
    "initialise_selectors",
    "log_comparison_task",
    "log_flow_run",
    "publish_table_task",
    "render_comparison_task",
    "selection_of",
    "train_selectors",
    "update_statistics",
]
