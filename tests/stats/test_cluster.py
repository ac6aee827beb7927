"""Statistics on a real dask.distributed cluster: a scheduler and two worker processes started as programs.

Both workers read the same store (a folder, and S3 through a local moto server); the result equals the
in-process result. Killing one worker in the middle of a job does not fail it: the scheduler reruns the
lost tasks on the other worker (the partials are pure functions of the chunks).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from object_store import S3Server, s3_server, stop_process_group

from bandselect.servers import free_port
from bandselect.stats import BandStatistics, compute_statistics
from bandselect.store import make_acquisition, open_campaign

pytestmark = [pytest.mark.slow, pytest.mark.servers, pytest.mark.timeout(600)]
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: dict[str, subprocess.Popen[bytes]]


def _stop(process: subprocess.Popen[bytes]) -> None:
    stop_process_group(process, timeout_s=20)


@contextlib.contextmanager
def dask_cluster(directory: Path, n_workers: int = 2, env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """``dask scheduler`` and ``n_workers`` single-threaded ``dask worker --no-nanny`` processes on 127.0.0.1,
    each in its own process group, stopped by pid. Without a nanny a killed worker stays dead."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    environment = {
        **os.environ,
        **(env or {}),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(directory / f"{name}.log", "ab")  # the process writes it until it is stopped
        process = subprocess.Popen(
            [sys.executable, "-m", "dask", *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
            cwd=directory,
            start_new_session=True,
        )
        processes.append(process)
        return process

    try:
        scheduler = spawn(
            "scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                          "--dashboard-address", "127.0.0.1:0"]
        )  # fmt: skip
        workers = {
            f"worker-{i}": spawn(
                f"worker-{i}",
                ["worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny", "--name",
                 f"worker-{i}", "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
                 "--local-directory", str(directory / f"worker-{i}")],
            )
            for i in range(n_workers)
        }  # fmt: skip
        with Client(address, timeout=120, set_as_default=False) as client:
            client.wait_for_workers(n_workers, timeout=180)
        yield Cluster(address, scheduler, workers)
    finally:
        for process in reversed(processes):
            _stop(process)


def _campaign(root: Any, n: int = 6, side: int = 192) -> Any:
    campaign = open_campaign(root, create=True)
    rng = np.random.default_rng(0)
    for _ in range(n):
        mask = (rng.random((side, side)) < 0.1).astype(np.uint8)
        cube = rng.normal(size=(side, side, 24)) + mask[..., None] * (np.arange(24) == 7)
        campaign.append(
            make_acquisition(cube.astype(np.float32), np.linspace(400.0, 900.0, 24), mask), chunk_yx=32
        )
    return campaign


def _assert_identical(a: BandStatistics, b: BandStatistics) -> None:
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.histograms, b.histograms)
    np.testing.assert_allclose(a.class_comoments, b.class_comoments, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(a.class_means, b.class_means, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(a.auc, b.auc)


def _executed(address: str) -> dict[str, int]:
    from distributed import Client

    with Client(address, timeout=60, set_as_default=False) as client:
        counts = client.run(lambda dask_worker: dask_worker.state.executed_count)
        return {str(worker): int(count) for worker, count in counts.items()}


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with pytest.MonkeyPatch.context() as patch, s3_server(tmp_path_factory.mktemp("moto"), patch) as server:
        yield server


def test_two_worker_processes_read_the_same_store_local_and_s3(tmp_path: Path, s3: S3Server) -> None:
    local = _campaign(tmp_path / "c.zarr", n=3, side=96)
    remote = _campaign(s3.url("cluster.zarr"), n=3, side=96)
    with dask_cluster(tmp_path, env=s3.environment) as cluster:
        for campaign in (local, remote):
            before = _executed(cluster.address)
            distributed_stats = compute_statistics(campaign, n_bins=256, scheduler_address=cluster.address)
            after = _executed(cluster.address)
            assert all(after[w] > before[w] for w in after), (before, after)  # both workers computed
            _assert_identical(distributed_stats, compute_statistics(local, n_bins=256))


def test_a_worker_killed_mid_job_does_not_fail_it(tmp_path: Path) -> None:
    from distributed import Client

    campaign = _campaign(tmp_path / "c.zarr")
    expected = compute_statistics(campaign, n_bins=512)
    with (
        dask_cluster(tmp_path) as cluster,
        Client(cluster.address, timeout=60, set_as_default=False) as client,
        ThreadPoolExecutor(1) as pool,
    ):
        job = pool.submit(compute_statistics, campaign, n_bins=512, scheduler_address=cluster.address)
        victim = cluster.workers["worker-1"]
        deadline = time.monotonic() + 300

        def progress(dask_scheduler: Any) -> dict[str, Any]:
            holding = {ws.name: len(ws.has_what) for ws in dask_scheduler.workers.values()}
            pending = sum(1 for ts in dask_scheduler.tasks.values() if ts.state != "memory")
            return {"holding": holding, "pending": pending}

        while True:  # wait until the victim holds results the job still needs, then kill it
            state = client.run_on_scheduler(progress)
            if state["holding"].get("worker-1", 0) >= 2 and state["pending"] > 0:
                break
            assert not job.done() and time.monotonic() < deadline, state
            time.sleep(0.02)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        assert not job.done(), "the job ended before the kill: nothing was tested"
        stats = job.result(timeout=400)  # raises if the job failed
        survivors = {info["name"] for info in client.scheduler_info(n_workers=-1)["workers"].values()}
        assert survivors == {"worker-0"}
    _assert_identical(stats, expected)
