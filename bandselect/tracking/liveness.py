"""Runs whose process died: tagged with their owner process, marked ``KILLED`` by the next run.

A flow killed with ``kill -9`` (or by the out-of-memory killer, or a lost machine) cannot end its MLflow
run, which would stay ``RUNNING`` for ever and look like work in progress in the UI. Every run started by
:func:`bandselect.tracking.start_run` carries ``bandselect.process`` = ``host:pid:start-time``; before
starting a run, the runs of the same experiment still ``RUNNING`` whose owner is on this host and no
longer alive are ended as ``KILLED`` with a ``bandselect.ended_by`` tag saying so. Owners on other hosts
are left alone: their liveness cannot be known from here.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

__all__ = ["TAG_ENDED_BY", "TAG_PROCESS", "end_dead_runs", "owner_alive", "process_tag"]

TAG_PROCESS = "bandselect.process"
TAG_ENDED_BY = "bandselect.ended_by"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc``), ``None`` where unknown."""
    try:
        # Field 22 of /proc/<pid>/stat; the command name (field 2) may hold spaces: split after ')'.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_tag(pid: int | None = None) -> str:
    """``host:pid:start-time`` of this process (or ``pid``): a pid reused later does not match."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '?'}"


def owner_alive(tag: str) -> bool | None:
    """Whether the process a :func:`process_tag` names is alive; ``None`` when it is on another host."""
    host, _, rest = tag.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    current = _start_time(pid)
    if current is not None and start not in ("", "?") and current != start:
        return False  # the pid was reused by a later process
    return True


def end_dead_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """End as ``KILLED`` the experiment's ``RUNNING`` runs whose owner process on this host is dead.

    Returns
    -------
    list of str
        The ids of the runs ended.
    """
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{TAG_PROCESS}` != ''",
        max_results=1000,
    )
    ended = []
    for run in runs:
        if owner_alive(run.data.tags.get(TAG_PROCESS, "")) is False:
            client.set_tag(run.info.run_id, TAG_ENDED_BY, f"{process_tag()}: its process had died")
            client.set_terminated(run.info.run_id, status=RunStatus.to_string(RunStatus.KILLED))
            ended.append(run.info.run_id)
    return ended
