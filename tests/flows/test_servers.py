"""Server mode: real Prefect, MLflow and Dask servers started and stopped by ``bandselect.servers``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import psutil
import pytest

from bandselect import servers as server_mode

pytestmark = [pytest.mark.servers, pytest.mark.slow, pytest.mark.timeout(600)]


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_servers_healthy_on_localhost(servers) -> None:
    assert _get(f"{servers.prefect_api_url}/health")[0] == 200
    assert _get(f"{servers.mlflow_url}/health")[0] == 200
    report = server_mode.status(servers.config.directory)
    assert set(report) == {"prefect", "mlflow", "dask-scheduler", "dask-worker", "prefect-worker"}
    assert all(entry["alive"] and entry["healthy"] for entry in report.values())
    for record in servers.records.values():
        listening = {
            conn.laddr.ip
            for proc in [psutil.Process(record.pid), *psutil.Process(record.pid).children(recursive=True)]
            for conn in proc.net_connections(kind="tcp")
            if conn.status == psutil.CONN_LISTEN
        }
        assert listening <= {"127.0.0.1"}, (record.name, listening)
    env_file = (servers.config.directory / "env.sh").read_text()
    assert f"export PREFECT_API_URL={servers.prefect_api_url}" in env_file
    assert f"export MLFLOW_TRACKING_URI={servers.mlflow_url}" in env_file
    assert f"export BANDSELECT_DASK_ADDRESS={servers.dask_address}" in env_file


def test_dask_worker_computes(servers) -> None:
    from distributed import Client

    with Client(servers.dask_address, timeout=30, set_as_default=False) as client:
        assert len(client.scheduler_info(n_workers=-1)["workers"]) == 1
        assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6


def test_flow_reports_to_prefect_and_mlflow_servers(servers, tmp_path: Path) -> None:
    """A flow run in a fresh process, pointed at the servers by the printed env vars, logs both places."""
    script = tmp_path / "tiny_flow.py"
    script.write_text(
        textwrap.dedent(
            """
            from prefect import flow

            from bandselect import tracking

            @flow(name="tiny-tracked")
            def tiny() -> str:
                with tracking.start_run("server-test", campaign="camp-s") as run:
                    tracking.log_params_flat({"node": {"k": 2}})
                    tracking.log_selection([1, 5], [450.0, 650.0])
                    tracking.log_history([{"loss": 1.0}, {"loss": 0.5}])
                    return run.info.run_id

            if __name__ == "__main__":
                print("RUN_ID", tiny())
            """
        )
    )
    env = {**os.environ, **servers.environment, "PREFECT_HOME": str(tmp_path / "client-home")}
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_id = next(line.split()[1] for line in result.stdout.splitlines() if line.startswith("RUN_ID"))

    flow_runs = _post(f"{servers.prefect_api_url}/flow_runs/filter", {"limit": 10})
    tiny_runs = [run for run in flow_runs if run["state_type"] == "COMPLETED"]
    assert tiny_runs, flow_runs

    experiments = _post(f"{servers.mlflow_url}/api/2.0/mlflow/experiments/search", {"max_results": 10})
    names = {experiment["name"]: experiment["experiment_id"] for experiment in experiments["experiments"]}
    assert "server-test" in names
    found = _post(
        f"{servers.mlflow_url}/api/2.0/mlflow/runs/search",
        {"experiment_ids": [names["server-test"]], "max_results": 5},
    )
    run = next(r for r in found["runs"] if r["info"]["run_id"] == run_id)
    tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
    assert tags["prefect.flow_run_id"] in {r["id"] for r in tiny_runs}
    assert tags["bandselect.campaign"] == "camp-s"
    params = {param["key"]: param["value"] for param in run["data"]["params"]}
    assert params["node.k"] == "2"
    assert params["selection.indices"] == "[1, 5]"
    artifacts = json.loads(_get(f"{servers.mlflow_url}/api/2.0/mlflow/artifacts/list?run_id={run_id}")[1])
    assert {"selection.json", "params.json"} <= {entry["path"] for entry in artifacts["files"]}
    # Artifacts went through the server's proxy into its own artifacts folder.
    stored = list((servers.config.directory / "mlflow" / "artifacts").rglob("selection.json"))
    assert len(stored) == 1
    assert json.loads(stored[0].read_text())["indices"] == [1, 5]


DEPLOYED_FLOW = """
from pathlib import Path

from prefect import flow

from bandselect import tracking


@flow(name="tiny-deployed")
def tiny_deployed(config: dict) -> int:
    archive = Path(config["archive"])
    files = sorted(path.name for path in archive.iterdir())
    with tracking.start_run("deployment-test", campaign=config["campaign"]):
        tracking.log_params_flat({"config": config})
        tracking.log_selection([0, 2], [450.0, 650.0], extra={"files": files})
    return len(files)
"""

DEPLOY_AND_RUN = """
import sys

from prefect import flow
from prefect.deployments import run_deployment

source, pool, archive = sys.argv[1:4]
deployed = flow.from_source(source=source, entrypoint="tiny_deployed.py:tiny_deployed")
deployment_id = deployed.deploy(
    name="tiny-nightly",
    work_pool_name=pool,
    cron="0 2 * * *",
    parameters={"config": {"campaign": "camp-d", "archive": archive}},
)
print("DEPLOYMENT", deployment_id, flush=True)
run = run_deployment("tiny-deployed/tiny-nightly", timeout=300)
print("FLOW_RUN", run.id, run.state.type.value, flush=True)
"""


def test_deployment_run_through_the_api_on_a_process_pool(servers, tmp_path: Path) -> None:
    """Register a cron deployment on the worker's process pool, trigger a run, check Prefect and MLflow."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "tiny_deployed.py").write_text(DEPLOYED_FLOW)
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in ("a.hdr", "b.hdr"):
        (archive / name).write_text("ENVI\n")
    script = tmp_path / "deploy_and_run.py"
    script.write_text(DEPLOY_AND_RUN)
    env = {**os.environ, **servers.environment, "PREFECT_HOME": str(tmp_path / "client-home")}
    result = subprocess.run(
        [sys.executable, str(script), str(source), servers.config.worker_pool, str(archive)],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line[:1].isupper()}
    deployment_id = lines["DEPLOYMENT"][0]
    flow_run_id, state = lines["FLOW_RUN"]
    assert state == "COMPLETED", Path(servers.records["prefect-worker"].log).read_text()[-3000:]

    deployment = json.loads(_get(f"{servers.prefect_api_url}/deployments/{deployment_id}")[1])
    assert deployment["work_pool_name"] == servers.config.worker_pool
    assert [schedule["schedule"]["cron"] for schedule in deployment["schedules"]] == ["0 2 * * *"]
    flow_run = json.loads(_get(f"{servers.prefect_api_url}/flow_runs/{flow_run_id}")[1])
    assert flow_run["deployment_id"] == deployment_id
    assert flow_run["state_type"] == "COMPLETED"
    assert flow_run["parameters"]["config"]["archive"] == str(archive)

    experiments = _post(f"{servers.mlflow_url}/api/2.0/mlflow/experiments/search", {"max_results": 50})
    experiment_id = next(
        e["experiment_id"] for e in experiments["experiments"] if e["name"] == "deployment-test"
    )
    found = _post(
        f"{servers.mlflow_url}/api/2.0/mlflow/runs/search",
        {"experiment_ids": [experiment_id], "filter": f"tags.`prefect.flow_run_id` = '{flow_run_id}'"},
    )
    (run,) = found["runs"]
    params = {param["key"]: param["value"] for param in run["data"]["params"]}
    assert params["config.archive"] == str(archive)
    assert params["selection.indices"] == "[0, 2]"
    assert run["info"]["status"] == "FINISHED"


def test_second_start_in_same_folder_is_refused(servers) -> None:
    with pytest.raises(server_mode.ServerError, match="running"):
        server_mode.start_servers(servers.config, timeout_s=5)
    assert all(entry["alive"] for entry in server_mode.status(servers.config.directory).values())


def test_stop_kills_every_process(servers) -> None:
    """Last in the module: stop by pid, every process of every group gone, state files removed."""
    members = {
        proc.pid
        for record in servers.records.values()
        for proc in [psutil.Process(record.pid), *psutil.Process(record.pid).children(recursive=True)]
    }
    stopped = server_mode.stop_servers(servers.config.directory)
    assert set(stopped) == {"prefect", "mlflow", "dask-scheduler", "dask-worker", "prefect-worker"}
    still = [pid for pid in members if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert still == []
    assert server_mode.status(servers.config.directory) == {}
    assert not (servers.config.directory / "servers.json").exists()
    assert list((servers.config.directory / "pids").iterdir()) == []
    assert server_mode.stop_servers(servers.config.directory) == []
