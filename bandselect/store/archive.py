"""Ingest the new and changed files of an archive folder into a campaign store, one file at a time.

Unlike :func:`bandselect.store.ingest` (all or nothing per call), a scheduled run must not let one bad
file block a night's data: each file is ingested on its own, a corrupt or truncated file is reported
(with the library's message) and skipped, the others are processed. Source files are opened read-only.

What the archive means for the store
------------------------------------
An acquisition is keyed by its **source path** as well as by its content:

- **New file**: ingested; a content already stored (a copy of another file) is reported as already
  present and not stored twice.
- **Unchanged file** (same size and modification time as recorded, or the same bytes after a mere
  ``touch``): not read again.
- **Changed file** (other bytes at the same path): its new content *replaces* the acquisition of its
  previous version (:meth:`~bandselect.store.Campaign.replace`: the old group retired, then the new one
  published; a reader never sees both). The new acquisition records what it replaced
  (``replaces_acquisition``, ``replaced_content_sha256``, ``replaced_at``) and the report lists it under
  ``replaced``. The old acquisition is kept when another archive file still has that content. The
  campaign statistics are then recomputed (they no longer cover a published set, see
  :mod:`bandselect.stats.incremental`), and the products of the new id are made by the next export.
  A changed file that no longer reads is a failure: the previous acquisition stays, as the last good state.
- **Disappeared file** (recorded, no longer in the archive): its acquisition is **kept** and the report
  lists it under ``missing``. Removing data because a share is unmounted or a sync is half done would be
  worse than keeping it; removing an acquisition is an explicit act (``Campaign.retire(id)``). If the file
  comes back unchanged it is unchanged; changed, it replaces its acquisition.
- **A link that loops or points nowhere** in the walked folder is a per-file failure (reported, skipped).
- **Disk full** stops the run with a :class:`~bandselect.errors.ResourceError` (not a file's fault;
  every file finished before it is recorded).

The ledger
----------
``<store>/.bandselect_ingest.json`` maps each source path to its size, modification time, source sha256
and acquisition id. It is written after **each** file (atomically), so a run killed mid-ingest redoes
only the files it had not finished. When the ledger is missing or damaged, the acquisitions' recorded
source paths (``source_file``) stand in for it: a changed file still replaces its acquisition.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bandselect import storage
from bandselect.errors import BandSelectError, FileFormatError, ResourceError
from bandselect.names import ATTR_SOURCE_FILE
from bandselect.store.campaign import Campaign, open_campaign
from bandselect.store.ingest import ingest_files
from bandselect.store.readers import discover
from bandselect.store.sources import ByteOrder, ReaderChoice, file_sha256
from bandselect.store.writer import disk_full

__all__ = [
    "LEDGER_NAME",
    "FileFailure",
    "IngestReport",
    "MissingFile",
    "Replacement",
    "ingest_new_files",
]

LEDGER_NAME = ".bandselect_ingest.json"
LEDGER_VERSION = 2


class FileFailure(BaseModel):
    """A file that could not be ingested, and why."""

    path: str
    error_type: str
    message: str


class Replacement(BaseModel):
    """A changed file whose new content replaced the acquisition of its previous version."""

    path: str
    previous_id: str
    acquisition_id: str


class MissingFile(BaseModel):
    """A file recorded by an earlier run that is no longer in the archive (its acquisition is kept)."""

    path: str
    acquisition_id: str


class IngestReport(BaseModel):
    """What an ingest run did: new acquisitions, replacements, files already known or gone, failures."""

    archive: str
    store: str
    added: list[str] = []
    already_present: list[str] = []
    unchanged_files: int = 0
    failures: list[FileFailure] = []
    replaced: list[Replacement] = []
    missing: list[MissingFile] = []


Ledger = dict[str, dict[str, Any]]


def _load_ledger(store: Campaign) -> Ledger:
    try:
        content = json.loads(storage.read_bytes(storage.join(store.path, LEDGER_NAME)).decode("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}  # a damaged ledger costs re-reading the archive; the recorded source paths stand in
    files = content.get("files", {}) if isinstance(content, dict) else {}
    return {str(k): v for k, v in files.items() if isinstance(v, dict)} if isinstance(files, dict) else {}


def _save_ledger(store: Campaign, files: Ledger) -> None:
    data = json.dumps({"version": LEDGER_VERSION, "files": files}, indent=1).encode("utf-8")
    where = storage.join(store.path, LEDGER_NAME)
    try:
        storage.write_bytes(where, data)
    except OSError as error:
        full = disk_full(error, f"the ingest ledger {where}", store.path)
        if full is not None:
            raise full from error
        raise


def _key(path: Path) -> str:
    """The ledger key of a file: its resolved path (absolute, for a link that cannot be resolved)."""
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
        return str(path.absolute())


def _signature(path: Path) -> dict[str, int]:
    try:
        stat = path.stat()
    except OSError as error:
        kind = (
            "a symbolic link that loops or points nowhere"
            if path.is_symlink()
            else "a path that cannot be read"
        )
        raise FileFormatError(
            f"archive file {path}",
            expected="a readable file (or a symbolic link to one)",
            found=f"{kind} ({error.strerror or error})",
            fix="remove the link or point it at the file it stands for",
        ) from error
    return {"size": int(stat.st_size), "mtime_ns": int(stat.st_mtime_ns)}


def _by_source(campaign: Campaign, ids: Iterable[str]) -> dict[str, list[str]]:
    """Acquisition ids by their recorded source path (the ledger's stand-in when it is lost)."""
    found: dict[str, list[str]] = {}
    for acquisition_id in ids:
        source = campaign.attributes(acquisition_id).get(ATTR_SOURCE_FILE)
        if isinstance(source, str) and source:
            found.setdefault(source, []).append(acquisition_id)
    return found


def ingest_new_files(
    archive: str | os.PathLike[str],
    store: str | os.PathLike[str],
    *,
    wavelengths: object = None,
    mask_nonfinite: bool = False,
    sort_bands: bool = False,
    chunk_yx: int = 256,
    byte_order: ByteOrder | None = None,
    allow_trailing_bytes: bool = False,
    reader: ReaderChoice = "auto",
) -> IngestReport:
    """Ingest the archive's files that are new or changed since the last run, one file at a time.

    See the module for what new, changed, unchanged and disappeared files do.

    Parameters
    ----------
    archive
        Folder of source cubes (walked recursively; never written).
    store
        Campaign store (created when missing): a folder or an object-store URL.
    wavelengths, mask_nonfinite, sort_bands, chunk_yx, byte_order, allow_trailing_bytes, reader
        As :func:`bandselect.store.ingest`.

    Returns
    -------
    IngestReport
        New ids, replacements, ids of files whose content was already stored, files gone from the
        archive, and per-file failures.

    Raises
    ------
    FileFormatError
        The archive folder does not exist or holds no supported file.
    ConfigError
        ``archive`` is an object-store URL (the store may be one).
    ResourceError
        The disk is full (files finished before are recorded; nothing half-published).
    """
    # Refused before the store is created: the archive's files are read from this machine's disk.
    archive_path = storage.local_path(
        archive, f"archive {archive}", "source files are read from this machine's disk"
    )
    campaign = open_campaign(store, create=True)
    ledger = _load_ledger(campaign)
    report = IngestReport(archive=str(archive_path), store=str(campaign.path))
    options = {
        "wavelengths": wavelengths,
        "mask_nonfinite": mask_nonfinite,
        "sort_bands": sort_bands,
        "chunk_yx": chunk_yx,
        "byte_order": byte_order,
        "allow_trailing_bytes": allow_trailing_bytes,
        "reader": reader,
    }
    published = set(campaign.ids())
    sources: dict[str, list[str]] | None = None  # read only when a file is not in the ledger
    seen: set[str] = set()
    for path in discover([archive_path]):
        key = _key(path)
        seen.add(key)
        known = ledger.get(key)
        try:
            signature = _signature(path)
            if known is not None and known.get("acquisition_id") in published:
                if {k: known.get(k) for k in signature} == signature:
                    report.unchanged_files += 1
                    continue
                if known.get("source_sha256") and file_sha256(path) == known["source_sha256"]:
                    ledger[key] = {**known, **signature}  # touched, same bytes: nothing to read
                    _save_ledger(campaign, ledger)
                    report.unchanged_files += 1
                    continue
            if known is None and sources is None:
                sources = _by_source(campaign, published)
            previous = _previous_versions(key, known, ledger, sources or {}, published)
            (result,) = ingest_files(
                [path], campaign, replaces={path: previous[0]} if previous else None, **options
            )
        except ResourceError:
            raise
        except (BandSelectError, OSError) as error:
            full = disk_full(error, f"ingesting {path} into {campaign.path}", campaign.path)
            if full is not None:
                raise full from error
            report.failures.append(FileFailure(path=key, error_type=type(error).__name__, message=str(error)))
            continue
        (report.added if result.created else report.already_present).append(result.acquisition_id)
        # Older versions of this path beyond the first (several appends of a changing file by hand).
        for extra in previous[1:]:
            if extra != result.acquisition_id:
                campaign.retire(extra)
        for old in previous:
            if old != result.acquisition_id:
                published.discard(old)
                report.replaced.append(
                    Replacement(path=key, previous_id=old, acquisition_id=result.acquisition_id)
                )
        published.add(result.acquisition_id)
        ledger[key] = {
            **signature,
            "source_sha256": result.source_sha256,
            "acquisition_id": result.acquisition_id,
        }
        _save_ledger(campaign, ledger)  # per file: a crash redoes only the files not finished
    report.missing = _missing(ledger, seen, archive_path, published)
    return report


def _previous_versions(
    key: str,
    known: dict[str, Any] | None,
    ledger: Ledger,
    sources: dict[str, list[str]],
    published: set[str],
) -> list[str]:
    """The published acquisitions of earlier versions of the file at ``key`` that no other file shares."""
    if known is not None:
        candidates = [str(known.get("acquisition_id"))]
    else:
        candidates = sources.get(key, [])
    shared = {str(entry.get("acquisition_id")) for other, entry in ledger.items() if other != key}
    return [c for c in candidates if c in published and c not in shared]


def _missing(ledger: Ledger, seen: set[str], archive: Path, published: set[str]) -> list[MissingFile]:
    """Recorded files of this archive that are gone from it (their acquisitions are kept)."""
    root = _key(archive)
    prefix = root.rstrip(os.sep) + os.sep
    return [
        MissingFile(path=key, acquisition_id=str(entry.get("acquisition_id")))
        for key, entry in sorted(ledger.items())
        if key.startswith(prefix) and key not in seen and entry.get("acquisition_id") in published
    ]
