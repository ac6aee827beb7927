"""Task: update the stored campaign statistics (:func:`bandselect.stats.update_campaign_statistics`)."""

from __future__ import annotations

import os

from prefect import task
from prefect.cache_policies import NO_CACHE

from bandselect.stats import StatisticsSummary, statistics_without, update_campaign_statistics
from bandselect.store import open_campaign
from bandselect.tasks._logging import run_logger
from bandselect.tasks._retry import retry_transient

__all__ = [
    "DASK_ADDRESS_ENV",
    "DEVICE_ENV",
    "resolve_scheduler_address",
    "resolve_statistics_device",
    "update_statistics",
]

DASK_ADDRESS_ENV = "BANDSELECT_DASK_ADDRESS"
DEVICE_ENV = "BANDSELECT_STATISTICS_DEVICE"


def resolve_scheduler_address(configured: str | None) -> str | None:
    """The Dask scheduler to use: the config's, else ``$BANDSELECT_DASK_ADDRESS``, else in-process."""
    return configured or os.environ.get(DASK_ADDRESS_ENV) or None


def resolve_statistics_device(configured: str | None) -> str | None:
    """The statistics device: the config's, else ``$BANDSELECT_STATISTICS_DEVICE`` (the GPU compose
    override sets ``auto``), else None (NumPy)."""
    return configured or os.environ.get(DEVICE_ENV) or None


@task(
    name="update-statistics",
    retries=1,
    retry_delay_seconds=2,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def update_statistics(
    store: str,
    n_bins: int,
    nan_policy: str = "raise",
    scheduler_address: str | None = None,
    contrast: bool = False,
    device: str | None = None,
    ignore_label: int | None = None,
) -> StatisticsSummary:
    """Update ``<store>/.bandselect_stats`` incrementally (an unchanged campaign reads no pixel).

    With ``ignore_label``, the histograms of the pixels that count are made here too, on this
    scheduler and device, when their edges differ from the stored ones
    (:func:`~bandselect.stats.statistics_without`; kept in the sidecar, so the selection and the plots
    read them): in the same read as the statistics when ingest recorded per-class ranges.
    """
    address = resolve_scheduler_address(scheduler_address)
    device = resolve_statistics_device(device)
    campaign = open_campaign(store)
    result = update_campaign_statistics(
        campaign,
        n_bins=n_bins,
        nan_policy=nan_policy,  # type: ignore[arg-type]
        scheduler_address=address,
        contrast=contrast,
        device=device,
        ignore_label=ignore_label,
    )
    if ignore_label is not None:
        statistics_without(
            campaign, result, ignore_label, contrast=contrast, scheduler_address=address, device=device
        )
    summary = StatisticsSummary.of(result, store, address or "in-process")
    run_logger(__name__).info(
        "statistics of %d acquisition(s) (%d read now) on %s (device %s); classes %s%s",
        len(summary.acquisition_ids),
        len(summary.computed_ids),
        summary.scheduler,
        device or "numpy",
        list(summary.classes),
        f"; {summary.n_invalid} pixels without data (valid False) left out" if summary.n_invalid else "",
    )
    return summary
