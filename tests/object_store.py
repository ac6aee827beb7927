"""A real S3 endpoint for tests: moto's server on 127.0.0.1, started as a process and stopped by pid.

Credentials and the endpoint reach the code under test the way they would in production, through the
environment (``AWS_*`` variables, read by botocore/s3fs): bandselect itself is given nothing but URLs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bandselect.servers import free_port

ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bandselect-test",
    "AWS_SECRET_ACCESS_KEY": "bandselect-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    """A running moto S3 server: its endpoint, its process and a bucket created for the test."""

    endpoint: str
    pid: int
    bucket: str

    def url(self, *parts: str) -> str:
        """``s3://<bucket>/<parts>``."""
        return "/".join([f"s3://{self.bucket}", *parts])

    @property
    def environment(self) -> dict[str, str]:
        """What a child process (a Dask worker) needs to reach the server."""
        return {**ENVIRONMENT, "AWS_ENDPOINT_URL": self.endpoint}


def stop_process_group(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Stop a server started in its own session by its pid: SIGTERM to its group, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout_s)


def _clear_filesystem_caches() -> None:
    """fsspec caches filesystems by their arguments, not by the environment they were made in.

    The connections of the asynchronous filesystems zarr made (on its own event loop) are closed
    first: nothing closes them otherwise, and aiohttp reports each as "Unclosed client session" at
    interpreter exit (at the end of ``make test``). s3fs closes its synchronous ones itself.
    """
    import fsspec
    from zarr.core.sync import sync

    s3 = fsspec.get_filesystem_class("s3")
    for filesystem in list(s3._cache.values()):
        client = getattr(filesystem, "_s3", None)
        if filesystem.asynchronous and client is not None:
            sync(client.close())
            filesystem._s3 = None
    s3.clear_instance_cache()


@contextlib.contextmanager
def s3_server(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch, bucket: str = "bandselect-test"
) -> Iterator[S3Server]:
    """Start ``moto_server`` on a free 127.0.0.1 port, point the ``AWS_*`` environment at it, yield.

    The process is stopped by its pid (SIGTERM, then SIGKILL) however the test ends.
    """
    executable = Path(sys.executable).with_name("moto_server")
    port = free_port()
    log = open(log_dir / "moto_server.log", "ab")  # closed below, after the process
    process = subprocess.Popen(
        [str(executable), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60.0
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto_server did not start; see {log_dir / 'moto_server.log'}"
                    ) from None
                time.sleep(0.1)
        for key, value in {**ENVIRONMENT, "AWS_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(key, value)
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            monkeypatch.delenv(key, raising=False)
        _clear_filesystem_caches()
        import fsspec

        fsspec.filesystem("s3").mkdir(bucket)
        yield S3Server(endpoint=endpoint, pid=process.pid, bucket=bucket)
    finally:
        try:
            _clear_filesystem_caches()
        finally:  # the server is stopped whatever closing the connections raised
            stop_process_group(process, timeout_s=15)
            log.close()
