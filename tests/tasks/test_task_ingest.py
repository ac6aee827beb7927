"""ingest_archive.fn: files ingested one by one, a corrupt one reported and skipped, re-runs read nothing."""

from __future__ import annotations

from pathlib import Path

from bandselect.store import open_campaign
from bandselect.tasks import ingest_archive


def test_ingest_archive_skips_the_corrupt_file_and_remembers_the_rest(archive: Path, tmp_path: Path) -> None:
    store = tmp_path / "store.zarr"
    report = ingest_archive.fn(str(archive), str(store))
    assert len(report.added) == 2 and [Path(f.path).name for f in report.failures] == ["broken.npz"]
    assert sorted(open_campaign(store).ids()) == sorted(report.added)
    again = ingest_archive.fn(str(archive), str(store))
    assert again.added == [] and again.unchanged_files == 2
