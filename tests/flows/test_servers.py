"""Server mode: real Prefect, MLflow and Dask servers started and stopped by ``bandselect.servers``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psutil
import pytest

from bandselect import servers as server_mode
from bandselect.export import published_ids
from bandselect.store import open_campaign

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
    assert set(report) == {
        "prefect", "mlflow", "dask-scheduler", "dask-worker", "prefect-worker", "prefect-worker-2"
    }  # fmt: skip
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
        assert len(client.scheduler_info(n_workers=-1)["workers"]) == 2  # --dask-workers 2
        assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6

        # Preloaded (bandselect.stats.dask_preload): the first statistics job imports nothing. The
        # check only looks (importing here would load them).
        from bandselect.stats.dask_preload import PRELOADED

        names = {"bandselect.stats.dask_preload", *PRELOADED}

        def loaded() -> bool:
            import sys

            return names <= set(sys.modules)

        assert client.run_on_scheduler(loaded)
        assert all(client.run(loaded).values())


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


REPO = Path(__file__).resolve().parents[2]

RUN_DEPLOYMENT = """
import sys

from prefect.deployments import run_deployment

run = run_deployment("process-campaign/process-campaign-nightly", timeout=500)
print("FLOW_RUN", run.id, run.state.type.value, flush=True)
"""


def test_deployment_of_prefect_yaml_runs_process_campaign_on_the_pool(servers, tmp_path: Path) -> None:
    """Deploy deployments/prefect.yaml as a user would, trigger a run through the API, check both servers."""
    from bandselect.synthetic import make_scene

    archive = tmp_path / "archive"
    archive.mkdir()
    for index in range(2):
        scene = make_scene(24, 32, n_bands=16, seed=index, anomaly_fraction=0.05)
        np.savez(
            archive / f"scene_{index}.npz",
            cube=scene.cube,
            wavelengths_nm=scene.wavelengths_nm,
            mask=scene.mask.astype(np.uint8),
        )
    workdir = tmp_path / "work"
    env = {
        **os.environ,
        **servers.environment,
        "PREFECT_HOME": str(tmp_path / "client-home"),
        "BANDSELECT_PROJECT_DIR": str(REPO),
        "BANDSELECT_CAMPAIGN": "camp-d",
        "BANDSELECT_ARCHIVE": str(archive),
        "BANDSELECT_WORKDIR": str(workdir),
    }
    prefect = Path(sys.executable).with_name("prefect")
    deploy = subprocess.run(
        [str(prefect), "--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    script = tmp_path / "run_deployment.py"
    script.write_text(RUN_DEPLOYMENT)
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=560, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    flow_run_id, state = next(
        line.split()[1:] for line in result.stdout.splitlines() if line.startswith("FLOW_RUN")
    )
    assert state == "COMPLETED", Path(servers.records["prefect-worker"].log).read_text()[-3000:]

    flow_run = json.loads(_get(f"{servers.prefect_api_url}/flow_runs/{flow_run_id}")[1])
    assert flow_run["state_type"] == "COMPLETED"
    assert flow_run["parameters"]["config"]["archive"] == str(archive)
    deployment = json.loads(_get(f"{servers.prefect_api_url}/deployments/{flow_run['deployment_id']}")[1])
    assert deployment["work_pool_name"] == servers.config.worker_pool
    assert [schedule["schedule"]["cron"] for schedule in deployment["schedules"]] == ["0 2 * * *"]
    # The flow did its job: both scenes ingested and exported.
    assert len(open_campaign(workdir / "store.zarr").ids()) == 2
    assert published_ids(workdir / "composites.zarr") == open_campaign(workdir / "store.zarr").ids()

    experiments = _post(f"{servers.mlflow_url}/api/2.0/mlflow/experiments/search", {"max_results": 50})
    experiment_ids = [e["experiment_id"] for e in experiments["experiments"]]
    found = _post(
        f"{servers.mlflow_url}/api/2.0/mlflow/runs/search",
        {"experiment_ids": experiment_ids, "filter": f"tags.`prefect.flow_run_id` = '{flow_run_id}'"},
    )
    (run,) = found["runs"]
    assert run["info"]["status"] == "FINISHED"
    tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
    assert tags["bandselect.campaign"] == "camp-d"
    params = {param["key"]: param["value"] for param in run["data"]["params"]}
    assert params["config.archive"] == str(archive)
    listing = f"{servers.mlflow_url}/api/2.0/mlflow/artifacts/list?run_id={run['info']['run_id']}"
    artifacts = json.loads(_get(listing)[1])
    assert "selection.json" in {entry["path"] for entry in artifacts["files"]}


RUN_TWO = """
import json, sys, time

from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment

name = "process-campaign/process-campaign-nightly"
configs = json.loads(sys.argv[1])
runs = [run_deployment(name, parameters={"config": config}, timeout=0) for config in configs]
deadline = time.monotonic() + 540
with get_client(sync_client=True) as client:
    while True:
        states = [client.read_flow_run(run.id) for run in runs]
        final = all(state.state is not None and state.state.is_final() for state in states)
        if final or time.monotonic() > deadline:
            break
        time.sleep(2)


def times(run, history):
    end = run.end_time.timestamp() if run.end_time else None
    # When a worker took the run (PENDING: its process is being started; a worker of limit 1 takes
    # one run at a time and holds it until the run ends).
    pending = [state.timestamp.timestamp() for state in history if state.type.value == "PENDING"]
    if not pending:
        sys.exit(f"flow run {run.id} was never PENDING: states {[state.type.value for state in history]}")
    taken = min(pending)
    return {
        "id": str(run.id),
        "state": run.state.type.value,
        "taken": taken,
        "start": run.start_time.timestamp(),
        "end": end,
    }


with get_client(sync_client=True) as client:
    rows = [times(run, client.read_flow_run_states(run.id)) for run in states]
print("RUNS", json.dumps(rows), flush=True)
"""


def _archive(folder: Path, seed: int, n_bands: int) -> Path:
    from bandselect.synthetic import make_scene

    folder.mkdir(parents=True)
    for index in range(2):
        scene = make_scene(24, 32, n_bands=n_bands, seed=seed + index, anomaly_fraction=0.05)
        np.savez(
            folder / f"scene_{index}.npz",
            cube=scene.cube,
            wavelengths_nm=scene.wavelengths_nm,
            mask=scene.mask.astype(np.uint8),
        )
    return folder


def _wait_until_the_pool_is_idle(servers, timeout_s: float = 300.0) -> None:
    """No flow run of an earlier test still running, and the workers past their cleanup: a worker holds
    its one slot until the flow run's process has exited, a few seconds after the run is COMPLETED."""
    deadline = time.monotonic() + timeout_s
    url = f"{servers.prefect_api_url}/flow_runs/filter"
    active = {"state": {"type": {"any_": ["PENDING", "RUNNING", "CANCELLING"]}}}

    def due() -> dict[str, object]:
        # SCHEDULED runs that should have started; the deployment's nightly schedule (02:00 UTC) keeps
        # future runs SCHEDULED, and those must not count.
        now = datetime.now(UTC).isoformat()
        return {"state": {"type": {"any_": ["SCHEDULED"]}}, "expected_start_time": {"before_": now}}

    while _post(url, {"flow_runs": active}) or _post(url, {"flow_runs": due()}):
        assert time.monotonic() < deadline, "flow runs of earlier tests are still active"
        time.sleep(1.0)
    time.sleep(10.0)


def test_two_campaigns_run_at_once_on_two_prefect_workers(servers, tmp_path: Path) -> None:
    """Two flow runs of the pool's deployment, one per campaign, run concurrently on the two workers
    (each takes one run at a time) and both publish their own, correct products."""
    campaigns = {
        name: {
            "campaign": name,
            "archive": str(_archive(tmp_path / name / "archive", seed, n_bands)),
            "store": str(tmp_path / name / "store.zarr"),
            "output": str(tmp_path / name / "composites.zarr"),
        }
        for name, seed, n_bands in (("camp-a", 10, 16), ("camp-b", 20, 12))
    }
    env = {
        **os.environ,
        **servers.environment,
        "PREFECT_HOME": str(tmp_path / "client-home"),
        "BANDSELECT_PROJECT_DIR": str(REPO),
        "BANDSELECT_CAMPAIGN": "camp-a",
        "BANDSELECT_ARCHIVE": campaigns["camp-a"]["archive"],
        "BANDSELECT_WORKDIR": str(tmp_path / "camp-a"),
    }
    prefect = Path(sys.executable).with_name("prefect")
    deploy = subprocess.run(
        [str(prefect), "--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    _wait_until_the_pool_is_idle(servers)
    script = tmp_path / "run_two.py"
    script.write_text(RUN_TWO)
    result = subprocess.run(
        [sys.executable, str(script), json.dumps(list(campaigns.values()))],
        env=env, capture_output=True, text=True, timeout=590, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("RUNS"))[5:])
    logs = {
        name: Path(servers.records[name].log).read_text() for name in ("prefect-worker", "prefect-worker-2")
    }
    assert [run["state"] for run in runs] == ["COMPLETED", "COMPLETED"], logs
    # Concurrent: each was taken by a worker before the other ended, and each worker (limit 1) ran one
    # of them. (Their RUNNING intervals need not overlap: a run of a few seconds can end before the
    # other worker's flow process, started at the same time, has imported its flow on a loaded host.)
    first, second = runs
    assert first["taken"] < second["end"] and second["taken"] < first["end"], runs
    # The worker that ran a flow run streams its output ("View at .../flow-run/<id>"); the other worker
    # may name the id too, in a submission attempt the server aborted (the run was already PENDING).
    ran_by = {
        run["id"]: [name for name, log in logs.items() if f"flow-run/{run['id']}" in log] for run in runs
    }
    assert sorted(worker for workers in ran_by.values() for worker in workers) == [
        "prefect-worker", "prefect-worker-2"
    ], ran_by  # fmt: skip
    # No interference: each campaign's store holds its own two scenes and every one of them is exported
    # with a selection on its own band grid; each flow run has its own MLflow run, tagged with its campaign.
    for name, config in campaigns.items():
        campaign = open_campaign(config["store"])
        assert len(campaign.ids()) == 2
        assert published_ids(config["output"]) == campaign.ids()
        from bandselect.export import read_composite

        composite = read_composite(config["output"], campaign.ids()[0])
        assert composite.attrs["campaign"] == name
        assert max(composite.attrs["selected_band_indices"]) < len(campaign.wavelengths)
    experiments = _post(f"{servers.mlflow_url}/api/2.0/mlflow/experiments/search", {"max_results": 50})
    experiment_ids = [e["experiment_id"] for e in experiments["experiments"]]
    for run in runs:
        found = _post(
            f"{servers.mlflow_url}/api/2.0/mlflow/runs/search",
            {"experiment_ids": experiment_ids, "filter": f"tags.`prefect.flow_run_id` = '{run['id']}'"},
        )
        (mlflow_run,) = found["runs"]
        tags = {tag["key"]: tag["value"] for tag in mlflow_run["data"]["tags"]}
        store = tags["bandselect.store"]
        assert tags["bandselect.campaign"] == next(n for n, c in campaigns.items() if c["store"] == store)


def test_run_reuses_the_running_servers(servers, tmp_path: Path) -> None:
    """`bandselect run --servers DIR` starts no temporary Prefect server: the flow run is the server's,
    its MLflow run the MLflow server's, its statistics computed on the server mode's Dask workers."""
    archive = _archive(tmp_path / "archive", 40, 14)
    config = tmp_path / "config.yaml"
    config.write_text("campaign: reuse\narchive: archive\nstore: store.zarr\noutput: composites.zarr\n")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PREFECT_API_URL", "MLFLOW_TRACKING_URI", "BANDSELECT_DASK_ADDRESS", "PREFECT_HOME"}
    }
    env["PREFECT_HOME"] = str(tmp_path / "client-home")
    bandselect = Path(sys.executable).with_name("bandselect")
    started = time.monotonic()
    result = subprocess.run(
        [str(bandselect), "run", str(config), "--servers", str(servers.config.directory)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Starting temporary server" not in output
    assert f"MLflow:           {servers.mlflow_url}" in result.stdout
    assert "on tcp://127.0.0.1" in output  # statistics on the server mode's Dask scheduler
    flow_run_id = next(
        line.split()[-1] for line in result.stdout.splitlines() if line.startswith("Prefect flow run")
    )
    assert (
        json.loads(_get(f"{servers.prefect_api_url}/flow_runs/{flow_run_id}")[1])["state_type"] == "COMPLETED"
    )
    assert len(open_campaign(tmp_path / "store.zarr").ids()) == 2 and archive.is_dir()
    print(f"bandselect run with reused servers: {elapsed:.1f} s")
    missing = subprocess.run(
        [str(bandselect), "run", str(config), "--servers", str(tmp_path / "none")],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert missing.returncode == 1 and "bandselect servers start" in missing.stderr


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
    assert set(stopped) == {
        "prefect", "mlflow", "dask-scheduler", "dask-worker", "prefect-worker", "prefect-worker-2"
    }  # fmt: skip
    still = [pid for pid in members if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert still == []
    assert server_mode.status(servers.config.directory) == {}
    assert not (servers.config.directory / "servers.json").exists()
    assert list((servers.config.directory / "pids").iterdir()) == []
    assert server_mode.stop_servers(servers.config.directory) == []
