"""Exclusive locks on a campaign store and its output, held by a flow run for its whole duration.

Two runs of a flow on the same store or output (a scheduled run overlapping a manual one, two workers)
serialise on ``fcntl.flock`` of lock files next to those paths: the second waits, then finds the work done
(ingest ledger, statistics manifest, cached selection and composites already published with the same
config hash) and skips it. Publishing is idempotent anyway; the lock keeps the ingest ledger and the
statistics sidecar from being updated by two writers at once. A killed process releases its locks (the
kernel drops them with the file descriptor).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bandselect import storage
from bandselect.errors import StoreError

__all__ = ["LOCK_SUFFIX", "exclusive_lock", "lock_path_for", "locked"]

LOCK_SUFFIX = ".lock"
_POLL_SECONDS = 0.2


def lock_path_for(path: str | os.PathLike[str]) -> Path:
    """The lock file of a store or output: ``<path>.lock`` next to it (never inside the zarr store)."""
    # Locks are local flocks: a URL would lock a local file under a folder named "s3:" and serialise
    # nothing (docs/scale.md, Object storage).
    target = storage.local_path(path, "lock", "locks are flocks of local files").resolve()
    return target.with_name(target.name + LOCK_SUFFIX)


@contextmanager
def exclusive_lock(path: str | os.PathLike[str], timeout_s: float = 3600.0) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``<path>.lock``; wait up to ``timeout_s`` seconds for it.

    Raises
    ------
    StoreError
        Another process held the lock for longer than ``timeout_s``.
    ConfigError
        ``path`` is an object-store URL (locks are local).
    """
    lock_file = lock_path_for(path)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + float(timeout_s)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"lock {lock_file}",
                        expected=f"the lock free within {timeout_s:g} s",
                        found="another bandselect run still holds it",
                        fix="wait for that run to finish, or raise lock_timeout_s in the flow config",
                    ) from None
                time.sleep(_POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield lock_file
    finally:
        os.close(fd)  # closing the descriptor releases the flock


@contextmanager
def locked(paths: Sequence[str | os.PathLike[str]], timeout_s: float = 3600.0) -> Iterator[list[Path]]:
    """Hold the locks of several paths, taken in sorted order (no deadlock between two runs)."""
    unique = sorted({lock_path_for(p): p for p in paths}.items(), key=lambda item: item[0])
    with ExitStack() as stack:  # each path as given: the lock taken is the one sorted on
        yield [stack.enter_context(exclusive_lock(path, timeout_s)) for _, path in unique]
