"""Reliability of process_campaign in real processes: kill -9 during export, two runs at once.

The flows run in subprocesses that report to the session's Prefect test server (its API URL is passed in
the environment) and log to a sqlite MLflow store under ``tmp_path``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bandselect.export import ATTR_EXPORTED_AT, VAR_COMPOSITE, published_ids, read_composite
from bandselect.store import open_campaign
from bandselect.store.campaign import STAGING_DIR
from bandselect.synthetic import make_scene

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

N_SCENES = 6

DRIVER = """
import json, sys, time
config = json.loads(sys.argv[1])
slow_s = float(sys.argv[2])
if slow_s:
    import bandselect.export as export
    original = export._write_composite
    def slow_write(*args, **kwargs):
        time.sleep(slow_s)  # a slow disk: leaves time to kill the run mid-export
        return original(*args, **kwargs)
    export._write_composite = slow_write
from bandselect.flows import process_campaign
summary = process_campaign(config)
print("SUMMARY " + json.dumps({"exported": summary.exported, "ids": summary.acquisition_ids}))
"""


def _archive(folder: Path) -> Path:
    folder.mkdir()
    for index in range(N_SCENES):
        scene = make_scene(24, 32, n_bands=16, seed=index, anomaly_fraction=0.03)
        np.savez(
            folder / f"scene_{index}.npz",
            cube=scene.cube,
            wavelengths_nm=scene.wavelengths_nm,
            mask=scene.mask.astype(np.uint8),
        )
    return folder


def _config(tmp_path: Path, archive: Path, uri: str) -> dict[str, object]:
    return {
        "campaign": "camp-r",
        "archive": str(archive),
        "store": str(tmp_path / "work" / "store.zarr"),
        "output": str(tmp_path / "work" / "composites.zarr"),
        "pipeline": {
            "nodes": {"rgb": {"type": "BaselineFalseRGBSelector", "config": {}}},
            "connections": [["data.cube", "rgb.cube"], ["data.wavelengths", "rgb.wavelengths"]],
        },
        "statistics": {"n_bins": 64},
        "export": {"batch_size": 1},
        "tracking": {"tracking_uri": uri},
        "lock_timeout_s": 240,
    }


def _start(tmp_path: Path, config: dict[str, object], slow_s: float = 0.0) -> subprocess.Popen[str]:
    from prefect.settings import get_current_settings

    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "PREFECT_API_URL": str(get_current_settings().api.url)}
    return subprocess.Popen(
        [sys.executable, str(script), json.dumps(config), str(slow_s)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _finish(process: subprocess.Popen[str], timeout_s: float = 240) -> dict[str, object]:
    output, _ = process.communicate(timeout=timeout_s)
    assert process.returncode == 0, output[-4000:]
    line = next(line for line in output.splitlines() if line.startswith("SUMMARY "))
    return json.loads(line.removeprefix("SUMMARY "))


def _fingerprints(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
    }


def _check_output_consistent(config: dict[str, object]) -> None:
    store, output = open_campaign(str(config["store"])), Path(str(config["output"]))
    ids = store.ids()
    assert len(ids) == N_SCENES
    assert published_ids(output) == ids  # each acquisition once, nothing else
    for acquisition_id in ids:
        composite = read_composite(output, acquisition_id)
        bands = [int(b) for b in composite["band"].values]
        expected = store.open(acquisition_id)["cube"].values[:, :, bands]
        np.testing.assert_array_equal(composite[VAR_COMPOSITE].values, expected)
    staging = output / STAGING_DIR
    assert not staging.exists() or os.listdir(staging) == []


def test_kill_during_export_then_rerun(tmp_path: Path, mlflow_store: str) -> None:
    archive = _archive(tmp_path / "archive")
    sources = _fingerprints(archive)
    config = _config(tmp_path, archive, mlflow_store)
    config["export"] = {"batch_size": N_SCENES}  # one batch: its acquisitions are published one by one
    output = Path(str(config["output"]))
    process = _start(tmp_path, config, slow_s=1.0)
    deadline = time.monotonic() + 180
    while len(published_ids(output)) < 2:
        assert process.poll() is None, process.communicate()[0][-4000:]
        assert time.monotonic() < deadline, "the flow did not publish two composites in time"
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    done = published_ids(output)
    assert 2 <= len(done) < N_SCENES
    stamps = {i: read_composite(output, i).attrs[ATTR_EXPORTED_AT] for i in done}

    rerun = _finish(_start(tmp_path, config))
    assert rerun["exported"]["skipped"] == len(done)
    assert rerun["exported"]["published"] == N_SCENES - len(done)
    for acquisition_id, stamp in stamps.items():  # finished work is not recomputed
        assert read_composite(output, acquisition_id).attrs[ATTR_EXPORTED_AT] == stamp
    _check_output_consistent(config)
    assert _fingerprints(archive) == sources


def test_two_runs_at_once(tmp_path: Path, mlflow_store: str) -> None:
    archive = _archive(tmp_path / "archive")
    sources = _fingerprints(archive)
    config = _config(tmp_path, archive, mlflow_store)
    first, second = _start(tmp_path, config), _start(tmp_path, config)
    results = [_finish(first), _finish(second)]
    published = sorted(result["exported"]["published"] for result in results)
    skipped = sorted(result["exported"]["skipped"] for result in results)
    assert published == [0, N_SCENES] and skipped == [0, N_SCENES]  # one did the work, one found it done
    _check_output_consistent(config)
    assert _fingerprints(archive) == sources
