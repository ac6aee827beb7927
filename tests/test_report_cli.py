"""``bandselect report RUN_ID``: an HTML page from an MLflow run (no Prefect needed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from bandselect import tracking
from bandselect.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _figure(seed: int) -> Figure:
    fig = Figure(figsize=(3, 2))
    fig.add_subplot().imshow(np.random.default_rng(seed).random((8, 8)))
    return fig


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    import mlflow

    uri = tracking.tracking_uri_default(tmp_path / "project")
    yield uri
    mlflow.set_tracking_uri("")


def test_report_of_a_comparison_has_every_image_and_the_leaderboard(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    board = {
        "title": "Selector comparison, test <scene>",
        "measures": ["logistic_auroc"],
        "measure_labels": {"logistic_auroc": "logistic regression"},
        "summary": {},
        "columns": ["name", "logistic_auroc"],
        "table": [["sep_<b>", 0.99], ["all bands (10)", 0.98]],
        "rows": [],
    }
    with tracking.start_run("report-test", campaign="c1", tracking_uri=store) as parent:
        parent_id = parent.info.run_id
        client = MlflowClient(tracking_uri=store)
        client.log_dict(parent_id, board, "leaderboard.json")
        tracking.log_figure(_figure(0), "plots/leaderboard.png")
        tracking.log_figure(_figure(1), "plots/stability/sep.png")
        child = client.create_run(
            parent.info.experiment_id, run_name="sep_<b>", tags={"mlflow.parentRunId": parent_id}
        )
        tracking.log_selection([3, 1, 7], [430.0, 410.0, 470.0], run_id=child.info.run_id)
        tracking.log_figure(_figure(2), "plots/sep.png", run_id=child.info.run_id)
        client.log_metric(child.info.run_id, "logistic_auroc", 0.99)
        client.set_terminated(child.info.run_id)

    out = tmp_path / "page"
    assert main(["report", parent_id, "--tracking-uri", store, "--out", str(out)]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed == out / "report.html"
    page = printed.read_text()
    assert page.count("data:image/png;base64,") == 3
    assert "<td>sep_&lt;b&gt;</td>" in page and "<td>all bands (10)</td>" in page  # escaped
    assert "Selected bands: 3, 1, 7 (430.0, 410.0, 470.0 nm)" in page
    assert "Selector comparison, test &lt;scene&gt;" in page
    assert json.loads((out / "artifacts" / parent_id / "leaderboard.json").read_text())["columns"]


def test_report_of_a_multiclass_comparison_describes_its_classes(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It said "train None pixels (None positive)": the binary summary's keys, which a classification
    # (classes, block folds) does not have.
    from mlflow.tracking import MlflowClient

    summary = {"task": "multiclass", "height": 100, "width": 100, "n_bands": 198, "classes": [1, 2],
               "class_pixels": [60, 40], "labelled_pixels": 100, "ignore_label": 0, "folds": 5,
               "classifier": "logistic"}  # fmt: skip
    board = {
        "measures": ["overall_accuracy"],
        "summary": summary,
        "columns": ["name", "overall_accuracy", "stability index"],
        "table": [["sep_k3", 0.91, ""], ["all bands (198)", 0.98, ""]],  # no bootstrap: an empty column
        "rows": [],
    }
    with tracking.start_run("report-test", campaign="c2", tracking_uri=store) as parent:
        MlflowClient(tracking_uri=store).log_dict(parent.info.run_id, board, "leaderboard.json")
    out = tmp_path / "page"
    assert main(["report", parent.info.run_id, "--tracking-uri", store, "--out", str(out)]) == 0
    page = Path(capsys.readouterr().out.strip()).read_text()
    assert "100 labelled pixels in classes 1: 60, 2: 40 (label 0 counts nowhere); 5 block folds" in page
    assert "None pixels" not in page and "None positive" not in page
    assert "<th>overall_accuracy</th>" in page and "stability index" not in page  # no row fills it


def test_report_of_a_plain_run_lists_params_metrics_and_selection(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tracking.start_run("report-test", tracking_uri=store) as run:
        tracking.log_params_flat({"selector": {"k": 3}})
        tracking.log_selection([5, 2, 9], [450.0, 420.0, 490.0])
        tracking.log_history([{"loss": 0.5}])
        tracking.log_figure(_figure(0), "plots/band_scores.png")
    assert main(["report", run.info.run_id, "--tracking-uri", store, "--out", str(tmp_path / "r")]) == 0
    page = Path(capsys.readouterr().out.strip()).read_text()
    assert "<td>selector.k</td>" in page and "<td>loss</td>" in page
    assert "Selected bands: 5, 2, 9" in page
    assert page.count("data:image/png;base64,") == 1


def test_report_of_an_unknown_run_is_an_input_error(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tracking.start_run("report-test", tracking_uri=store):
        pass
    code = main(["report", "0" * 32, "--tracking-uri", store, "--out", str(tmp_path / "x")])
    assert code == 2
    error = capsys.readouterr().err
    assert "bandselect report: error" in error and "--tracking-uri" in error
