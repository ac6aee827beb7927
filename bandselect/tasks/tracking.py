"""Tasks: draw a flow run's figures (:func:`bandselect.reports.figures.flow_figures`) and log the run to
MLflow (:func:`bandselect.tracking.flow_run.log_flow_run`).

The MLflow run itself is opened by the flow (one run per flow run, tagged with the Prefect flow-run id);
these tasks run in worker threads and log with an explicit ``run_id``. Logging is retried: a tracking
server restarting is a plausible transient failure.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from bandselect.reports.figures import composite_preview, flow_figures
from bandselect.selection import BandSelection
from bandselect.stats import load_campaign_statistics, statistics_without
from bandselect.store import open_campaign
from bandselect.tasks._retry import retry_transient
from bandselect.tracking.flow_run import SELECTED_TEST_AUROC, SELECTED_VAL_AUROC
from bandselect.tracking.flow_run import log_flow_run as log_run
from bandselect.training.campaign import TrainedPipeline

__all__ = ["draw_plots", "log_flow_run"]


@task(name="draw-plots", cache_policy=NO_CACHE)
def draw_plots(
    plots_dir: str,
    store: str,
    selection: BandSelection,
    selector: str,
    trained: TrainedPipeline | None,
    output: str,
    acquisition_ids: list[str],
    positive_label: int | None = None,
    ignore_label: int | None = None,
) -> list[str]:
    """Band scores (without the ``ignore_label`` class), training figures and composite previews (PNGs)."""
    campaign = open_campaign(store)
    stored = load_campaign_statistics(campaign)
    statistics = None if stored is None else stored.stats
    if stored is not None and ignore_label is not None:
        statistics = statistics_without(campaign, stored, ignore_label)  # the selection's own bins
    figures = flow_figures(
        plots_dir,
        selection,
        selector=selector,
        history=() if trained is None else trained.history,
        temperature_min=None if trained is None else trained.temperature_min,
        statistics=statistics,
        positive_label=positive_label,
        previews={i: composite_preview(output, i) for i in acquisition_ids[:4]},
        n_acquisitions=len(acquisition_ids),
        trained_bands=None if trained is None else trained.trained_bands,
    )
    return [str(path) for path in figures]


@task(
    name="log-to-mlflow",
    retries=3,
    retry_delay_seconds=[1, 5, 15],
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def log_flow_run(
    run_id: str,
    config: dict[str, Any],
    selection: BandSelection,
    selector: str,
    pipeline_dir: str,
    trained: TrainedPipeline | None,
    summary: dict[str, Any],
    extra_selection: dict[str, Any],
    plots: list[str],
    previews: list[str],
    campaign: tuple[str, str, list[str]] | None = None,
    model_product: str = "composite",
    registered_model: str | None = None,
    description: str | None = None,
) -> str:
    """Log everything that describes (and reproduces) the flow run into its MLflow run; the model URI.

    ``description``: the run's description in the MLflow UI (markdown), e.g. the flow's summary."""
    example = None
    if campaign is not None:  # a small crop of the first acquisition, stored with the model
        dataset = open_campaign(campaign[1]).open(campaign[2][0])
        example = dataset["cube"].isel(y=slice(0, 8), x=slice(0, 8)).values
    return log_run(
        run_id,
        config,
        selection,
        selector=selector,
        pipeline_dir=pipeline_dir,
        history=() if trained is None else trained.history,
        summary=summary,
        extra_selection=extra_selection,
        plots=plots,
        previews=previews,
        campaign=campaign,
        model_product=model_product,
        registered_model=registered_model,
        input_example=example,
        description=description,
        metrics={}
        if trained is None
        else {SELECTED_VAL_AUROC: trained.val_auroc, SELECTED_TEST_AUROC: trained.test_auroc},
    )
