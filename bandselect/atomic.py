"""Atomic file writes, shared by every layer: readers never see a half-written file.

Bottom layer (like :mod:`bandselect.errors`): standard library only.

Examples
--------
>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
>>> with atomic_path(target) as temporary:
...     _ = temporary.write_text("done")
>>> target.read_text()
'done'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; publish it with :func:`os.replace` on success.

    The parent folder is created when missing. On any error the temporary file is removed and the
    previous content of ``path`` (if any) is left untouched, so readers never see a half-written file.

    Parameters
    ----------
    path
        Final destination.

    Yields
    ------
    pathlib.Path
        A path in the same folder (same file system, so the rename is atomic) to write to.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        # mkstemp creates 0600; published files get the usual 0644 (or keep the replaced file's mode).
        os.chmod(temporary, final.stat().st_mode & 0o777 if final.exists() else 0o644)
        yield temporary
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
