"""Server-mode configuration and command line, without starting servers."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest

from bandselect import cli
from bandselect import servers as server_mode
from bandselect.errors import ConfigError


def test_config_urls_environment_and_services(tmp_path: Path) -> None:
    config = server_mode.ServerConfig(tmp_path, prefect_port=14200, mlflow_port=15000, dask_port=18786)
    assert config.host == "127.0.0.1"
    assert config.prefect_api_url == "http://127.0.0.1:14200/api"
    assert server_mode.environment(config) == {
        "PREFECT_API_URL": "http://127.0.0.1:14200/api",
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:15000",
        "BANDSELECT_DASK_ADDRESS": "tcp://127.0.0.1:18786",
        "DO_NOT_TRACK": "true",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    assert config.services() == ["prefect", "mlflow", "dask-scheduler", "dask-worker"]
    with_worker = server_mode.ServerConfig(tmp_path, worker_pool="pool", with_dask=False)
    assert with_worker.services() == ["prefect", "mlflow", "prefect-worker"]
    assert server_mode.ServerConfig(tmp_path, host="0.0.0.0").mlflow_url == "http://127.0.0.1:5000"


def test_commands_bind_the_configured_host(tmp_path: Path) -> None:
    config = server_mode.ServerConfig(tmp_path, dask_dashboard_port=None, worker_pool="p")
    commands = server_mode._commands(config)
    assert set(commands) == {"prefect", "mlflow", "dask-scheduler", "dask-worker", "prefect-worker"}
    for name in ("prefect", "mlflow", "dask-scheduler", "dask-worker"):
        argv = commands[name][0]
        assert argv[argv.index("--host") + 1] == "127.0.0.1", name
    assert "127.0.0.1:0" in commands["dask-scheduler"][0]  # the HTTP server stays local without dashboard
    assert commands["prefect-worker"][1]["PREFECT_API_URL"] == config.prefect_api_url
    assert commands["mlflow"][1]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prefect_port": 0}, "prefect_port"),
        ({"mlflow_port": 70000}, "mlflow_port"),
        ({"prefect_port": 5000}, "distinct ports"),
        ({"dask_worker_threads": 0}, "dask_worker_threads"),
    ],
)
def test_config_rejects_bad_ports(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        server_mode.ServerConfig(tmp_path, **kwargs)


def test_status_stop_and_env_with_nothing_started(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert server_mode.status(tmp_path) == {}
    assert server_mode.stop_servers(tmp_path) == []
    assert cli.main(["servers", "status", "--dir", str(tmp_path)]) == 1
    assert "no servers recorded" in capsys.readouterr().out
    assert cli.main(["servers", "env", "--dir", str(tmp_path)]) == 1  # ServerError: environment, exit 1
    assert "python -m bandselect.servers start" in capsys.readouterr().err


def test_start_refuses_a_taken_port_before_starting_anything(tmp_path: Path) -> None:
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
    assert code == 1  # the environment (a taken port), not the input
    assert server_mode.status(tmp_path / "s") == {}
    assert not (tmp_path / "s" / "logs").exists()


def test_env_prints_the_recorded_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = server_mode.ServerConfig(tmp_path, prefect_port=14200, mlflow_port=15000, with_dask=False)
    server_mode._write_state(config, {})
    expected = "".join(f"export {k}={v}\n" for k, v in server_mode.environment(config).items())
    assert (tmp_path / server_mode.ENV_FILE).read_text() == expected
    assert server_mode.main(["env", "--dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == expected
    assert "export MLFLOW_TRACKING_URI=http://127.0.0.1:15000\n" in expected


def test_worker_counts_are_configurable(tmp_path: Path) -> None:
    config = server_mode.ServerConfig(
        tmp_path,
        worker_pool="pool",
        dask_workers=3,
        dask_worker_threads=2,
        prefect_workers=2,
        prefect_worker_limit=1,
    )
    assert config.services() == [
        "prefect",
        "mlflow",
        "dask-scheduler",
        "dask-worker",
        "prefect-worker",
        "prefect-worker-2",
    ]
    commands = server_mode._commands(config)
    dask = commands["dask-worker"][0]
    assert dask[dask.index("--nworkers") + 1] == "3" and dask[dask.index("--nthreads") + 1] == "2"
    names = [
        commands[s][0][commands[s][0].index("--name") + 1] for s in ("prefect-worker", "prefect-worker-2")
    ]
    assert names == ["bandselect-pool", "bandselect-pool-2"]
    assert all(
        commands[s][0][commands[s][0].index("--limit") + 1] == "1"
        for s in ("prefect-worker", "prefect-worker-2")
    )
    assert (
        "--limit"
        not in server_mode._commands(server_mode.ServerConfig(tmp_path, worker_pool="p"))["prefect-worker"][0]
    )
    assert set(server_mode._health_checks(config)) == set(config.services())
    for bad in (
        {"dask_workers": 0},
        {"prefect_workers": 0},
        {"prefect_worker_limit": 0},
        {"dask_workers": True},
    ):
        with pytest.raises(ConfigError, match="integer >= 1"):
            server_mode.ServerConfig(tmp_path, **bad)
    args = server_mode.configure_parser(argparse.ArgumentParser()).parse_args(
        ["start", "--dask-workers", "2", "--prefect-workers", "2", "--prefect-worker-limit", "1"]
    )
    assert (args.dask_workers, args.prefect_workers, args.prefect_worker_limit) == (2, 2, 1)


def test_free_ports_are_distinct_and_free() -> None:
    # Picked one at a time, two ports can repeat (the kernel hands a released port out again); the
    # servers refuse a repeated port, so the test servers take theirs from one call.
    ports = server_mode.free_ports(64)
    assert len(set(ports)) == 64
    for port in ports[:8]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((server_mode.LOCALHOST, port))
