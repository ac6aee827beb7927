"""The steps shared by ``select_bands`` and ``process_campaign``, called inside a flow run.

ingest (optional) → statistics → statistical initialisation → gradient training (learnable pipelines)
→ selection → export of every acquisition (skipping those already published with the same config hash)
→ plots → MLflow. The whole run holds the store and output locks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bandselect import tracking
from bandselect.errors import StoreError
from bandselect.export import open_composites
from bandselect.store import open_campaign
from bandselect.store.locking import locked
from bandselect.tasks import (
    ExportRecord,
    IngestReport,
    SelectionSummary,
    describe_selection,
    draw_plots,
    export_composites,
    ingest_archive,
    initialise_selectors,
    log_flow_run,
    train_selectors,
    update_statistics,
)
from bandselect.tasks.export import batches, status_counts

from .config import FlowConfig


class FlowSummary(BaseModel):
    """What a flow run did and where its results are."""

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
    selection: SelectionSummary
    exported: dict[str, int]
    ingest: IngestReport | None
    trained: bool


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    value = flow_run.get_id()
    return None if value is None else str(value)


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
        statistics = update_statistics(
            store, config.statistics.n_bins, config.statistics.nan_policy, config.statistics.scheduler_address
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
            state = initialise_selectors(
                store,
                config.pipeline_mapping(),
                str(work_dir),
                statistics.acquisition_ids,
                config.selector,
                config.positive_label,
                config.statistics.n_bins,
            )
            training = None
            if state.learnable:
                training = train_selectors(
                    store, state, str(work_dir), statistics.acquisition_ids, config.training.model_dump()
                )
                state = training.state
            selection = describe_selection(
                store, state, statistics.acquisition_ids, config.positive_label, training is not None
            )
            wavelengths = [float(w) for w in campaign.wavelengths]  # type: ignore[union-attr]
            spec = selection.composite_spec(wavelengths)
            previews_dir = str(config.previews_dir) if config.export.previews else None
            attrs: dict[str, Any] = {"campaign": config.campaign, "mlflow_run_id": run_id}
            if flow_run_id:
                attrs["prefect_flow_run_id"] = flow_run_id
            futures = [
                export_composites.submit(
                    store, batch, output, spec, previews_dir, config.export.percentiles, attrs
                )
                for batch in batches(ids, config.export.batch_size)
            ]
            records: list[ExportRecord] = [record for future in futures for record in future.result()]
            exported = {"published": 0, "replaced": 0, "skipped": 0, **status_counts(records)}
            plots = draw_plots(str(config.plots_dir), wavelengths, selection, training, output, ids)
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
                selection=selection,
                exported=exported,
                ingest=ingest,
                trained=training is not None,
            )
            log_flow_run(
                run_id,
                config.model_dump(mode="json"),
                selection,
                training,
                wavelengths,
                {
                    **summary.model_dump(mode="json", exclude={"selection"}),
                    "statistics": statistics.model_dump(),
                },
                plots,
                [record.preview for record in records if record.preview],
            )
    return summary
