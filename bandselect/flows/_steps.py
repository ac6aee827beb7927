"""The steps shared by ``select_bands`` and ``process_campaign``, called inside a flow run.

ingest (optional) → statistics → statistical initialisation → gradient training (learnable pipelines)
→ selection → export of every acquisition (skipping those already published with the same config hash)
→ plots → MLflow. The whole run holds the store and output locks.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from bandselect import tracking
from bandselect.errors import StoreError
from bandselect.export import composite_config_hash, open_composites, status_counts
from bandselect.pipeline import Pipeline
from bandselect.pipeline.config import resolve_pipeline_band_counts
from bandselect.selection import BandSelection
from bandselect.stats import StatisticsSummary
from bandselect.store import open_campaign
from bandselect.store.archive import IngestReport
from bandselect.store.locking import locked
from bandselect.tasks import (
    batches,
    draw_plots,
    export_composites,
    ingest_archive,
    initialise_selectors,
    log_flow_run,
    selection_of,
    train_selectors,
    update_statistics,
)

from .config import FlowConfig


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
    flow_run_id: str | None
    acquisition_ids: list[str]
    selector: str
    selection: BandSelection
    config_hash: str
    exported: dict[str, int]
    ingest: IngestReport | None
    statistics: StatisticsSummary
    trained: bool

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
    pipeline = Pipeline.from_config(resolve_pipeline_band_counts(config.pipeline_mapping(), n_bands))
    requests = [node.statistics_request() for node in pipeline.nodes.values()]
    return any(request is not None and request.contrast for request in requests)


def run_flow(config: FlowConfig, *, run_name_prefix: str) -> FlowSummary:
    """Run the shared steps for ``config`` (inside a Prefect flow run)."""
    store, output = str(config.store), str(config.output)
    work_dir = config.resolved_work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    open_composites(output)  # fail early (before any work) when the output is something else
    with locked([config.store, config.output], timeout_s=config.lock_timeout_s):
        ingest: IngestReport | None = None
        if config.archive is not None:
            ingest = ingest_archive(
                str(config.archive),
                store,
                config.ingest.wavelengths,
                config.ingest.mask_nonfinite,
                config.ingest.sort_bands,
                config.ingest.chunk,
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
            )
            trained = None
            if saved.learnable:
                trained = train_selectors(store, saved, str(work_dir), ids_covered, config.training)
                saved = trained.saved
            selection = selection_of(store, saved)
            config_hash = composite_config_hash(selection)
            previews_dir = str(config.previews_dir) if config.export.previews else None
            attrs: dict[str, Any] = {"campaign": config.campaign, "mlflow_run_id": run_id}
            if flow_run_id:
                attrs["prefect_flow_run_id"] = flow_run_id
            futures = [
                export_composites.submit(
                    store, batch, output, selection, previews_dir, config.export.percentiles, attrs
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
                output,
                ids,
                config.positive_label,
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
                flow_run_id=flow_run_id,
                acquisition_ids=ids,
                selector=saved.selector,
                selection=selection,
                config_hash=config_hash,
                exported=status_counts(results),
                ingest=ingest,
                statistics=statistics,
                trained=trained is not None,
            )
            log_flow_run(
                run_id,
                config.model_dump(mode="json"),
                selection,
                saved.selector,
                saved.directory,
                trained,
                summary.to_json_dict(),
                {"config_hash": config_hash, "trained": trained is not None},
                plots,
                [result.preview for result in results if result.preview],
            )
    return summary
