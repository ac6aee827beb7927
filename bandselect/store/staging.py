"""A campaign store's own files, beside its acquisitions: the marker and the staging area.

- The store's marker is its root ``zarr.json``, a group whose attributes carry
  :data:`~bandselect.names.STORE_FORMAT_KEY` (:func:`check_store_marker`).
- ``<store>/.staging`` holds acquisitions being written (and groups being retired). Each entry is named
  ``<host>-<pid>-<random>`` so that a later writer can tell a leftover of a crashed process from a live
  write (:func:`clean_staging`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import zarr

from bandselect import storage
from bandselect.errors import StoreError
from bandselect.names import STORE_FORMAT_KEY, STORE_FORMAT_VERSION
from bandselect.storage import StoreLocation
from bandselect.store.writer import host_tag

__all__ = [
    "STAGING_DIR",
    "STALE_STAGING_SECONDS",
    "check_store_marker",
    "clean_staging",
    "create_store",
    "fsync_directory",
    "not_a_store",
    "open_remote_store",
    "pid_alive",
]

STAGING_DIR = ".staging"
#: A staging leftover older than this is removed even when its owner cannot be checked (other host).
STALE_STAGING_SECONDS = 24 * 3600
_ZARR_JSON = "zarr.json"


def not_a_store(store_path: StoreLocation, found: str) -> StoreError:
    """The error for a path that is not a campaign store."""
    return StoreError(
        f"campaign store {store_path}",
        expected=f"a campaign store (a zarr group whose attributes carry {STORE_FORMAT_KEY!r})",
        found=found,
        fix="pass the path of a campaign store, or a new or empty directory to create one",
    )


def check_store_marker(store_path: StoreLocation, marker: Path | bytes) -> None:
    """Check a store's root ``zarr.json`` (a file, or its bytes from an object store).

    Raises
    ------
    StoreError
        Unreadable, not a campaign store's group, or another format version.
    """
    try:
        text = marker.decode("utf-8") if isinstance(marker, bytes) else marker.read_text(encoding="utf-8")
        metadata = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise not_a_store(store_path, f"an unreadable {_ZARR_JSON} ({error})") from error
    metadata = metadata if isinstance(metadata, dict) else {}
    attributes = metadata.get("attributes", {})
    attributes = attributes if isinstance(attributes, dict) else {}
    if metadata.get("node_type") != "group" or STORE_FORMAT_KEY not in attributes:
        raise not_a_store(store_path, f"a zarr node without the {STORE_FORMAT_KEY!r} attribute")
    version = attributes[STORE_FORMAT_KEY]
    if version != STORE_FORMAT_VERSION:
        raise StoreError(
            f"campaign store {store_path}",
            expected=f"format version {STORE_FORMAT_VERSION}",
            found=f"version {version!r}",
            fix="open it with the bandselect version that wrote it, or re-ingest the sources",
        )


def open_remote_store(url: str, create: bool) -> None:
    """Check the campaign store at an object-store URL, creating it when asked and absent.

    Raises
    ------
    StoreError
        Unreachable, not a campaign store, or missing (without ``create``).
    """
    marker = storage.join(url, _ZARR_JSON)
    try:
        content = storage.read_bytes(marker)
    except FileNotFoundError:
        content = None
    except storage.connection_errors() as error:  # no such bucket, no permission, no endpoint
        raise storage.unreachable(f"campaign store {url}", error) from error
    if content is not None:
        check_store_marker(url, content)
        return
    if remote_prefix_exists(url):  # objects of something else: not a store, whether asked to create or not
        raise not_a_store(url, f"a non-empty prefix without {_ZARR_JSON}")
    if not create:
        raise StoreError(
            f"campaign store {url}",
            expected="an existing campaign store",
            found="nothing at that prefix (or no such bucket)",
            fix="ingest data first (`bandselect ingest FILES --store URL`), pass create=True, or check the "
            "bucket name",
        )
    try:
        create_store(url)
    except storage.connection_errors() as error:  # no such bucket, no permission
        raise storage.unreachable(f"campaign store {url}", error, writable=True) from error


def remote_prefix_exists(url: str) -> bool:
    """Whether any object lies under the prefix ``url``.

    Raises
    ------
    StoreError
        The object store cannot be reached (no credentials, no endpoint, no permission).
    """
    try:
        return storage.exists(url)
    except storage.connection_errors() as error:
        raise storage.unreachable(f"campaign store {url}", error) from error


def create_store(store_path: StoreLocation) -> None:
    """Write an empty campaign store (its marker) at ``store_path``."""
    if isinstance(store_path, Path):
        store_path.mkdir(parents=True, exist_ok=True)
    zarr.open_group(
        str(store_path), mode="w-", zarr_format=3, attributes={STORE_FORMAT_KEY: STORE_FORMAT_VERSION}
    )


def pid_alive(pid: int) -> bool:
    """Whether a process of this host runs under ``pid``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _owner_gone(name: str, host: str) -> bool:
    parts = name.split("-")
    return len(parts) == 3 and parts[0] == host and parts[1].isdigit() and not pid_alive(int(parts[1]))


def clean_staging(store: StoreLocation) -> list[str]:
    """Remove the staging leftovers of crashed writes under ``store``; return their names.

    A leftover is removed when it was made on this host by a process that no longer runs, or when it is
    older than a day (its owner cannot be checked from here). Live writers are left alone.
    """
    host = host_tag()
    now = time.time()
    removed = []
    if not isinstance(store, Path):
        staging_url = storage.join(store, STAGING_DIR)
        for name in storage.child_names(staging_url):
            owner_gone = _owner_gone(name, host)
            changed = None if owner_gone else storage.modified_time(storage.join(staging_url, name))
            if owner_gone or (changed is not None and now - changed > STALE_STAGING_SECONDS):
                storage.remove_tree(storage.join(staging_url, name))
                removed.append(name)
        return removed
    staging = store / STAGING_DIR
    if not staging.is_dir():
        return []
    for entry in staging.iterdir():
        try:
            too_old = now - entry.stat().st_mtime > STALE_STAGING_SECONDS
        except FileNotFoundError:  # its owner just published or discarded it
            continue
        if _owner_gone(entry.name, host) or too_old:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed


def fsync_directory(path: Path) -> None:
    """Persist a rename itself (a crash right after publishing must not lose the directory entry)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
