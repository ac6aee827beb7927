"""`servers stop` stops every process it started: after a leader died, and with servers.json corrupt."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import psutil
import pytest

from bandselect import servers as server_mode

pytestmark = [pytest.mark.servers, pytest.mark.slow]


def _start(directory: Path) -> dict[str, server_mode.ServiceRecord]:
    prefect_port, mlflow_port = server_mode.free_ports(2)
    config = server_mode.ServerConfig(
        directory=directory,
        prefect_port=prefect_port,
        mlflow_port=mlflow_port,
        with_dask=False,
    )
    return server_mode.start_servers(config, timeout_s=240.0)


def _members(records: dict[str, server_mode.ServiceRecord]) -> set[int]:
    return {
        process.pid
        for record in records.values()
        for process in [psutil.Process(record.pid), *psutil.Process(record.pid).children(recursive=True)]
    }


def _alive(pids: set[int]) -> list[int]:
    return [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


def test_stop_after_a_leader_died_and_with_a_corrupt_state_file(tmp_path: Path) -> None:
    directory = tmp_path / "servers"
    try:
        # 1. MLflow's leader killed: its workers keep the port; stop finds them by their process group.
        records = _start(directory)
        members = _members(records)
        leader = records["mlflow"].pid
        children = {p.pid for p in psutil.Process(leader).children(recursive=True)}
        assert children, "mlflow server runs its app in worker processes"
        os.kill(leader, signal.SIGKILL)
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(leader).wait(timeout=10)
        assert _alive(children), "the workers outlive their leader"
        lines: list[str] = []
        stopped = server_mode.stop_servers(directory, progress=lines.append)
        assert "mlflow" in stopped and "prefect" in stopped, lines
        assert _alive(members) == [], lines
        assert server_mode._port_free(
            "127.0.0.1", records["mlflow"].url and int(records["mlflow"].url.rsplit(":", 1)[1])
        )

        # 2. servers.json corrupt: status says so (typed), stop still stops everything.
        records = _start(directory)
        members = _members(records)
        (directory / "servers.json").write_text('{"config": {"directory": ')
        with pytest.raises(server_mode.ServerError, match=r"the servers\.json written by"):
            server_mode.status(directory)
        lines = []
        stopped = server_mode.stop_servers(directory, progress=lines.append)
        assert {"prefect", "mlflow"} <= set(stopped), lines
        assert any("unreadable" in line for line in lines), lines
        assert _alive(members) == [], lines
        assert not (directory / "servers.json").exists()
        assert server_mode.stop_servers(directory) == []
    finally:
        server_mode.stop_servers(directory)  # whatever the test left running
