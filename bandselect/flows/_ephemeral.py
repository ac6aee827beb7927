"""Prefect's temporary API server dies with the flow process that started it, even on ``kill -9``."""

from __future__ import annotations

import os
import subprocess
import sys

__all__ = ["guard_ephemeral_server"]

# Waits for the owner to exit (however it exits: kill -9 included), then stops the server if that pid
# is still Prefect's server (a reused pid is left alone).
_WATCHDOG = """
owner=$1; server=$2
while kill -0 "$owner" 2>/dev/null; do sleep 1; done
grep -q create_app "/proc/$server/cmdline" 2>/dev/null || exit 0
kill -TERM "$server" 2>/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$server" 2>/dev/null || exit 0; sleep 0.5; done
kill -KILL "$server" 2>/dev/null
"""
_guarded: set[int] = set()


def guard_ephemeral_server() -> int | None:
    """Make Prefect's temporary API server of this process die with it, even on ``kill -9``.

    Prefect starts that server (uvicorn, ~200 MB) as a plain child process and stops it at a normal
    exit only; a killed flow would leave it running. A small shell watchdog in its own session waits
    for this process to end and then stops the server. Called at the start of every flow run; does
    nothing when no temporary server runs (a Prefect server is configured) or it is guarded already.

    Returns
    -------
    int or None
        The pid of the guarded server, or ``None``.
    """
    if sys.platform != "linux" or "prefect.server.api.server" not in sys.modules:
        return None
    from prefect.server.api.server import SubprocessASGIServer

    for server in list(SubprocessASGIServer._instances.values()):
        process = server.server_process
        if process is None or process.poll() is not None or process.pid in _guarded:
            continue
        subprocess.Popen(
            ["/bin/sh", "-c", _WATCHDOG, "bandselect-watchdog", str(os.getpid()), str(process.pid)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not in our process group: a group kill must not take it first
        )
        _guarded.add(process.pid)
        return process.pid
    return None
