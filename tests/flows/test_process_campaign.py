"""process_campaign over an archive folder: new files only, corrupt files skipped, exports new or changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from bandselect.export import published_config_hash, published_ids, read_composite
from bandselect.flows import ProcessCampaignConfig, load_config, process_campaign
from bandselect.store.archive import ingest_new_files
from bandselect.synthetic import make_scene

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def fixed_pipeline(targets: tuple[float, float, float]) -> dict[str, object]:
    return {
        "nodes": {
            "rgb": {"type": "BaselineFalseRGBSelector", "config": {"target_wavelengths": list(targets)}}
        },
        "connections": [["data.cube", "rgb.cube"], ["data.wavelengths", "rgb.wavelengths"]],
    }


def write_scene(path: Path, seed: int, size: tuple[int, int] = (24, 32)) -> Path:
    scene = make_scene(*size, n_bands=16, seed=seed, anomaly_fraction=0.03)
    np.savez(path, cube=scene.cube, wavelengths_nm=scene.wavelengths_nm, mask=scene.mask.astype(np.uint8))
    return path


def write_truncated(path: Path) -> Path:
    write_scene(path, seed=99)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def fingerprints(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
    }


def test_incremental_runs_skip_corrupt_files_and_export_only_new(tmp_path: Path, mlflow_store: str) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    write_scene(archive / "scene_a.npz", 1)
    write_scene(archive / "scene_b.npz", 2)
    write_truncated(archive / "scene_broken.npz")
    sources = fingerprints(archive)
    work = tmp_path / "work"
    data = {
        "campaign": "camp-p",
        "archive": str(archive),
        "store": str(work / "store.zarr"),
        "output": str(work / "composites.zarr"),
        "pipeline": fixed_pipeline((650.0, 550.0, 450.0)),
        "statistics": {"n_bins": 64},
        "export": {"batch_size": 2},
        "tracking": {"tracking_uri": mlflow_store},
    }
    first = process_campaign(load_config(data, ProcessCampaignConfig))
    assert first.ingest is not None
    assert len(first.ingest.added) == 2
    (failure,) = first.ingest.failures
    assert failure.path.endswith("scene_broken.npz") and failure.error_type
    assert first.exported == {"published": 2, "replaced": 0, "skipped": 0}
    stamps = {i: read_composite(data["output"], i).attrs["exported_at"] for i in first.acquisition_ids}

    write_scene(archive / "scene_c.npz", 3)
    second = process_campaign(load_config(data, ProcessCampaignConfig))
    assert second.ingest is not None and len(second.ingest.added) == 1
    assert second.ingest.unchanged_files == 2 and len(second.ingest.failures) == 1
    assert second.exported == {"published": 1, "replaced": 0, "skipped": 2}
    assert len(published_ids(data["output"])) == 3
    for acquisition_id, stamp in stamps.items():  # finished composites are not rewritten
        assert read_composite(data["output"], acquisition_id).attrs["exported_at"] == stamp

    changed = {**data, "pipeline": fixed_pipeline((782.0, 550.0, 450.0))}
    third = process_campaign(load_config(changed, ProcessCampaignConfig))
    assert third.exported == {"published": 0, "replaced": 3, "skipped": 0}
    hashes = {published_config_hash(data["output"], i) for i in third.acquisition_ids}
    assert hashes == {third.config_hash}
    assert third.config_hash != first.config_hash
    assert fingerprints(archive) == {**sources, "scene_c.npz": fingerprints(archive)["scene_c.npz"]}

    # A changed archive file replaces its acquisition, and its old composite and preview go with it.
    old_ids = set(third.acquisition_ids)
    write_scene(archive / "scene_c.npz", 7)
    fourth = process_campaign(load_config(changed, ProcessCampaignConfig))
    assert fourth.ingest is not None
    (replacement,) = fourth.ingest.replaced
    assert replacement.previous_id in old_ids and replacement.acquisition_id not in old_ids
    assert set(published_ids(data["output"])) == (old_ids - {replacement.previous_id}) | {
        replacement.acquisition_id
    }
    assert fourth.exported == {"published": 1, "replaced": 0, "skipped": 2}
    if fourth.previews_dir:
        previews = {p.stem for p in Path(fourth.previews_dir).glob("*.png")}
        assert replacement.previous_id not in previews and replacement.acquisition_id in previews


def test_ingest_task_body_reports_per_file(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    write_scene(archive / "good.npz", 5)
    write_truncated(archive / "bad.npz")
    (archive / "notes.txt").write_text("ignored")
    report = ingest_new_files(archive, tmp_path / "store.zarr")
    assert len(report.added) == 1 and [Path(f.path).name for f in report.failures] == ["bad.npz"]
    again = ingest_new_files(archive, tmp_path / "store.zarr")
    assert again.added == [] and again.unchanged_files == 1 and len(again.failures) == 1


def test_deployment_parameters_are_a_complete_config(tmp_path: Path) -> None:
    parameters = {"campaign": "c", "archive": str(tmp_path), "store": "s.zarr", "output": "o.zarr"}
    config = load_config(parameters, ProcessCampaignConfig)
    assert config.pipeline_mapping()["nodes"]["selector"]["type"] == "SupervisedWindowedFalseRGBSelector"
    from bandselect.errors import ConfigError

    with pytest.raises(ConfigError, match="archive"):
        load_config({"campaign": "c", "store": "s.zarr", "output": "o.zarr"}, ProcessCampaignConfig)
