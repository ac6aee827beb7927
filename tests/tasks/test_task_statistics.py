"""update_statistics.fn: the summary describes the stored statistics; an unchanged campaign reads nothing."""

from __future__ import annotations

from bandselect.stats import load_campaign_statistics
from bandselect.store import Campaign
from bandselect.tasks import update_statistics


def test_update_statistics_summarises_and_caches(campaign: Campaign) -> None:
    summary = update_statistics.fn(str(campaign.path), 64, contrast=True)
    stored = load_campaign_statistics(campaign)
    assert stored is not None and stored.stats.has_contrast
    assert summary.acquisition_ids == tuple(campaign.ids()) and summary.classes == (0, 1)
    assert summary.count == 2 * 40 * 48 == sum(summary.class_counts)
    assert summary.scheduler == "in-process" and summary.contrast
    assert update_statistics.fn(str(campaign.path), 64, contrast=True).computed_ids == ()
