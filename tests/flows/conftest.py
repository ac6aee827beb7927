"""Fixtures for flow and server tests: one ephemeral Prefect API per session, MLflow stores, real servers.

- ``prefect_harness`` (session, in ``tests/conftest.py``): flow tests request it, e.g. with
  ``pytestmark = pytest.mark.usefixtures("prefect_harness")``.
- ``mlflow_store``: a sqlite MLflow store under ``tmp_path``, set as the tracking URI for the test.
- ``servers`` (module): the real Prefect, MLflow and Dask servers started by ``bandselect.servers`` on free
  ports, stopped by pid at teardown.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bandselect import servers as server_mode

TELEMETRY_OFF = {
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
for _key, _value in TELEMETRY_OFF.items():
    os.environ.setdefault(_key, _value)


@pytest.fixture
def mlflow_store(tmp_path: Path) -> Iterator[str]:
    """A real sqlite MLflow store under ``tmp_path``; the tracking URI for the duration of the test."""
    import mlflow

    from bandselect.tracking import tracking_uri_default

    uri = tracking_uri_default(tmp_path / "project")
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous or "")
    if previous is not None:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@dataclass(frozen=True)
class RunningServers:
    """URLs and records of the servers started for a test module."""

    config: server_mode.ServerConfig
    records: dict[str, server_mode.ServiceRecord]

    @property
    def prefect_api_url(self) -> str:
        return self.config.prefect_api_url

    @property
    def mlflow_url(self) -> str:
        return self.config.mlflow_url

    @property
    def dask_address(self) -> str:
        return self.config.dask_address

    @property
    def environment(self) -> dict[str, str]:
        return server_mode.environment(self.config)


def start_on_free_ports(
    directory: Path,
    *,
    worker_pool: str | None = None,
    dask_workers: int = 1,
    prefect_workers: int = 1,
    prefect_worker_limit: int | None = None,
) -> RunningServers:
    """Start the servers on ports free right now, without the Dask dashboard."""
    prefect_port, mlflow_port, dask_port = server_mode.free_ports(3)
    config = server_mode.ServerConfig(
        directory=directory,
        prefect_port=prefect_port,
        mlflow_port=mlflow_port,
        dask_port=dask_port,
        dask_dashboard_port=None,
        worker_pool=worker_pool,
        dask_workers=dask_workers,
        prefect_workers=prefect_workers,
        prefect_worker_limit=prefect_worker_limit,
    )
    records = server_mode.start_servers(config, timeout_s=240.0)
    return RunningServers(config, records)


# The pool named in deployments/prefect.yaml, so the deployment test deploys that file as written.
TEST_POOL = "bandselect-process"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServers]:
    """Real Prefect, MLflow and Dask servers (two Dask worker processes) and two Prefect process workers
    on pool ``bandselect-process``, each running one flow run at a time.

    On free 127.0.0.1 ports; stopped (by pid) at teardown. The workers poll every 2 s instead of 10 s.
    """
    directory = tmp_path_factory.mktemp("servers")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_WORKER_QUERY_SECONDS", "2")
        running = start_on_free_ports(
            directory, worker_pool=TEST_POOL, dask_workers=2, prefect_workers=2, prefect_worker_limit=1
        )
    try:
        yield running
    finally:
        server_mode.stop_servers(directory)
