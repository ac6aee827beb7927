"""Task: bring a campaign's stored statistics up to date (Dask; only new acquisitions are read)."""

from __future__ import annotations

import os

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from bandselect.stats import update_campaign_statistics
from bandselect.store import open_campaign
from bandselect.tasks._logging import run_logger

__all__ = ["DASK_ADDRESS_ENV", "StatisticsSummary", "resolve_scheduler_address", "update_statistics"]

DASK_ADDRESS_ENV = "BANDSELECT_DASK_ADDRESS"


class StatisticsSummary(BaseModel):
    """Small description of the stored statistics (the statistics themselves stay in the store)."""

    store: str
    acquisition_ids: list[str]
    computed_ids: list[str]
    n_bins: int
    classes: list[int]
    class_counts: list[int]
    count: int
    histograms_rebuilt: bool
    scheduler: str


def resolve_scheduler_address(configured: str | None) -> str | None:
    """The Dask scheduler to use: the config's, else ``$BANDSELECT_DASK_ADDRESS``, else in-process."""
    if configured:
        return configured
    return os.environ.get(DASK_ADDRESS_ENV) or None


@task(name="update-statistics", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def update_statistics(
    store: str,
    n_bins: int,
    nan_policy: str = "raise",
    scheduler_address: str | None = None,
) -> StatisticsSummary:
    """Update ``<store>/.bandselect_stats`` incrementally; return a summary (ids covered, classes).

    The stored statistics are the cache: an unchanged campaign reads no pixel, a grown one reads only the
    new acquisitions (see :func:`bandselect.stats.update_campaign_statistics`).
    """
    address = resolve_scheduler_address(scheduler_address)
    campaign = open_campaign(store)
    result = update_campaign_statistics(
        campaign,
        n_bins=n_bins,
        nan_policy=nan_policy,
        scheduler_address=address,  # type: ignore[arg-type]
    )
    stats = result.stats
    summary = StatisticsSummary(
        store=str(store),
        acquisition_ids=list(result.acquisition_ids),
        computed_ids=list(result.computed_ids),
        n_bins=result.n_bins,
        classes=[int(c) for c in stats.classes],
        class_counts=[int(stats.class_count(int(c))) for c in stats.classes],
        count=int(stats.count),
        histograms_rebuilt=result.histograms_rebuilt,
        scheduler=address or "in-process",
    )
    run_logger(__name__).info(
        "statistics of %d acquisitions (%d read now) on %s; classes %s",
        len(summary.acquisition_ids),
        len(summary.computed_ids),
        summary.scheduler,
        summary.classes,
    )
    return summary
