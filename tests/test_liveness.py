"""Runs left RUNNING by a killed process are ended KILLED by the next run; live and remote ones stay."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from bandselect.tracking import start_run
from bandselect.tracking.liveness import TAG_ENDED_BY, TAG_PROCESS, owner_alive, process_tag


def test_process_tag_names_this_live_process() -> None:
    tag = process_tag()
    assert tag.startswith(f"{socket.gethostname()}:{os.getpid()}:")
    assert owner_alive(tag) is True
    host, pid, start = tag.split(":")
    assert owner_alive(f"{host}:{pid}:{int(start) + 1}") is False  # same pid, another process
    assert owner_alive(f"elsewhere-{host}:{pid}:{start}") is None  # unknowable from here


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_killed_flows_run_is_ended_killed_by_the_next(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    script = tmp_path / "hang.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            from bandselect.tracking import start_run

            with start_run("exp", run_name="doomed", tracking_uri={uri!r}) as run:
                print(run.info.run_id, flush=True)
                time.sleep(600)
            """
        )
    )
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        doomed = child.stdout.readline().strip()  # type: ignore[union-attr]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(doomed).info.status == "RUNNING"  # nobody could end it

    experiment = client.get_experiment_by_name("exp").experiment_id
    alive = client.create_run(experiment, tags={TAG_PROCESS: process_tag()}).info.run_id
    remote = client.create_run(experiment, tags={TAG_PROCESS: "another-host:1:1"}).info.run_id
    untagged = client.create_run(experiment).info.run_id
    with start_run("exp", run_name="next", tracking_uri=uri):
        pass

    ended = client.get_run(doomed)
    assert ended.info.status == "KILLED"
    assert "its process had died" in ended.data.tags[TAG_ENDED_BY]
    for run_id in (alive, remote, untagged):
        assert client.get_run(run_id).info.status == "RUNNING", run_id
