"""Dataset-wide, mergeable band statistics, per-band scores and supervised band selection.

``BandStatistics`` is the one partial/merge type used by streamed batches, Dask over a campaign store and
incremental campaign updates; scores and selections are derived from merged statistics, never from pixels.
"""

from __future__ import annotations

from bandselect.stats.binning import DEFAULT_N_BINS, data_edges, histogram_edges
from bandselect.stats.compute import (
    compute_histograms,
    compute_statistics,
    histograms_from_arrays,
    merge_histograms,
    statistics_of,
)
from bandselect.stats.incremental import (
    CampaignStatistics,
    StatisticsSummary,
    load_campaign_statistics,
    update_campaign_statistics,
)
from bandselect.stats.partial import BandStatistics
from bandselect.stats.selection import ScoredSubset, mrmr_select, separability_select

__all__ = [
    "DEFAULT_N_BINS",
    "BandStatistics",
    "CampaignStatistics",
    "ScoredSubset",
    "StatisticsSummary",
    "compute_histograms",
    "compute_statistics",
    "data_edges",
    "histogram_edges",
    "histograms_from_arrays",
    "load_campaign_statistics",
    "merge_histograms",
    "mrmr_select",
    "separability_select",
    "statistics_of",
    "update_campaign_statistics",
]
