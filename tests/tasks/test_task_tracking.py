"""draw_plots.fn and log_flow_run.fn: the run's figures, and everything logged into its MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow.tracking import MlflowClient

from bandselect import tracking
from bandselect.export import composite_config_hash
from bandselect.products import ProductPlan
from bandselect.store import Campaign
from bandselect.tasks import (
    draw_plots,
    export_products,
    initialise_selectors,
    log_flow_run,
    selection_of,
    update_statistics,
)
from bandselect.tracking import tracking_uri_default

FIXED = {
    "nodes": {"rgb": {"type": "BaselineFalseRGBSelector", "config": {"target_wavelengths": [650, 550, 450]}}},
    "connections": [["data.cube", "rgb.cube"], ["data.wavelengths", "rgb.wavelengths"]],
}


def test_plots_and_mlflow_record_of_a_run(campaign: Campaign, tmp_path: Path) -> None:
    store, output = str(campaign.path), str(tmp_path / "out.zarr")
    ids = list(update_statistics.fn(store, 64).acquisition_ids)
    saved = initialise_selectors.fn(store, FIXED, str(tmp_path), ids)
    selection = selection_of.fn(store, saved)
    export_products.fn(store, ids, selection, ProductPlan({"composite": output}))
    plots = draw_plots.fn(str(tmp_path / "plots"), store, selection, saved.selector, None, output, ids)
    assert [Path(p).name for p in plots] == ["band_scores.png", "rgb_previews.png"]
    uri = tracking_uri_default(tmp_path / "project")
    with tracking.start_run("tasks", tracking_uri=uri, campaign="c") as run:
        log_flow_run.fn(
            run.info.run_id,
            {"campaign": "c"},
            selection,
            saved.selector,
            saved.directory,
            None,
            {"acquisition_ids": ids},
            {"config_hash": composite_config_hash(selection)},
            plots,
            [],
        )
    client = MlflowClient(tracking_uri=uri)
    params = client.get_run(run.info.run_id).data.params
    assert params["pipeline.rgb.type"] == "BaselineFalseRGBSelector"
    assert json.loads(params["selection.indices"]) == list(selection.indices)
    folder = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "artifacts")))
    content = json.loads((folder / "selection.json").read_text())
    assert content["digest"] == selection.digest and content["selector"] == "rgb"
    assert json.loads((folder / "acquisitions.json").read_text()) == ids
    assert {p.name for p in (folder / "plots").iterdir()} == {"band_scores.png", "rgb_previews.png"}
    # A campaign on an object store is the run's input under its URL (MLflow's S3 source), not as a
    # local path resolved from the working folder (<cwd>/s3:/...).
    from bandselect.tracking.flow_run import log_campaign_input

    with tracking.start_run("tasks", tracking_uri=uri, campaign="remote") as remote_run:
        log_campaign_input(remote_run.info.run_id, "s3://bucket/campaign.zarr", "remote", ids)
    inputs = client.get_run(remote_run.info.run_id).inputs.dataset_inputs
    assert [(i.dataset.source_type, i.dataset.source) for i in inputs] == [
        ("s3", '{"uri": "s3://bucket/campaign.zarr"}')
    ]
    with tracking.start_run("tasks", tracking_uri=uri, campaign="gcs") as gcs_run:  # no MLflow source for it
        log_campaign_input(gcs_run.info.run_id, "gcs://bucket/campaign.zarr", "gcs", ids)
    (gcs_input,) = client.get_run(gcs_run.info.run_id).inputs.dataset_inputs
    assert gcs_input.dataset.source == '{"uri": "gcs://bucket/campaign.zarr"}'
