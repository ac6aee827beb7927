"""Archive semantics (bandselect.store.archive): acquisitions keyed by source path and content.

A changed file replaces its acquisition (provenance recorded, statistics recomputed), a file gone from the
archive is kept and reported, a touched file is not read again, and the ledger is written per file so a
run killed after its first file redoes only the others.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from store_helpers import grid, small_cube

import bandselect.store.archive as archive_module
from bandselect.errors import ResourceError
from bandselect.names import ATTR_REPLACED_AT, ATTR_REPLACED_SHA256, ATTR_REPLACES
from bandselect.stats import compute_statistics, update_campaign_statistics
from bandselect.store import Campaign, open_campaign
from bandselect.store.archive import LEDGER_NAME, ingest_new_files

REPO = Path(__file__).resolve().parents[2]


def _scene(path: Path, seed: int) -> Path:
    labels = np.zeros((9, 7), np.uint8)
    labels[seed % 5 : seed % 5 + 3, 1:4] = 1
    np.savez(path, cube=small_cube(seed=seed), wavelengths_nm=grid(), mask=labels)
    return path


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    folder = tmp_path / "archive"
    folder.mkdir()
    for name, seed in (("a", 1), ("b", 2), ("c", 3)):
        _scene(folder / f"{name}.npz", seed)
    return folder


def _ingest(archive: Path, store: Path) -> archive_module.IngestReport:
    return ingest_new_files(archive, store, chunk_yx=4)


def _ledger(store: Path) -> dict[str, dict[str, object]]:
    return json.loads((store / LEDGER_NAME).read_text())["files"]


def _count_ingests(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record the files the archive hands to ingest_files (what it reads)."""
    calls: list[Path] = []
    real = archive_module.ingest_files

    def spy(paths, campaign, **kwargs):  # type: ignore[no-untyped-def]
        calls.extend(Path(p) for p in paths)
        return real(paths, campaign, **kwargs)

    monkeypatch.setattr(archive_module, "ingest_files", spy)
    return calls


def test_a_changed_file_replaces_its_acquisition_and_the_statistics_follow(
    archive: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store.zarr"
    first = _ingest(archive, store)
    old_a = first.added[0]
    assert len(first.added) == 3
    update_campaign_statistics(open_campaign(store), n_bins=16)
    _scene(archive / "a.npz", 11)
    report = _ingest(archive, store)
    (new_a,) = report.added
    assert [(r.previous_id, r.acquisition_id) for r in report.replaced] == [(old_a, new_a)]
    assert report.replaced[0].path == str((archive / "a.npz").resolve())
    campaign = open_campaign(store)
    assert old_a not in campaign.ids() and new_a in campaign.ids() and len(campaign) == 3
    assert not (store / old_a).exists()
    attributes = campaign.attributes(new_a)
    assert attributes[ATTR_REPLACES] == old_a
    assert attributes[ATTR_REPLACED_SHA256].startswith(old_a.rsplit("-", 1)[1])
    assert datetime.fromisoformat(str(attributes[ATTR_REPLACED_AT])).tzinfo is not None
    np.testing.assert_array_equal(campaign.open(new_a)["cube"].values, small_cube(seed=11).astype(np.float32))
    # The stored statistics covered the old acquisition: they are recomputed, equal to a fresh computation.
    updated = update_campaign_statistics(campaign, n_bins=16)
    assert (
        sorted(updated.acquisition_ids) == campaign.ids() and sorted(updated.computed_ids) == campaign.ids()
    )
    fresh = compute_statistics(campaign, n_bins=16)
    np.testing.assert_array_equal(updated.stats.counts, fresh.counts)
    np.testing.assert_allclose(updated.stats.class_means, fresh.class_means, rtol=1e-12)
    np.testing.assert_array_equal(updated.stats.histograms, fresh.histograms)


def test_a_file_changed_into_another_files_content_is_stored_once(archive: Path, tmp_path: Path) -> None:
    store = tmp_path / "store.zarr"
    old_a, old_b, _ = _ingest(archive, store).added
    shutil.copy(archive / "b.npz", archive / "a.npz")
    report = _ingest(archive, store)
    assert report.added == [] and report.already_present == [old_b]
    assert [(r.previous_id, r.acquisition_id) for r in report.replaced] == [(old_a, old_b)]
    assert old_a not in open_campaign(store).ids() and len(open_campaign(store)) == 2
    # b now changes: its old acquisition is still a's content, so it stays; b's new content is added.
    _scene(archive / "b.npz", 12)
    again = _ingest(archive, store)
    assert len(again.added) == 1 and again.replaced == []
    assert old_b in open_campaign(store).ids() and len(open_campaign(store)) == 3


def test_a_changed_file_that_no_longer_reads_keeps_its_acquisition(archive: Path, tmp_path: Path) -> None:
    store = tmp_path / "store.zarr"
    old_a = _ingest(archive, store).added[0]
    data = (archive / "a.npz").read_bytes()
    (archive / "a.npz").write_bytes(data[: len(data) // 2])
    report = _ingest(archive, store)
    assert [Path(f.path).name for f in report.failures] == ["a.npz"] and report.replaced == []
    assert old_a in open_campaign(store).ids()
    assert _ledger(store)[str((archive / "a.npz").resolve())]["acquisition_id"] == old_a
    _scene(archive / "a.npz", 21)
    assert [r.previous_id for r in _ingest(archive, store).replaced] == [old_a]


def test_a_file_gone_from_the_archive_is_kept_and_reported_missing(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store.zarr"
    ids = _ingest(archive, store).added
    kept = tmp_path / "b.npz"
    shutil.move(archive / "b.npz", kept)
    report = _ingest(archive, store)
    assert [(Path(m.path).name, m.acquisition_id) for m in report.missing] == [("b.npz", ids[1])]
    assert open_campaign(store).ids() == sorted(ids) and report.unchanged_files == 2
    shutil.copy(kept, archive / "b.npz")  # back, same bytes, a new modification time
    calls = _count_ingests(monkeypatch)
    back = _ingest(archive, store)
    assert back.missing == [] and back.unchanged_files == 3 and calls == []


def test_a_touched_file_is_not_read_again(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store.zarr"
    _ingest(archive, store)
    os.utime(archive / "a.npz", ns=(1, 1))
    calls = _count_ingests(monkeypatch)
    report = _ingest(archive, store)
    assert calls == [] and report.unchanged_files == 3
    assert _ledger(store)[str((archive / "a.npz").resolve())]["mtime_ns"] == 1


def test_a_lost_ledger_still_replaces_by_the_recorded_source_path(archive: Path, tmp_path: Path) -> None:
    store = tmp_path / "store.zarr"
    old_a = _ingest(archive, store).added[0]
    (store / LEDGER_NAME).write_text("{ damaged")
    _scene(archive / "a.npz", 31)
    report = _ingest(archive, store)
    assert [r.previous_id for r in report.replaced] == [old_a] and len(report.already_present) == 2
    assert len(open_campaign(store)) == 3


def test_an_acquisition_removed_by_hand_is_ingested_again(archive: Path, tmp_path: Path) -> None:
    store = tmp_path / "store.zarr"
    old_a = _ingest(archive, store).added[0]
    assert open_campaign(store).retire(old_a)
    report = _ingest(archive, store)
    assert report.added == [old_a] and report.unchanged_files == 2


def test_a_crash_between_retire_and_publish_leaves_neither_then_heals(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store.zarr"
    _old_a, old_b, old_c = _ingest(archive, store).added
    _scene(archive / "a.npz", 41)

    def killed(self: Campaign, staged: object) -> object:
        raise KeyboardInterrupt  # the process dies after the old group was retired

    monkeypatch.setattr(Campaign, "publish", killed)
    with pytest.raises(KeyboardInterrupt):
        _ingest(archive, store)
    monkeypatch.undo()
    assert open_campaign(store).ids() == sorted([old_b, old_c])  # a is absent, never both
    assert not any((store / ".staging").iterdir())
    report = _ingest(archive, store)
    assert len(report.added) == 1 and open_campaign(store).ids() == sorted([report.added[0], old_b, old_c])


def test_disk_full_stops_the_run_and_keeps_the_finished_files(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store.zarr"
    real = archive_module.ingest_files
    calls = []

    def full_after_first(paths, campaign, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(paths)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(paths, campaign, **kwargs)

    monkeypatch.setattr(archive_module, "ingest_files", full_after_first)
    with pytest.raises(ResourceError, match=r"free space.*ENOSPC"):
        _ingest(archive, store)
    assert len(open_campaign(store)) == 1 and list(_ledger(store)) == [str((archive / "a.npz").resolve())]


_KILLED_RUN = """
import os, signal, sys
import bandselect.store.archive as archive
real = archive.ingest_files
done = []

def ingest_then_die(paths, campaign, **kwargs):
    if done:  # the second file: killed before anything of it is written
        os.kill(os.getpid(), signal.SIGKILL)
    done.append(paths)
    return real(paths, campaign, **kwargs)

archive.ingest_files = ingest_then_die
archive.ingest_new_files(sys.argv[1], sys.argv[2], chunk_yx=4)
"""


def test_a_run_killed_after_the_first_file_redoes_only_the_others(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store.zarr"
    script = tmp_path / "killed_run.py"
    script.write_text(textwrap.dedent(_KILLED_RUN))
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, str(script), str(archive), str(store)], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    first = str((archive / "a.npz").resolve())
    assert list(_ledger(store)) == [first] and len(open_campaign(store)) == 1
    calls = _count_ingests(monkeypatch)
    report = _ingest(archive, store)
    assert sorted(p.name for p in calls) == ["b.npz", "c.npz"] and report.unchanged_files == 1
    uninterrupted = _ingest(archive, tmp_path / "uninterrupted.zarr")
    assert open_campaign(store).ids() == sorted(uninterrupted.added)
