"""The bandselect command line: ingest (every format and option), info, synth, demo, run (the seed's
"3-10 channels" use case end to end), errors without tracebacks, --help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from spectral.io import envi

from bandselect.cli import main
from bandselect.names import ATTR_INGEST_WARNINGS, ATTR_SOURCE_BYTE_ORDER
from bandselect.products import read_bands
from bandselect.store import open_campaign

#: The synthetic VNIR grid of the seed's use case: 61 bands, 430-910 nm.
GRID_61 = np.linspace(430.0, 910.0, 61)
MAP_INFO = "{UTM, 1.0, 1.0, 500000.0, 4100000.0, 2.0, 2.0, 33, North, WGS-84, units=Meters}"


def user_environment() -> dict[str, str]:
    """The environment of a user's shell: no Prefect/MLflow settings of the test session. The ephemeral
    Prefect server gets 3 minutes to start (20 s by default), which a loaded 2-core CI machine can need."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
    return env


def envi_scene(folder: Path, name: str, seed: int, *, byte_order: bool = False) -> Path:
    """An ENVI scene as PlantCV writes them: no 'byte order' line (unless asked), with map info."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cube = rng.integers(0, 4000, (16, 12, 61)).astype(np.uint16)
    header = folder / f"{name}.hdr"
    metadata = {"wavelength": list(GRID_61), "wavelength units": "nm", "map info": MAP_INFO}
    envi.save_image(str(header), cube, interleave="bil", ext=".raw", metadata=metadata, force=True)
    if not byte_order:
        lines = [line for line in header.read_text().splitlines() if not line.startswith("byte order")]
        header.write_text("\n".join(lines) + "\n")
    return header


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


def test_ingest_options_for_envi_and_gdal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header = envi_scene(tmp_path / "in", "plantcv", 0)
    store = tmp_path / "c.zarr"
    assert main(["ingest", str(header), "--store", str(store), "--quiet"]) == 0  # was exit 2 in the seed
    [first] = open_campaign(store).ids()
    attrs = open_campaign(store).open(first).attrs
    assert attrs[ATTR_SOURCE_BYTE_ORDER] == "little" and "ENVI default" in attrs[ATTR_INGEST_WARNINGS][0]
    other = tmp_path / "other.zarr"
    assert main(["ingest", str(header), "--store", str(other), "--byte-order", "big", "--quiet"]) == 0
    [swapped] = open_campaign(other).ids()
    assert swapped != first  # other values: another acquisition
    through_gdal = tmp_path / "gdal.zarr"
    assert main(["ingest", str(header), "--store", str(through_gdal), "--reader", "gdal", "--quiet"]) == 0
    [via_gdal] = open_campaign(through_gdal).ids()
    assert via_gdal.rsplit("-", 1)[1] == first.rsplit("-", 1)[1]  # the same content either way
    data = header.with_suffix(".raw")
    data.write_bytes(data.read_bytes() + b"\0" * 100)
    capsys.readouterr()
    assert main(["ingest", str(header), "--store", str(tmp_path / "t.zarr"), "--quiet"]) == 2
    assert "--allow-trailing-bytes" in capsys.readouterr().err
    args = ["ingest", str(header), "--store", str(tmp_path / "t.zarr"), "--allow-trailing-bytes", "--quiet"]
    assert main(args) == 0


def test_a_long_wavelength_list_on_the_command_line(tmp_path: Path) -> None:
    grid = np.round(np.linspace(400.0, 2500.0, 224), 4)
    np.save(tmp_path / "c.npy", np.ones((4, 4, 224), dtype=np.float32))
    listing = ",".join(str(v) for v in grid)  # the documented form; >60 values used to be an OSError
    args = ["ingest", str(tmp_path / "c.npy"), "--store", str(tmp_path / "c.zarr"), "--wavelengths", listing]
    assert main([*args, "--quiet"]) == 0
    [acquisition_id] = open_campaign(tmp_path / "c.zarr").ids()
    np.testing.assert_array_equal(open_campaign(tmp_path / "c.zarr").open(acquisition_id)["wavelength"], grid)


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
    env = user_environment()
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
    # The demo's selector starts uniform: no statistical initialisation to claim (the line said one).
    assert "SoftChannelSelector, gradient training from the uniform start)" in completed.stdout
    assert len(open_campaign(tmp_path / ".demo" / "campaign.zarr").ids()) == 3
    # The MLflow hint can be pasted in the folder the user ran from (it said `.venv/bin/mlflow`, which
    # exists only in the repository root).
    browse = next(line for line in completed.stdout.splitlines() if "browse:" in line)
    command = Path(browse.split("browse:")[1].split()[0])
    assert command.is_absolute() and command.is_file(), browse
    # ... and the page to open is the run itself, in the UI's "Model training" view.
    then = next(line for line in completed.stdout.splitlines() if "then open" in line)
    assert "/#/experiments/" in then and "/runs/" in then and "workflowType=machine_learning" in then, then


def test_entry_point_help_reads_well() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bandselect.cli", "ingest", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0
    for text in (
        "--store STORE",
        "--wavelengths FILE_OR_LIST",
        "--mask-nonfinite",
        "--byte-order {little,big}",
        "--allow-trailing-bytes",
        "--reader {auto,gdal}",
        "ENVI",
        "GeoTIFF",
        "HDF5",
        "v7.3",
        "writes nothing",
    ):
        assert text in completed.stdout


@pytest.mark.slow
def test_the_seeds_use_case_from_the_command_line(tmp_path: Path) -> None:
    """ "Reduce 61+ channels to manageable subsets (3-10 channels)": an archive of ENVI scenes (as PlantCV
    writes them) → `bandselect run` → a 5-band cube per acquisition, in zarr and as georeferenced COGs."""
    for index in range(2):
        envi_scene(tmp_path / "archive" / f"day{index}", f"scene{index}", index)
    config = tmp_path / "five_bands.yaml"
    config.write_text(
        """\
campaign: seed-use-case
archive: archive
store: campaign.zarr
output: five-bands.zarr
pipeline:
  nodes:
    selector:
      type: FixedWavelengthSelector
      config: {target_wavelengths: [450, 550, 650, 750, 850]}
  connections:
    - [data.cube, selector.cube]
    - [data.wavelengths, selector.wavelengths]
statistics: {n_bins: 64}
export: {products: [bands], geotiff: cog}
"""
    )
    env = user_environment()
    completed = subprocess.run(
        [sys.executable, "-m", "bandselect.cli", "run", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "k-band cubes:" in completed.stdout and "2 published" in completed.stdout
    assert "composite channels" not in completed.stdout  # no composite asked for
    ids = open_campaign(tmp_path / "campaign.zarr").ids()
    assert len(ids) == 2
    expected = [int(np.argmin(np.abs(GRID_61 - target))) for target in (450, 550, 650, 750, 850)]
    for acquisition_id in ids:
        product = read_bands(tmp_path / "five-bands.zarr", acquisition_id)
        assert product["cube"].shape == (16, 12, 5)
        np.testing.assert_array_equal(product["wavelength"].values, GRID_61[expected])
        with rasterio.open(tmp_path / "five-bands-geotiff" / "bands" / f"{acquisition_id}.tif") as dataset:
            assert dataset.count == 5 and dataset.crs == CRS.from_epsg(32633)
            assert tuple(dataset.transform)[:6] == (2.0, 0.0, 500000.0, 0.0, -2.0, 4100000.0)
            assert dataset.descriptions == tuple(f"{w:g} nm" for w in GRID_61[expected])


def test_progress_lines_outside_a_flow_run_do_not_warn(tmp_path: Path) -> None:
    # A notebook that ran a flow, then trains in the notebook: the epoch lines are logged outside any
    # flow run, where Prefect's API log handler warned on each one ("attempted to send logs to the API
    # without a flow run id").
    script = (
        "import bandselect.flows\n"
        "from prefect import flow\n"
        "flow(lambda: 1, name='notebook-flow')()\n"
        "from bandselect.progress import report\n"
        "report('epoch', 1, 2, 'loss 0.5')\n"
    )
    env = user_environment() | {"PREFECT_HOME": str(tmp_path / "prefect")}
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    output = completed.stdout + completed.stderr
    assert "epoch 1/2: loss 0.5" in output  # still on the console
    assert "without a flow run id" not in output


def test_the_comparison_summary_prints_the_leaderboards_own_measures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A multi-class leaderboard ranks by accuracy and kappa: its lines printed no score at all (only
    # keys ending in "auroc" were shown).
    from bandselect.cli import _print_comparison
    from bandselect.flows.compare_selectors import ComparisonResult

    record = {"name": "separability_k3", "status": "ok", "wavelengths_nm": [482.0, 724.0, 1652.0]}
    result = ComparisonResult(
        parent_run_id="abc",
        child_run_ids={},
        tracking_uri="sqlite:///x.db",
        output_dir=tmp_path,
        leaderboard_json=tmp_path / "leaderboard.json",
        table_artifact_key="t",
        records=[{**record, "overall_accuracy": 0.9132, "kappa": 0.8711, "kappa_std": 0.01}],
        measures=["overall_accuracy", "kappa"],
    )
    _print_comparison(result)
    out = capsys.readouterr().out.splitlines()
    line = next(line for line in out if "separability_k3" in line)
    assert "overall_accuracy 0.9132, kappa 0.8711" in line and "bands 482, 724, 1652 nm" in line
    assert next(line for line in out if line.startswith("files:")).split()[-1] == str(tmp_path.resolve())
    # The parent run's page: served by `mlflow ui` for a local store, opened directly on a server.
    local = result.model_copy(update={"mlflow_link": "http://127.0.0.1:5000/#/experiments/1/runs/abc"})
    _print_comparison(local)
    out = capsys.readouterr().out
    assert "browse:  " in out and "ui --backend-store-uri sqlite:///x.db" in out
    assert "then open http://127.0.0.1:5000/#/experiments/1/runs/abc" in out
    served = local.model_copy(
        update={"tracking_uri": "http://mlflow:5000", "mlflow_link": "http://mlflow:5000/#/r"}
    )
    _print_comparison(served)
    out = capsys.readouterr().out
    assert "  open:    http://mlflow:5000/#/r" in out and "browse:" not in out
    # A store no server serves (a folder, a database) gets the serving command too, quoted.
    folder = local.model_copy(update={"tracking_uri": "file:///tmp/my runs"})
    _print_comparison(folder)
    out = capsys.readouterr().out
    assert "ui --backend-store-uri 'file:///tmp/my runs'" in out and "  open:" not in out


def test_the_executable_exits_with_mains_code_and_a_frozen_heap(tmp_path: Path) -> None:
    """`bandselect` is console_main: main's exit code, and the heap frozen so the interpreter's exit
    skips its collections over torch's, MLflow's and Prefect's objects (timed in bench_small_run)."""
    import importlib.metadata

    (script,) = [
        e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "bandselect"
    ]
    assert script.value == "bandselect.cli:console_main"
    probe = (
        "import gc, sys\n"
        "from bandselect.cli import console_main\n"
        "sys.argv = ['bandselect', 'info', sys.argv[1]]\n"
        "code = console_main()\n"
        "print(code, gc.get_freeze_count() > 0)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "missing.zarr")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    code, frozen = completed.stdout.split()
    assert int(code) != 0 and frozen == "True", completed.stderr  # a missing store: an input error
