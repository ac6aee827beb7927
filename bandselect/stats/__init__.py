"""Dataset-wide, mergeable band statistics, per-band scores and band selection from them.

``BandStatistics`` is the one partial/merge type used by streamed batches, Dask over a campaign store and
incremental campaign updates; scores and selections are derived from merged statistics, never from pixels:
supervised (``mrmr_select``, ``separability_select``; binary or multi-class, see ``class_view``) and
unsupervised (``orthogonal_projection_select``, ``correlation_cluster_select``).

The Dask side (:func:`compute_statistics`, the campaign sidecar) is imported on first use: a notebook's
``fit()`` (:func:`statistics_of`) needs neither Dask nor xarray, and importing them costs more than the
statistics of a 0.25 M-pixel cube.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bandselect._lazy import lazy_attributes
from bandselect.stats.binning import DEFAULT_N_BINS, data_edges, histogram_edges
from bandselect.stats.classes import class_view, two_class_statistics, without_classes
from bandselect.stats.memory import histograms_from_arrays, merge_histograms, statistics_of
from bandselect.stats.partial import BandStatistics
from bandselect.stats.relevance import relevance_scores
from bandselect.stats.selection import ScoredSubset, mrmr_select, separability_select
from bandselect.stats.unsupervised import correlation_cluster_select, orthogonal_projection_select

if TYPE_CHECKING:
    from bandselect.stats.compute import compute_histograms, compute_statistics
    from bandselect.stats.incremental import (
        CampaignStatistics,
        StatisticsSummary,
        load_campaign_statistics,
        statistics_without,
        update_campaign_statistics,
    )

#: Names imported on first use, by module.
_LAZY = {
    "compute_histograms": "bandselect.stats.compute",
    "compute_statistics": "bandselect.stats.compute",
    "CampaignStatistics": "bandselect.stats.incremental",
    "StatisticsSummary": "bandselect.stats.incremental",
    "load_campaign_statistics": "bandselect.stats.incremental",
    "statistics_without": "bandselect.stats.incremental",
    "update_campaign_statistics": "bandselect.stats.incremental",
}

__all__ = [
    "DEFAULT_N_BINS",
    "BandStatistics",
    "CampaignStatistics",
    "ScoredSubset",
    "StatisticsSummary",
    "class_view",
    "compute_histograms",
    "compute_statistics",
    "correlation_cluster_select",
    "data_edges",
    "histogram_edges",
    "histograms_from_arrays",
    "load_campaign_statistics",
    "merge_histograms",
    "mrmr_select",
    "orthogonal_projection_select",
    "relevance_scores",
    "separability_select",
    "statistics_of",
    "statistics_without",
    "two_class_statistics",
    "update_campaign_statistics",
    "without_classes",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
