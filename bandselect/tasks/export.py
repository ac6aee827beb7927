"""Task: export the RGB composites of a batch of acquisitions (atomic, idempotent per acquisition).

Acquisitions are exported in batches (one task run per batch, not per acquisition) so that Prefect's
per-task-run overhead stays a small fraction of a run over many small acquisitions. Within a batch each
acquisition is published atomically by :func:`bandselect.export.export_composite`, which skips those
already published with the same config hash: that, not the Prefect cache, is what makes a re-run after a
crash redo only the unfinished acquisitions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from bandselect.export import CompositeSpec, export_composite
from bandselect.store import open_campaign
from bandselect.tasks._logging import run_logger

__all__ = ["ExportRecord", "batches", "export_batch", "export_composites", "status_counts"]


class ExportRecord(BaseModel):
    """One acquisition's export outcome (see :class:`bandselect.export.ExportResult`)."""

    acquisition_id: str
    status: str
    config_hash: str
    preview: str | None
    seconds: float


def batches(ids: Sequence[str], size: int) -> list[list[str]]:
    """``ids`` cut into consecutive batches of at most ``size``."""
    step = max(1, int(size))
    return [list(ids[i : i + step]) for i in range(0, len(ids), step)]


def status_counts(records: Iterable[ExportRecord]) -> dict[str, int]:
    """How many records have each status (``published``, ``replaced``, ``skipped``)."""
    return dict(Counter(record.status for record in records))


def export_batch(
    store: str,
    acquisition_ids: Sequence[str],
    output: str,
    spec: CompositeSpec,
    preview_dir: str | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    attrs: dict[str, Any] | None = None,
) -> list[ExportRecord]:
    """Export the composites of ``acquisition_ids`` one after the other; return one record each."""
    campaign = open_campaign(store)
    records = []
    for acquisition_id in acquisition_ids:
        result = export_composite(
            campaign,
            acquisition_id,
            output,
            spec,
            preview_dir=preview_dir,
            percentiles=percentiles,
            attrs=attrs,
        )
        records.append(ExportRecord(**result.__dict__))
    return records


@task(name="export-composites", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def export_composites(
    store: str,
    acquisition_ids: list[str],
    output: str,
    spec: CompositeSpec,
    preview_dir: str | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    attrs: dict[str, Any] | None = None,
) -> list[ExportRecord]:
    """Prefect task over :func:`export_batch` (retried: I/O errors on shared storage are transient)."""
    records = export_batch(store, acquisition_ids, output, spec, preview_dir, percentiles, attrs)
    run_logger(__name__).info("exported %d acquisitions: %s", len(records), status_counts(records))
    return records
