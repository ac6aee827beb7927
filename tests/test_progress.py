"""Progress reports: log lines, context-local sinks, epoch lines naming bands by wavelength, the CLI bar."""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from bandselect.progress import (
    EPOCH_STEP,
    LOGGER_NAME,
    TerminalBar,
    band_labels,
    epoch_message,
    progress_sink,
    report,
)
from bandselect.synthetic import make_scene
from bandselect.training import TrainingData, train_two_phase
from bandselect.training.records import EpochRecord


class Collect:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int, int, str]] = []

    def update(self, step: str, done: int, total: int, message: str) -> None:
        self.seen.append((step, done, total, message))


def test_reports_log_and_reach_only_the_sinks_of_their_context(caplog: pytest.LogCaptureFixture) -> None:
    outer, inner = Collect(), Collect()
    other_thread: list[Collect] = []
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME), progress_sink(outer):
        report("comparison", 1, 3, "a")
        with progress_sink(inner):
            report("comparison", 2, 3, "b")
        report("comparison", 3, 3, "c")

        def elsewhere() -> None:  # another thread has its own context: no sink of this one
            sink = Collect()
            other_thread.append(sink)
            report("comparison", 1, 1, "thread")

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
    assert [s[1] for s in outer.seen] == [1, 2, 3] and [s[3] for s in inner.seen] == ["b"]
    assert other_thread[0].seen == []
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME][:3] == [
        "comparison 1/3: a",
        "comparison 2/3: b",
        "comparison 3/3: c",
    ]


def test_epoch_message_names_the_top_bands_by_wavelength() -> None:
    record = EpochRecord(
        epoch=4,
        loss=0.25,
        val_loss=None,
        metrics={"rx.auroc": 0.91234},
        temperature={"selector": 2.5},
        weights={"selector": (0.0, 1.0, 0.2, 0.9, 0.9)},
        best=True,
    )
    with band_labels([400.0, 450.0, 500.0, 550.0, 600.0]):
        line = epoch_message(record)
    assert line == "loss 0.25, rx.auroc 0.9123, T 2.5, top bands 450.0 nm, 550.0 nm, 600.0 nm, best so far"
    assert "top bands band 1, band 3, band 4" in epoch_message(record)  # no grid known: indices


def test_training_reports_every_epoch_with_its_loss() -> None:
    scene = make_scene(32, 32, n_bands=8, seed=0, anomaly_fraction=0.05)
    data = TrainingData.from_arrays(scene.cube, scene.mask, wavelengths_nm=scene.wavelengths_nm)
    sink = Collect()
    options = {"epochs": 3, "patch_size": 16, "batches_per_epoch": 1, "device": "cpu", "monitor": None}
    with progress_sink(sink), band_labels(scene.wavelengths_nm):
        result = train_two_phase(None, data, options, evaluate=False)
    epochs = [s for s in sink.seen if s[0] == EPOCH_STEP]
    assert [(done, total) for _, done, total, _ in epochs] == [(1, 3), (2, 3), (3, 3)]
    for (_, _, _, message), record in zip(epochs, result.history, strict=True):
        assert message.startswith(f"loss {record.loss:.4g}") and " nm" in message
    top = int(np.argmax(result.history[-1].weights["selector"]))
    assert f"top bands {scene.wavelengths_nm[top]:.1f} nm" in epochs[-1][3]


def test_terminal_bar_redraws_in_place_and_ends_the_line_when_done() -> None:
    stream = io.StringIO()
    bar = TerminalBar(stream, width=10)
    bar.update("training epoch", 1, 4, "x")
    bar.update("training epoch", 4, 4, "y")
    assert stream.getvalue() == "\rtraining epoch [##--------] 1/4\rtraining epoch [##########] 4/4\n"


def test_statistics_and_ingest_report_their_progress(tmp_path: Path) -> None:
    from bandselect.stats import compute_statistics
    from bandselect.store import ingest_files
    from bandselect.store.campaign import open_campaign

    rng = np.random.default_rng(0)
    files = []
    for index in range(3):
        path = tmp_path / f"scene{index}.npz"
        np.savez(
            path, cube=rng.random((16, 16, 6), dtype=np.float32), wavelengths_nm=np.linspace(450, 900, 6)
        )
        files.append(path)
    sink = Collect()
    with progress_sink(sink):
        ingest_files(files, tmp_path / "store.zarr")
        compute_statistics(open_campaign(tmp_path / "store.zarr"), n_bins=8)
    ingest = [s for s in sink.seen if s[0] == "ingest"]
    assert [(done, total) for _, done, total, _ in ingest] == [(1, 3), (2, 3), (3, 3)]
    assert ingest[0][3].startswith("scene0.npz")
    statistics = [s for s in sink.seen if s[0] == "statistics"]
    assert statistics and statistics[-1][1] == statistics[-1][2]  # ends at every task done
    assert len(statistics) <= 10  # a tenth of the job per report at most
