"""A flow killed with ``kill -9`` leaves no Prefect temporary server behind.

The flow runs in a child process on Prefect's ephemeral API (no server configured), trains a learnable
selector long enough to be killed mid-run; the test finds the temporary server among the child's
processes, kills the child with SIGKILL and asserts the server is gone within seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bandselect.synthetic import write_campaign

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")]


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def test_kill_9_mid_training_leaves_no_prefect_server(tmp_path: Path) -> None:
    store = tmp_path / "campaign.zarr"
    write_campaign(store, 2, 48, 48, n_bands=24, seed=3, chunk_yx=24, anomaly_fraction=0.03)
    script = tmp_path / "flow.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from bandselect.flows import select_bands
            from bandselect.flows.config import DEMO_PIPELINE

            select_bands({{
                "campaign": "killed",
                "store": {str(store)!r},
                "output": {str(tmp_path / "out.zarr")!r},
                "pipeline": DEMO_PIPELINE,
                "training": {{"epochs": 500, "patch_size": 16, "batch_size": 2}},
                "tracking": {{"tracking_uri": "sqlite:///{tmp_path}/mlflow.db"}},
            }})
            """
        )
    )
    environment = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")}
    environment["PREFECT_HOME"] = str(tmp_path / "prefect")
    child = subprocess.Popen(
        [sys.executable, str(script)],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    servers: list[int] = []
    try:

        def server_guarded() -> bool:
            servers[:] = [p for p in _children(child.pid) if "create_app" in _cmdline(p)]
            watchdogs = [p for p in _children(child.pid) if "bandselect-watchdog" in _cmdline(p)]
            return bool(servers and watchdogs)

        _wait_for(server_guarded, 240, "the flow's temporary Prefect server and its watchdog")
        assert child.poll() is None, "the flow ended before it could be killed: make it longer"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        _wait_for(lambda: not any(_alive(p) for p in servers), 20, f"server {servers} to stop")
    finally:
        if child.poll() is None:
            child.kill()
        for pid in [p for p in servers if _alive(p)]:  # do not leave it behind when the test fails
            os.kill(pid, signal.SIGKILL)
