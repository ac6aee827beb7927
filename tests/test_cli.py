"""The bandselect command line: ingest, info, synth, demo, errors without tracebacks, --help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bandselect.cli import main
from bandselect.store import open_campaign


def cube_file(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        cube=rng.integers(0, 4000, (12, 10, 6)).astype(np.uint16),
        wavelengths_nm=np.linspace(450, 700, 6),
        gt=(rng.random((12, 10)) < 0.2).astype(np.int32),
    )
    return path


def test_ingest_prints_ids_and_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = cube_file(tmp_path / "a.npz"), cube_file(tmp_path / "b.npz", seed=1)
    store = tmp_path / "c.zarr"
    assert main(["ingest", str(a), str(b), "--store", str(store), "--chunk", "4", "--quiet"]) == 0
    out = capsys.readouterr().out
    ids = open_campaign(store).ids()
    assert len(ids) == 2 and all(i in out for i in ids)
    assert "2 added, 0 already present" in out
    assert main(["ingest", str(tmp_path), "--store", str(store), "--quiet"]) == 0
    assert "0 added, 2 already present" in capsys.readouterr().out
    assert open_campaign(store).open(ids[0])["cube"].data.chunks[0] == (4, 4, 4)


def test_ingest_with_wavelengths_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "c.npy", np.ones((4, 4, 3), dtype=np.float32))
    store = tmp_path / "c.zarr"
    assert (
        main(
            [
                "ingest",
                str(tmp_path / "c.npy"),
                "--store",
                str(store),
                "--wavelengths",
                "500,600,700",
                "--quiet",
            ]
        )
        == 0
    )
    [acquisition_id] = open_campaign(store).ids()
    np.testing.assert_array_equal(open_campaign(store).open(acquisition_id)["wavelength"], [500, 600, 700])


def test_bad_input_exits_2_with_the_message_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "c.npy", np.ones((4, 4, 3), dtype=np.float32))
    code = main(["ingest", str(tmp_path / "c.npy"), "--store", str(tmp_path / "c.zarr"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "bandselect ingest: error:" in err and "Fix:" in err and "--wavelengths" in err
    assert "Traceback" not in err
    assert not (tmp_path / "c.zarr").exists()
    assert main(["info", str(tmp_path / "nowhere.zarr")]) == 2
    assert "no such path" in capsys.readouterr().err


def test_info_lists_shapes_wavelengths_and_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "c.zarr"
    # Chunks of 4×4: the label counts and the invalid pixels are summed over several chunks.
    main(["ingest", str(cube_file(tmp_path / "a.npz")), "--store", str(store), "--chunk", "4", "--quiet"])
    capsys.readouterr()
    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    labels = np.load(tmp_path / "a.npz")["gt"]
    assert "1 acquisition" in out and "450.0–700.0 nm (6 bands)" in out and "12×10×6" in out
    assert f"0: {(labels == 0).sum()}, 1: {(labels == 1).sum()}" in out
    cube = np.ones((12, 10, 6), dtype=np.float32)
    cube[[0, 5, 11], [1, 9, 4], 2] = np.nan
    np.savez(tmp_path / "nan.npz", cube=cube, wavelengths_nm=np.linspace(450, 700, 6))
    args = ["ingest", str(tmp_path / "nan.npz"), "--store", str(store), "--chunk", "4", "--quiet"]
    assert main([*args, "--mask-nonfinite"]) == 0
    capsys.readouterr()
    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "2 acquisitions" in out and "no labels  3 invalid pixels" in out


def test_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "s.zarr"
    args = ["synth", str(store), "--acquisitions", "2", "--height", "16", "--width", "24", "--seed", "3"]
    assert main([*args, "--quiet"]) == 0
    ids = capsys.readouterr().out.split()
    assert ids == open_campaign(store).ids() and len(ids) == 2
    assert open_campaign(store).open(ids[0])["cube"].shape == (16, 24, 61)


@pytest.mark.slow
def test_demo_runs_the_main_flow_as_a_user_would(tmp_path: Path) -> None:
    # A subprocess, as a user runs it: the demo sets PREFECT_HOME and starts an ephemeral API, which
    # must not leak into the rest of the test session.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    completed = subprocess.run(
        [sys.executable, "-m", "bandselect.cli", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "3 acquisitions" in completed.stdout and "550 nm" in completed.stdout
    assert len(open_campaign(tmp_path / ".demo" / "campaign.zarr").ids()) == 3


def test_entry_point_help_reads_well() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bandselect.cli", "ingest", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0
    for text in ("--store STORE", "--wavelengths FILE_OR_LIST", "--mask-nonfinite", "ENVI", "writes nothing"):
        assert text in completed.stdout
