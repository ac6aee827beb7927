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
    assert set(report) == {"prefect", "mlflow", "dask-scheduler", "dask-worker"}
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
    assert set(stopped) == {"prefect", "mlflow", "dask-scheduler", "dask-worker"}
    still = [pid for pid in members if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert still == []
    assert server_mode.status(servers.config.directory) == {}
    assert not (servers.config.directory / "servers.json").exists()
    assert list((servers.config.directory / "pids").iterdir()) == []
    assert server_mode.stop_servers(servers.config.directory) == []


def test_cli_refuses_taken_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        code = server_mode.main(
            [
                "start",
                "--dir",
                str(tmp_path / "s"),
                "--prefect-port",
                str(port),
                "--no-dask",
                "--timeout",
                "5",
            ]
        )
    assert code == 2
    assert server_mode.status(tmp_path / "s") == {}
