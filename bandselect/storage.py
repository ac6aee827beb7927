"""Where stores live: a local folder, or an object-store URL (``s3://bucket/prefix``) through fsspec.

Bottom layer (like :mod:`bandselect.atomic`): it knows files and objects, not zarr groups or selection.
The campaign store, the statistics sidecar and the product stores call these helpers so the same code
runs on a local disk and on an object store.

Local paths keep the POSIX guarantee the stores rely on: a directory is published by one atomic
``rename``. An object store has no rename (and no directories), so :func:`publish_tree` copies a staged
tree object by object on the server side and writes the *group marker* (``zarr.json``) last: readers
list a group only when its marker exists (:func:`has_marker`), so they see either nothing or the whole
group. Each object is written by one PUT, which object stores apply atomically (a reader gets the old
object or the new one, never a part), which is what :func:`write_bytes` relies on for small files
(manifests, statistics).

Credentials and endpoints come from the usual environment of the filesystem's library, never from
bandselect's configs: for S3 (``s3fs``/botocore) ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``, ``AWS_PROFILE`` and ``AWS_ENDPOINT_URL`` (or
``AWS_ENDPOINT_URL_S3``) for S3-compatible servers.

Examples
--------
>>> is_remote("s3://bucket/campaign.zarr"), is_remote("/data/campaign.zarr"), is_remote("file:///tmp/x")
(True, False, False)
>>> join("s3://bucket/campaign.zarr/", "scene-0123", "zarr.json")
's3://bucket/campaign.zarr/scene-0123/zarr.json'
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bandselect.atomic import atomic_path
from bandselect.errors import ConfigError, StoreError

__all__ = [
    "MARKER",
    "StoreLocation",
    "child_names",
    "connection_errors",
    "exists",
    "has_marker",
    "is_remote",
    "join",
    "local_path",
    "location",
    "marked_children",
    "modified_time",
    "publish_tree",
    "read_bytes",
    "remove_tree",
    "unreachable",
    "write_bytes",
]

#: The object whose presence makes a zarr group (a published acquisition or product) visible.
MARKER = "zarr.json"

#: A store's location: a local path, or an object-store URL string.
StoreLocation = Path | str


def is_remote(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an object-store URL (any ``scheme://`` other than ``file://``; a one-letter
    scheme is a Windows drive, not a protocol)."""
    text = os.fspath(path)
    scheme, separator, _ = text.partition("://")
    return bool(separator) and len(scheme) > 1 and scheme.isidentifier() and scheme != "file"


def location(path: str | os.PathLike[str]) -> StoreLocation:
    """The canonical form of a location: a URL without its trailing ``/``, or a local :class:`Path`.

    ``file://`` URLs become local paths.
    """
    text = os.fspath(path)
    if is_remote(text):
        return text.rstrip("/")
    return Path(text.removeprefix("file://"))


def local_path(path: str | os.PathLike[str], what: str, why: str) -> Path:
    """``path`` as a local :class:`Path`, for what is local by design (locks, GeoTIFFs, PNG previews,
    input files); an object-store URL is refused (``Path("s3://b/c")`` is ``s3:/b/c``, a local folder
    named ``s3:`` that would be created without a word).

    Raises
    ------
    ConfigError
        ``path`` is an object-store URL.
    """
    if is_remote(path):
        raise ConfigError(
            what,
            expected=f"a local path ({why})",
            found=f"the URL {os.fspath(path)!r}",
            fix="give a folder or file on this machine",
        )
    where = location(path)
    assert isinstance(where, Path)  # not remote
    return where


def unreachable(what: str, error: BaseException, *, writable: bool = False) -> StoreError:
    """The :class:`StoreError` of an object store that :func:`connection_errors` says cannot be reached
    (or, ``writable``, written): what it was for, the error, and the bucket / ``AWS_*`` fix."""
    return StoreError(
        what,
        expected="a reachable object store" + (" whose bucket exists and is writable" if writable else ""),
        found=f"{type(error).__name__}: {error}",
        fix="create the bucket, or check the AWS_* credentials / AWS_ENDPOINT_URL in the environment",
    )


def connection_errors() -> tuple[type[BaseException], ...]:
    """What an object-store call raises when the store cannot be reached: ``OSError`` (s3fs turns the
    service's answers into ``OSError``s) and botocore's own errors, which it does not translate (no
    credentials, no endpoint).

    For an ``except`` clause, evaluated when an error is matched: botocore's base class is taken from
    the loaded module (s3fs loaded it to make the call that failed), never imported here (the ``s3``
    extra is a filesystem fsspec loads, not a dependency of this code).
    """
    exceptions = sys.modules.get("botocore.exceptions")
    botocore_error = getattr(exceptions, "BotoCoreError", None)
    return (OSError,) if botocore_error is None else (OSError, botocore_error)


def join(base: str | os.PathLike[str], *parts: str) -> StoreLocation:
    """``base`` joined with ``parts`` (``/`` for URLs, :class:`Path` division for local paths)."""
    root = location(base)
    if isinstance(root, Path):
        return root.joinpath(*parts)
    return "/".join([root, *(part.strip("/") for part in parts)])


def _filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path inside it (credentials from the environment)."""
    try:
        from fsspec.core import url_to_fs
    except ImportError as error:  # fsspec comes with dask; kept explicit for a clear message
        raise StoreError(
            f"store {url}",
            expected="fsspec installed for object-store URLs",
            found=str(error),
            fix="pip install fsspec s3fs",
        ) from error
    try:
        fs, path = url_to_fs(url)
    except (ImportError, ValueError) as error:
        raise StoreError(
            f"store {url}",
            expected="a URL of an installed fsspec filesystem (s3:// needs s3fs)",
            found=f"{type(error).__name__}: {error}",
            fix="pip install 'bandselect[s3]' (s3fs) or check the URL's scheme",
        ) from error
    return fs, path


def _fresh(url: str) -> tuple[Any, str]:
    """Like :func:`_filesystem`, with the filesystem's listing cache dropped (other writers publish)."""
    fs, path = _filesystem(url)
    fs.invalidate_cache()
    return fs, path


def exists(path: str | os.PathLike[str]) -> bool:
    """Whether a file, a folder or (on an object store) any object under the prefix exists."""
    where = location(path)
    if isinstance(where, Path):
        return where.exists()
    fs, inner = _fresh(where)
    return bool(fs.exists(inner))


def has_marker(group: str | os.PathLike[str]) -> bool:
    """Whether the group at ``group`` is published (its ``zarr.json`` marker exists)."""
    where = join(group, MARKER)
    if isinstance(where, Path):
        return where.is_file()
    fs, inner = _fresh(where)
    return bool(fs.isfile(inner))


def child_names(path: str | os.PathLike[str]) -> list[str]:
    """Names of the folders (object-store: common prefixes) directly under ``path``; [] when missing."""
    where = location(path)
    if isinstance(where, Path):
        if not where.is_dir():
            return []
        with os.scandir(where) as entries:
            return sorted(entry.name for entry in entries if entry.is_dir())
    fs, inner = _fresh(where)
    try:
        listed = fs.ls(inner, detail=True)
    except FileNotFoundError:
        return []
    return sorted(
        entry["name"].rstrip("/").rsplit("/", 1)[-1] for entry in listed if entry.get("type") == "directory"
    )


def marked_children(path: str | os.PathLike[str]) -> list[str]:
    """Names of the published groups directly under ``path`` (children holding a ``zarr.json``)."""
    where = location(path)
    if isinstance(where, Path):
        return [name for name in child_names(where) if (where / name / MARKER).is_file()]
    fs, inner = _fresh(where)
    # One listing request per level (s3fs globs with prefix and delimiter), not one per child.
    found = fs.glob(f"{inner}/*/{MARKER}")
    return sorted(name.rsplit("/", 2)[-2] for name in found)


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The content of a file or object (``FileNotFoundError`` when missing)."""
    where = location(path)
    if isinstance(where, Path):
        return where.read_bytes()
    fs, inner = _fresh(where)
    return bytes(fs.cat_file(inner))


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a whole file atomically: a local temporary + rename, or one PUT on an object store."""
    where = location(path)
    if isinstance(where, Path):
        with atomic_path(where) as temporary:
            temporary.write_bytes(data)
        return
    fs, inner = _filesystem(where)
    fs.pipe_file(inner, data)


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove a folder or every object under a prefix; nothing happens when it does not exist."""
    where = location(path)
    if isinstance(where, Path):
        if where.is_dir():
            shutil.rmtree(where, ignore_errors=True)
        else:
            where.unlink(missing_ok=True)
        return
    fs, inner = _fresh(where)
    with contextlib.suppress(FileNotFoundError):
        fs.rm(inner, recursive=True)


def modified_time(path: str | os.PathLike[str]) -> float | None:
    """Seconds since the epoch of the latest change under ``path``; None when it does not exist.

    A local folder reports its own mtime; an object-store prefix the newest of its objects.
    """
    where = location(path)
    if isinstance(where, Path):
        try:
            return where.stat().st_mtime
        except FileNotFoundError:
            return None
    fs, inner = _fresh(where)
    try:
        objects = fs.find(inner, detail=True)
    except FileNotFoundError:
        return None
    stamps = [_timestamp(info) for info in objects.values()]
    known = [stamp for stamp in stamps if stamp is not None]
    return max(known) if known else None


def _timestamp(info: dict[str, Any]) -> float | None:
    value = info.get("LastModified", info.get("mtime"))
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value) if isinstance(value, int | float) else None


def _relative_files(fs: Any, root: str) -> Iterator[str]:
    prefix = root.rstrip("/") + "/"
    for name in fs.find(root):
        if name.startswith(prefix):
            yield name[len(prefix) :]


def publish_tree(source: str, target: str, *, last: Sequence[str] = (MARKER,)) -> None:
    """Copy every object under the URL ``source`` to ``target``, the objects named ``last`` at the end.

    The object-store counterpart of publishing a staged folder by rename. Objects are copied on the
    server side (no data passes through this process), everything first except the top-level objects
    named in ``last`` (the group's marker), which are written only when the rest is in place; then the
    staged objects are deleted. A crash before the marker leaves an unpublished prefix that readers
    ignore (:func:`marked_children`) and that the next publication of the same content overwrites.

    Raises
    ------
    StoreError
        ``source`` or ``target`` is not an object-store URL, or ``source`` holds nothing.
    """
    if not (is_remote(source) and is_remote(target)):
        raise StoreError(
            f"publishing {source} as {target}",
            expected="two object-store URLs (local folders are published by rename)",
            found=f"{source!r} and {target!r}",
            fix="report this: the store chose the wrong publisher",
        )
    fs, inner_source = _fresh(source)
    _, inner_target = _filesystem(target)
    files = sorted(_relative_files(fs, inner_source))
    if not files:
        raise StoreError(
            f"publishing {source}",
            expected="a staged group with objects",
            found="nothing under the staging prefix",
            fix="stage the group again",
        )
    final = [name for name in files if name in set(last)]
    body = [name for name in files if name not in set(last)]
    for batch in (body, final):
        if batch:
            fs.copy(
                [f"{inner_source}/{name}" for name in batch],
                [f"{inner_target}/{name}" for name in batch],
            )
    with contextlib.suppress(FileNotFoundError):
        fs.rm(inner_source, recursive=True)
