"""Prefect tasks: thin, typed wrappers over one library call each (each body testable with ``task.fn``).

Tasks pass store paths and small results (ids, summaries, selections, histories), never cubes. The names
below are imported on first use: a flow loads the task modules it calls, not the others' libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bandselect._lazy import lazy_attributes

if TYPE_CHECKING:
    from bandselect.tasks.compare import (
        compare_task,
        log_comparison_task,
        publish_table_task,
        render_comparison_task,
    )
    from bandselect.tasks.export import batches, export_products, retire_replaced_products
    from bandselect.tasks.ingest import ingest_archive
    from bandselect.tasks.selection import initialise_selectors, selection_of, train_selectors
    from bandselect.tasks.statistics import update_statistics
    from bandselect.tasks.tracking import draw_plots, log_flow_run

_LAZY = {
    "compare_task": "bandselect.tasks.compare",
    "log_comparison_task": "bandselect.tasks.compare",
    "publish_table_task": "bandselect.tasks.compare",
    "render_comparison_task": "bandselect.tasks.compare",
    "batches": "bandselect.tasks.export",
    "export_products": "bandselect.tasks.export",
    "retire_replaced_products": "bandselect.tasks.export",
    "ingest_archive": "bandselect.tasks.ingest",
    "initialise_selectors": "bandselect.tasks.selection",
    "selection_of": "bandselect.tasks.selection",
    "train_selectors": "bandselect.tasks.selection",
    "update_statistics": "bandselect.tasks.statistics",
    "draw_plots": "bandselect.tasks.tracking",
    "log_flow_run": "bandselect.tasks.tracking",
}

__all__ = [
    "batches",
    "compare_task",
    "draw_plots",
    "export_products",
    "ingest_archive",
    "initialise_selectors",
    "log_comparison_task",
    "log_flow_run",
    "publish_table_task",
    "render_comparison_task",
    "retire_replaced_products",
    "selection_of",
    "train_selectors",
    "update_statistics",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
