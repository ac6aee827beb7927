"""Tasks: initialise a pipeline from the campaign statistics, train it, report its selection.

Thin wrappers over :mod:`bandselect.training.campaign`, which saves each step's pipeline under a content
key: an existing folder *is* the finished work, so a re-run loads it instead of recomputing (no Prefect
result cache is needed on top).
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from bandselect.progress import EPOCH_STEP, band_labels
from bandselect.selection import BandSelection
from bandselect.store.campaign import open_campaign
from bandselect.tasks._logging import run_logger
from bandselect.tasks._retry import retry_transient
from bandselect.tasks.progress import prefect_progress
from bandselect.training.campaign import (
    SavedPipeline,
    TrainedPipeline,
    initialise_on_campaign,
    saved_selection,
    train_on_campaign,
)
from bandselect.training.config import TrainingConfig

__all__ = ["initialise_selectors", "selection_of", "train_selectors"]


@task(
    name="initialise-selectors",
    retries=1,
    retry_delay_seconds=2,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def initialise_selectors(
    store: str,
    pipeline_config: dict[str, Any],
    work_dir: str,
    acquisition_ids: list[str],
    selector: str | None = None,
    positive_label: int | None = None,
    n_bins: int = 0,
    ignore_label: int | None = None,
) -> SavedPipeline:
    """Build the pipeline and initialise it from the campaign statistics (a learnable one: left to its
    training, :func:`initialise_on_campaign`)."""
    saved = initialise_on_campaign(
        store,
        pipeline_config,
        work_dir,
        acquisition_ids,
        selector=selector,
        positive_label=positive_label,
        n_bins=n_bins,
        ignore_label=ignore_label,
    )
    initialised = list(saved.initialised)
    if saved.learnable:
        what = "a learnable pipeline: its statistical start is made on the training rows, in training"
    elif initialised:
        what = f"initialised from the campaign statistics: {', '.join(initialised)}"
    else:
        what = "no node needs the campaign statistics"
    run_logger(__name__).info(
        "%s; selector %s (%s)%s",
        what,
        saved.selector,
        saved.selector_type,
        ", trained next" if saved.learnable else "",
    )
    return saved


@task(name="train-selectors", cache_policy=NO_CACHE)
def train_selectors(
    store: str,
    saved: SavedPipeline,
    work_dir: str,
    acquisition_ids: list[str],
    training: TrainingConfig,
    campaign: str = "campaign",
    positive_label: int | None = None,
    ignore_label: int | None = None,
) -> TrainedPipeline:
    """The two-phase recipe on the store (:func:`train_on_campaign`): phase 1 on the training rows, then
    the gradient phase; one log line
    per epoch (top bands by wavelength) and a progress artifact ``<campaign>-training-progress``."""
    with prefect_progress(campaign, "training", EPOCH_STEP), band_labels(open_campaign(store).wavelengths):
        trained = train_on_campaign(
            store,
            saved,
            work_dir,
            acquisition_ids,
            training,
            positive_label=positive_label,
            ignore_label=ignore_label,
        )
    last = trained.history[-1] if trained.history else None
    moves = ", ".join(f"{old} → {new}" for old, new in trained.refine_moves)
    start = (
        "from the uniform start"
        if trained.start_bands is None
        else f"from bands {list(trained.start_bands)} (the training rows' statistics)"
    )
    run_logger(__name__).info(
        "trained %d epochs %s; kept epoch %s (1-based, as the plots); last loss %s; %s",
        len(trained.history),
        start,
        "the last" if trained.best_epoch is None else trained.best_epoch + 1,
        None if last is None else f"{last.loss:.4g}",
        f"the search on the validation rows moved bands {moves}" if moves else "the search moved no band",
    )
    return trained


@task(name="describe-selection", cache_policy=NO_CACHE)
def selection_of(store: str, saved: SavedPipeline) -> BandSelection:
    """The selector's bands on the campaign's grid (:func:`saved_selection`)."""
    selection = saved_selection(store, saved)
    run_logger(__name__).info(
        "selected bands %s (%s nm); output order %s",
        list(selection.indices),
        ", ".join(f"{w:.1f}" for w in selection.wavelengths_nm),
        list(selection.output_indices),
    )
    return selection
