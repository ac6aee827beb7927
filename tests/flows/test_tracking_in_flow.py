"""Tracking inside a real Prefect flow run (ephemeral API) logging to a real sqlite MLflow store."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient
from prefect import flow, task

from bandselect import tracking

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


@task
def _log_from_task(run_id: str) -> None:
    # Tasks may run in worker threads, where MLflow's active run is not visible: pass run_id.
    tracking.log_history([{"loss": 0.4, "weights": [0.5, 0.5]}], run_id=run_id)


@flow(name="tracking-test-flow")
def _tracked_flow(campaign: str) -> tuple[str, str]:
    from prefect.runtime import flow_run

    with tracking.start_run("flow-tests", campaign=campaign) as run:
        tracking.log_params_flat({"selector": {"k": 2}})
        _log_from_task.submit(run.info.run_id).result()
        return run.info.run_id, str(flow_run.get_id())


def test_run_tagged_with_flow_run_id_and_name(mlflow_store: str) -> None:
    run_id, flow_run_id = _tracked_flow("camp-f")
    client = MlflowClient(tracking_uri=mlflow_store)
    run = client.get_run(run_id)
    assert run.data.tags[tracking.TAG_FLOW_RUN_ID] == flow_run_id
    assert run.data.tags[tracking.TAG_CAMPAIGN] == "camp-f"
    assert run.info.run_name == run.data.tags[tracking.TAG_FLOW_RUN_NAME]
    assert run.data.params["selector.k"] == "2"
    assert run.data.metrics["weight/1"] == 0.5
    assert run.info.status == "FINISHED"
    # The test harness serves a UI: the tag links to the flow run's page on it.
    assert run.data.tags[tracking.TAG_FLOW_RUN_URL].endswith(f"/flow-runs/flow-run/{flow_run_id}")
    assert run.data.tags[tracking.TAG_FLOW_RUN_URL].startswith("http://127.0.0.1:")
    # The experiment opens on MLflow's "Model training" view, not GenAI.
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_flow_run_url_absent_without_a_ui() -> None:
    # The ephemeral API has no UI (PREFECT_UI_URL unset): no "None/flow-runs/..." link, no link at all.
    assert tracking.flow_run_page(None, "f0664b2b") is None
    assert tracking.flow_run_page("http://127.0.0.1:4200/", None) is None
    assert (
        tracking.flow_run_page("http://127.0.0.1:4200/", "f0")
        == "http://127.0.0.1:4200/flow-runs/flow-run/f0"
    )
