"""Tasks: export the products of a batch of acquisitions (:func:`bandselect.products.export_products`).

Acquisitions are exported in batches (one task run per batch, not per acquisition) so that Prefect's
per-task-run overhead stays a small fraction of a run over many small acquisitions. Each acquisition is
published atomically and skipped when already published with the same config hash: that, not the Prefect
cache, is what makes a re-run after a crash redo only the unfinished acquisitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from bandselect.export import ExportResult, status_counts
from bandselect.products import ProductPlan
from bandselect.products import export_products as export_all_products
from bandselect.products.batch import retire_products
from bandselect.selection import BandSelection
from bandselect.tasks._logging import run_logger
from bandselect.tasks._retry import retry_transient

__all__ = ["batches", "export_products", "retire_replaced_products"]


def batches(ids: Sequence[str], size: int) -> list[list[str]]:
    """``ids`` cut into consecutive batches of at most ``size``."""
    step = max(1, int(size))
    return [list(ids[i : i + step]) for i in range(0, len(ids), step)]


@task(
    name="export-products",
    retries=2,
    retry_delay_seconds=1,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def export_products(
    store: str,
    acquisition_ids: list[str],
    selection: BandSelection,
    plan: ProductPlan,
    preview_dir: str | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    attrs: dict[str, Any] | None = None,
) -> list[ExportResult]:
    """Export every product of ``plan`` (zarr, GeoTIFF) for ``acquisition_ids`` (retried: transient I/O)."""
    results = export_all_products(
        store,
        acquisition_ids,
        selection,
        plan,
        preview_dir=preview_dir,
        percentiles=percentiles,
        attrs=attrs,
    )
    run_logger(__name__).info(
        "exported %s of %d acquisitions: %s",
        "/".join(plan.kinds),
        len(acquisition_ids),
        status_counts(results),
    )
    return results


@task(name="retire-replaced-products", cache_policy=NO_CACHE)
def retire_replaced_products(
    plan: ProductPlan, acquisition_ids: list[str], previews_dir: str | None = None
) -> int:
    """Remove the products of acquisitions an archive run replaced (:func:`retire_products`)."""
    removed = retire_products(plan, acquisition_ids, previews_dir)
    run_logger(__name__).info(
        "removed %d product groups of %d replaced acquisitions: %s",
        removed,
        len(acquisition_ids),
        acquisition_ids,
    )
    return removed
