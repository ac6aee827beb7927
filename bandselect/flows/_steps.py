"""The steps shared by ``select_bands`` and ``process_campaign``, called inside a flow run.

ingest (optional) → statistics → statistical initialisation → gradient training (learnable pipelines)
→ selection → export of every product of every acquisition (skipping those already published with the
same config hash) → plots → MLflow. The whole run holds the store and product locks. Products the
pipeline cannot feed (a composite from a selection of fewer than three bands) are refused before the
statistics (before the ingest too when the band grid is known: an existing store, or ``ingest.wavelengths``),
and again before anything is exported.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from bandselect import tracking
from bandselect.errors import StoreError
from bandselect.export import ExportResult, status_counts
from bandselect.pipeline import Pipeline
from bandselect.pipeline.config import resolve_pipeline_band_counts
from bandselect.products import check_products, open_product_stores, product_config_hash
from bandselect.reports.markdown import flow_run_markdown
from bandselect.selection import BandSelection
from bandselect.stats import StatisticsSummary
from bandselect.store import open_campaign
from bandselect.store.archive import IngestReport
from bandselect.store.locking import locked
from bandselect.tasks import (
    batches,
    draw_plots,
    export_products,
    ingest_archive,
    initialise_selectors,
    log_flow_run,
    retire_replaced_products,
    selection_of,
    train_selectors,
    update_statistics,
)
from bandselect.tasks._logging import run_logger
from bandselect.tasks.artifacts import publish_summary, tag_flow_run
from bandselect.tracking import flow_run_ui_url, mlflow_run_link
from bandselect.training.campaign import needs_contrast

from ._ephemeral import guard_ephemeral_server
from .config import FlowConfig
from .plan import plan_flow


class FlowSummary(BaseModel):
    """What a flow run did and where its results are."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    campaign: str
    store: str
    output: str
    plots_dir: str
    previews_dir: str | None
    plots: list[str]
    tracking_uri: str
    experiment: str
    mlflow_run_id: str
    #: The run's page in the MLflow UI ("Model training" view; a local store: where `mlflow ui` serves).
    mlflow_link: str | None = None
    flow_run_id: str | None
    acquisition_ids: list[str]
    selector: str
    selection: BandSelection
    config_hash: str
    exported: dict[str, int]
    products: dict[str, str] = {}
    config_hashes: dict[str, str] = {}
    exported_by_product: dict[str, dict[str, int]] = {}
    geotiff_dir: str | None = None
    ingest: IngestReport | None
    statistics: StatisticsSummary
    trained: bool
    #: The nodes initialised from statistics: the campaign's, or a trained pipeline's training rows'
    #: (none: e.g. a learnable selector's uniform start).
    initialised: list[str] = []
    #: The kept epoch's bands before the search after training (None: not trained).
    trained_bands: list[int] | None = None
    #: The selection's RX AUROC on the validation and test rows of training (None: not measured).
    val_auroc: float | None = None
    test_auroc: float | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-able content (``summary.json``): the selection as :meth:`BandSelection.to_dict`."""
        content = self.model_dump(mode="json", exclude={"selection", "statistics"})
        content["selection"] = self.selection.to_dict()
        content["statistics"] = asdict(self.statistics)
        return content


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    value = flow_run.get_id()
    return None if value is None else str(value)


def _statistics_needs(config: FlowConfig, n_bands: int) -> bool:
    """Whether a node of the pipeline asks for the spatial contrast terms (built once, before any work)."""
    return needs_contrast(
        Pipeline.from_config(resolve_pipeline_band_counts(config.pipeline_mapping(), n_bands))
    )


def _by_product(results: list[ExportResult]) -> dict[str, dict[str, int]]:
    kinds = dict.fromkeys(result.product for result in results)
    return {kind: status_counts([r for r in results if r.product == kind]) for kind in kinds}


def run_flow(config: FlowConfig, *, run_name_prefix: str) -> FlowSummary:
    """Run the shared steps for ``config`` (inside a Prefect flow run)."""
    guard_ephemeral_server()  # a killed run must not leave Prefect's temporary server behind
    store, output = str(config.store), str(config.output)
    work_dir = config.resolved_work_dir
    # Before any work and before anything is created: a configuration error fails here, in seconds.
    planned = plan_flow(config)
    run_logger(__name__).info(
        "plan: %d bands (%s); selector %s (%s)%s; products %s",
        planned.wavelengths_nm.size,
        planned.grid_source,
        planned.dry.selector,
        planned.dry.selector_type,
        ", trained" if planned.dry.learnable else "",
        list(planned.products.outputs),
    )
    plan = planned.products
    open_product_stores(plan)
    work_dir.mkdir(parents=True, exist_ok=True)
    with locked([config.store, *plan.outputs.values()], timeout_s=config.lock_timeout_s):
        ingest: IngestReport | None = None
        if config.archive is not None:
            ingest = ingest_archive(
                str(config.archive),
                store,
                config.ingest.wavelengths,
                config.ingest.mask_nonfinite,
                config.ingest.sort_bands,
                config.ingest.chunk,
                config.ingest.byte_order,
                config.ingest.allow_trailing_bytes,
                config.ingest.reader,
            )
            if ingest.replaced:
                # A changed file's old acquisition is gone: so must be the products made from it.
                retire_replaced_products(
                    plan,
                    [r.previous_id for r in ingest.replaced],
                    str(config.previews_dir) if config.export.previews else None,
                )
        if not Path(store).exists():
            raise StoreError(
                f"campaign store {store}",
                expected="an existing campaign store (or an archive to ingest from)",
                found="no such path",
                fix="set `archive:` to the folder of source cubes, or ingest first (bandselect ingest)",
            )
        campaign = open_campaign(store)
        ids = campaign.ids()
        if not ids:
            raise StoreError(
                f"campaign store {store}",
                expected="at least one acquisition",
                found="none" + (f"; {len(ingest.failures)} archive files failed" if ingest else ""),
                fix="add readable cubes to the archive (see the ingest report above)",
            )
        wavelengths = campaign.wavelengths
        statistics = update_statistics(
            store,
            config.statistics.n_bins,
            config.statistics.nan_policy,
            config.statistics.scheduler_address,
            _statistics_needs(config, len(wavelengths)),  # type: ignore[arg-type]
            config.statistics.device,
            config.ignore_label,
        )
        uri = config.tracking_uri()
        flow_run_id = _flow_run_id()
        with tracking.start_run(
            config.tracking.experiment,
            campaign=config.campaign,
            tracking_uri=uri,
            tags={"bandselect.flow": run_name_prefix, "bandselect.store": store, "bandselect.output": output},
        ) as run:
            run_id = run.info.run_id
            ids_covered = list(statistics.acquisition_ids)
            saved = initialise_selectors(
                store,
                config.pipeline_mapping(),
                str(work_dir),
                ids_covered,
                config.selector,
                config.positive_label,
                config.statistics.n_bins,
                config.ignore_label,
            )
            tag_flow_run(f"campaign:{config.campaign}", f"selector:{saved.selector_type}")
            trained = None
            if saved.learnable:
                trained = train_selectors(
                    store,
                    saved,
                    str(work_dir),
                    ids_covered,
                    config.training,
                    campaign=config.campaign,
                    positive_label=config.positive_label,
                    ignore_label=config.ignore_label,
                )
                saved = trained.saved
            selection = selection_of(store, saved)
            # Before any export task: a failing check publishes nothing.
            check_products(selection.k, plan.kinds, what=f"the {selection.selector_type} selection")
            config_hashes = {kind: product_config_hash(kind, selection) for kind in plan.kinds}
            config_hash = config_hashes[plan.kinds[0]]
            with_composite = "composite" in plan.outputs
            previews_dir = str(config.previews_dir) if config.export.previews and with_composite else None
            attrs: dict[str, Any] = {"campaign": config.campaign, "mlflow_run_id": run_id}
            if flow_run_id:
                attrs["prefect_flow_run_id"] = flow_run_id
            futures = [
                export_products.submit(
                    store, batch, selection, plan, previews_dir, config.export.percentiles, attrs
                )
                for batch in batches(ids, config.export.batch_size)
            ]
            results = [result for future in futures for result in future.result()]
            plots = draw_plots(
                str(config.plots_dir),
                store,
                selection,
                saved.selector,
                trained,
                plan.outputs.get("composite", output),
                ids if with_composite else [],
                config.positive_label,
                config.ignore_label,
            )
            summary = FlowSummary(
                campaign=config.campaign,
                store=store,
                output=output,
                plots_dir=str(config.plots_dir),
                previews_dir=previews_dir,
                plots=plots,
                tracking_uri=uri,
                experiment=config.tracking.experiment,
                mlflow_run_id=run_id,
                mlflow_link=mlflow_run_link(uri, run.info.experiment_id, run_id),
                flow_run_id=flow_run_id,
                acquisition_ids=ids,
                selector=saved.selector,
                selection=selection,
                config_hash=config_hash,
                exported=status_counts(results),
                products=dict(plan.outputs),
                config_hashes=config_hashes,
                exported_by_product=_by_product(results),
                geotiff_dir=plan.geotiff_dir,
                ingest=ingest,
                statistics=statistics,
                trained=trained is not None,
                initialised=list(saved.initialised),
                trained_bands=None
                if trained is None or trained.trained_bands is None
                else list(trained.trained_bands),
                val_auroc=None if trained is None else trained.val_auroc,
                test_auroc=None if trained is None else trained.test_auroc,
            )
            # One account of the run in both UIs: the Prefect artifact links the MLflow run, the MLflow
            # run's description the Prefect flow run.
            described: dict[str, Any] = {
                "campaign": config.campaign,
                "flow": run_name_prefix,
                "selector": saved.selector,
                "selection": selection,
                "trained": trained is not None,
                "initialised": saved.selector in saved.initialised,  # the selector's start, not RX's
                "kept_epoch": None if trained is None else trained.best_epoch,
                "trained_bands": summary.trained_bands,
                "val_auroc": summary.val_auroc,
                "test_auroc": summary.test_auroc,
                "n_invalid": summary.statistics.n_invalid,
                "acquisitions": ids,
                "exported": summary.exported,
                "output": output,
            }
            log_flow_run(
                run_id,
                config.model_dump(mode="json"),
                selection,
                saved.selector,
                saved.directory,
                trained,
                summary.to_json_dict(),
                {
                    "config_hash": config_hash,
                    "trained": trained is not None,
                    "kept_epoch": None if trained is None else trained.best_epoch,
                    # What training gave and how the validation rows refined it (train_two_phase).
                    "trained_bands": None if trained is None else trained.trained_bands,
                    # Phase 1's start on the training rows (None: a uniform start, or not trained).
                    "start_bands": None if trained is None else trained.start_bands,
                    "refine_moves": [] if trained is None else [list(m) for m in trained.refine_moves],
                },
                plots,
                [result.preview for result in results if result.preview],
                (config.campaign, store, ids),
                config.export.products[0],  # the model makes the run's main product
                config.tracking.registered_model,
                flow_run_markdown(
                    **described, mlflow_link=None, prefect_link=flow_run_ui_url(), heading=False
                ),
            )
            markdown = flow_run_markdown(**described, mlflow_link=summary.mlflow_link)
            publish_summary(config.campaign, markdown, uri, run.info.experiment_id, run_id)
    return summary
