"""Ingest the new files of an archive folder into a campaign store, one file at a time.

Unlike :func:`bandselect.store.ingest` (all or nothing per call), a scheduled run must not let one bad
file block a night's data: each new file is ingested on its own, a corrupt or truncated file is reported
(with the library's message) and skipped, the others are processed. Files already ingested are
remembered in a ledger next to the store data (``<store>/.bandselect_ingest.json``: path → size, mtime,
acquisition id), so a run reads only new or changed files. Source files are opened read-only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bandselect.atomic import atomic_path
from bandselect.errors import BandSelectError
from bandselect.store.campaign import open_campaign
from bandselect.store.ingest import ingest_files
from bandselect.store.readers import discover
from bandselect.store.sources import ByteOrder, ReaderChoice

__all__ = ["LEDGER_NAME", "FileFailure", "IngestReport", "ingest_new_files"]

LEDGER_NAME = ".bandselect_ingest.json"


class FileFailure(BaseModel):
    """A file that could not be ingested, and why."""

    path: str
    error_type: str
    message: str


class IngestReport(BaseModel):
    """What an ingest run did: new acquisitions, files already known, failures."""

    archive: str
    store: str
    added: list[str] = []
    already_present: list[str] = []
    unchanged_files: int = 0
    failures: list[FileFailure] = []


def _ledger_path(store: Path) -> Path:
    return store / LEDGER_NAME


def _load_ledger(store: Path) -> dict[str, dict[str, Any]]:
    path = _ledger_path(store)
    if not path.is_file():
        return {}
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a damaged ledger only costs re-reading the archive: ingest is idempotent
    files = content.get("files", {}) if isinstance(content, dict) else {}
    return files if isinstance(files, dict) else {}


def _save_ledger(store: Path, files: dict[str, dict[str, Any]]) -> None:
    with atomic_path(_ledger_path(store)) as temporary:
        temporary.write_text(json.dumps({"version": 1, "files": files}, indent=1), encoding="utf-8")


def _signature(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": int(stat.st_size), "mtime_ns": int(stat.st_mtime_ns)}


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

    Parameters
    ----------
    archive
        Folder of source cubes (walked recursively; never written).
    store
        Campaign store (created when missing).
    wavelengths, mask_nonfinite, sort_bands, chunk_yx, byte_order, allow_trailing_bytes, reader
        As :func:`bandselect.store.ingest`.

    Returns
    -------
    IngestReport
        New ids, ids of files whose content was already stored, and per-file failures.
    """
    archive_path = Path(archive)
    store_path = Path(store)
    campaign = open_campaign(store_path, create=True)
    ledger = _load_ledger(store_path)
    report = IngestReport(archive=str(archive_path), store=str(store_path))
    changed = False
    for path in discover([archive_path]):
        key = str(path.resolve())
        signature = _signature(path)
        known = ledger.get(key)
        if known is not None and {k: known.get(k) for k in signature} == signature:
            report.unchanged_files += 1
            continue
        try:
            (result,) = ingest_files(
                [path],
                campaign,
                wavelengths=wavelengths,
                mask_nonfinite=mask_nonfinite,
                sort_bands=sort_bands,
                chunk_yx=chunk_yx,
                byte_order=byte_order,
                allow_trailing_bytes=allow_trailing_bytes,
                reader=reader,
            )
        except (BandSelectError, OSError) as error:
            report.failures.append(FileFailure(path=key, error_type=type(error).__name__, message=str(error)))
            continue
        (report.added if result.created else report.already_present).append(result.acquisition_id)
        ledger[key] = {**signature, "acquisition_id": result.acquisition_id}
        changed = True
    if changed:
        _save_ledger(store_path, ledger)
    return report
