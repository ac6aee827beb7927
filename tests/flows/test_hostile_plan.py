"""Configuration errors fail in the plan: typed, fast, before anything is ingested, computed or created.

Each case runs the select-bands flow (real ephemeral Prefect) with one thing wrong and asserts the error
type and its message parts, that the run took seconds, that no output store, work folder, lock file or
MLflow run was created, and that the campaign store is byte-for-byte unchanged.
"""

from __future__ import annotations

import hashlib
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from bandselect.errors import (
    ConfigError,
    FileFormatError,
    PipelineError,
    ResourceError,
    ShapeError,
    StoreError,
    WavelengthError,
)
from bandselect.flows import load_config, select_bands
from bandselect.flows.config import SelectBandsConfig
from bandselect.synthetic import write_campaign

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

CONNECT = [["data.cube", "s.cube"], ["data.wavelengths", "s.wavelengths"], ["data.mask", "s.mask"]]


def _node(kind: str, connections: list[list[str]] | None = None, **config: Any) -> dict[str, Any]:
    return {"nodes": {"s": {"type": kind, "config": config}}, "connections": connections or CONNECT}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SOFT_TO_RX = {
    "nodes": {
        "s": {"type": "SoftChannelSelector", "config": {"n_select": 3, "input_channels": "auto"}},
        "rx": {"type": "RXDetector", "config": {"input_channels": 5}},
    },
    "connections": [["data.cube", "s.data"], ["s.selected", "rx.data"]],
}

# name -> (overrides of the flow config, error type, fragments of the message)
CASES: dict[str, tuple[dict[str, Any], type[Exception], tuple[str, ...]]] = {
    "soft-input-channels": (
        {"pipeline": _node("SoftChannelSelector", [["data.cube", "s.data"]], n_select=3, input_channels=10)},
        ShapeError,
        ("C=10", "C=24", "'s'"),
    ),
    "k-above-bands": (
        {"pipeline": _node("SupervisedFullSpectrumBandSelector", num_spectral_bands="auto", k=80)},
        ConfigError,
        ("'k'", "80", "24"),
    ),
    "window-outside-sensor": (
        {
            "pipeline": _node(
                "SupervisedWindowedFalseRGBSelector",
                num_spectral_bands="auto",
                windows=[[440, 500], [500, 580], [1500, 1600]],
            )
        },
        WavelengthError,
        ("1500", "430.0–910.0 nm"),
    ),
    "target-outside-sensor": (
        {
            "pipeline": _node(
                "BaselineFalseRGBSelector",
                [["data.cube", "s.cube"], ["data.wavelengths", "s.wavelengths"]],
                target_wavelengths=[1650.0, 550.0, 450.0],
            )
        },
        WavelengthError,
        ("1650", "sensor covers"),
    ),
    "composite-of-two-bands": (
        {
            "pipeline": _node(
                "FixedWavelengthSelector",
                [["data.cube", "s.cube"], ["data.wavelengths", "s.wavelengths"]],
                target_wavelengths=[650.0, 550.0],
            )
        },
        ConfigError,
        ("composite", "bands"),
    ),
    "channels-between-nodes": (
        {"pipeline": SOFT_TO_RX},
        PipelineError,
        ("s.selected", "rx.data", "5)", "24)"),
    ),
    "unknown-node-type": (
        {"pipeline": _node("NoSuchSelector", num_spectral_bands="auto")},
        ConfigError,
        ("NoSuchSelector",),
    ),
    "unknown-port": (
        {
            "pipeline": _node(
                "SupervisedFullSpectrumBandSelector", [["data.cube", "s.nope"]], num_spectral_bands="auto"
            )
        },
        PipelineError,
        ("nope",),
    ),
    "unknown-selector-name": (
        {"selector": "nobody"},
        PipelineError,
        ("nobody",),
    ),
    "scheduler-unreachable": (
        {"statistics": {"scheduler_address": f"tcp://127.0.0.1:{_closed_port()}"}},
        ResourceError,
        ("Dask scheduler", "unset statistics.scheduler_address"),
    ),
}


def _tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        digest.update(str(item.relative_to(path)).encode())
        if item.is_file():
            digest.update(item.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "campaign.zarr"
    write_campaign(path, 2, 32, 32, n_bands=24, chunk_yx=16, anomaly_fraction=0.03)
    return path


def _run(config: dict[str, Any]) -> None:
    select_bands(load_config(config, SelectBandsConfig))


def _base(store: Path, tmp_path: Path) -> dict[str, Any]:
    return {
        "campaign": "plan",
        "store": str(store),
        "output": str(tmp_path / "out" / "composites.zarr"),
        "tracking": {"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment": "plan"},
    }


def _assert_nothing_created(tmp_path: Path, store: Path, before: str) -> None:
    assert not (tmp_path / "out").exists(), sorted(p.name for p in (tmp_path / "out").iterdir())
    assert not list(store.parent.glob("*.lock")), "no lock file"
    assert _tree_digest(store) == before, "the campaign store is unchanged"
    database = tmp_path / "mlflow.db"
    if database.exists():
        runs = MlflowClient(tracking_uri=f"sqlite:///{database}").search_runs(["0", "1"])
        assert runs == [], [r.info.run_name for r in runs]


def test_warm_up(store: Path, tmp_path: Path) -> None:
    """A good run first: starts the ephemeral API, so the timings below are the plan's."""
    config = {**_base(store, tmp_path), "output": str(tmp_path / "good.zarr")}
    _run(config)
    for lock in store.parent.glob("*.lock"):
        lock.unlink()  # left by design after a successful run; the cases below must create none


@pytest.mark.parametrize("case", CASES, ids=str)
def test_configuration_errors_fail_in_the_plan(store: Path, tmp_path: Path, case: str) -> None:
    overrides, error_type, fragments = CASES[case]
    before = _tree_digest(store)
    started = time.perf_counter()
    with pytest.raises(error_type) as caught:
        _run({**_base(store, tmp_path), **overrides})
    elapsed = time.perf_counter() - started
    message = str(caught.value)
    assert all(fragment in message for fragment in fragments), message
    assert "expected" in message and "Fix:" in message, message
    assert elapsed < 30, f"{elapsed:.1f} s: the plan must fail before the statistics"
    _assert_nothing_created(tmp_path, store, before)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_training_without_a_gpu_fails_in_the_plan(store: Path, tmp_path: Path) -> None:
    from bandselect.flows.config import DEMO_PIPELINE

    before = _tree_digest(store)
    with pytest.raises(ResourceError, match="no CUDA device"):
        _run({**_base(store, tmp_path), "pipeline": DEMO_PIPELINE, "training": {"device": "cuda"}})
    _assert_nothing_created(tmp_path, store, before)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_statistics_device_this_machine_lacks_fails_in_the_plan(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In process, the statistics device is resolved before any work, not inside every Dask task.
    before = _tree_digest(store)
    with pytest.raises(ConfigError, match="a CUDA device this machine has"):
        _run({**_base(store, tmp_path), "statistics": {"device": "cuda"}})
    monkeypatch.setenv("BANDSELECT_STATISTICS_DEVICE", "gpu")  # the environment's is checked too
    with pytest.raises(ConfigError, match="found 'gpu'"):
        _run(_base(store, tmp_path))
    _assert_nothing_created(tmp_path, store, before)


def test_outputs_that_cannot_be_written_fail_in_the_plan(store: Path, tmp_path: Path) -> None:
    before = _tree_digest(store)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="not a folder"):
        _run({**_base(store, tmp_path), "output": str(blocker / "composites.zarr")})
    other = tmp_path / "other-campaign.zarr"
    write_campaign(other, 1, 8, 8, n_bands=24)
    with pytest.raises(StoreError, match="composites store"):
        _run({**_base(store, tmp_path), "output": str(other)})  # a campaign store is no composites store
    _assert_nothing_created(tmp_path, store, before)


def test_a_new_store_from_an_unreadable_archive_fails_in_the_plan(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "broken.npz").write_bytes(b"not a zip file")
    np.save(archive / "cube.npy", np.zeros((4, 4, 3), np.float32))  # .npy without wavelengths
    store = tmp_path / "new.zarr"
    config = {**_base(store, tmp_path), "archive": str(archive)}
    with pytest.raises(FileFormatError, match="none readable"):
        _run(config)
    assert not store.exists() and not (tmp_path / "out").exists()


def test_bins_are_bounded_before_the_flow() -> None:
    with pytest.raises(ConfigError, match="n_bins"):
        load_config(
            {"campaign": "c", "store": "s.zarr", "output": "o.zarr", "statistics": {"n_bins": 10**12}},
            SelectBandsConfig,
        )
