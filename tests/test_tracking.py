"""Tracking helpers against a real sqlite MLflow store under tmp_path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from bandselect import tracking
from bandselect.errors import BandSelectError, ShapeError

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One sqlite store for the module (creating the schema takes seconds)."""
    project = tmp_path_factory.mktemp("project")
    uri = tracking.tracking_uri_default(project)
    yield uri
    mlflow.set_tracking_uri("")


def _artifact_json(client: MlflowClient, run_id: str, path: str, tmp_path: Path) -> object:
    local = client.download_artifacts(run_id, path, str(tmp_path))
    return json.loads(Path(local).read_text())


def test_tracking_uri_default_is_absolute_sqlite(tmp_path: Path) -> None:
    uri = tracking.tracking_uri_default(tmp_path / "proj")
    assert uri == f"sqlite:///{(tmp_path / 'proj').resolve()}/.mlflow/mlflow.db"
    assert (tmp_path / "proj" / ".mlflow").is_dir()
    assert (
        tracking.artifact_location_for(uri)
        == ((tmp_path / "proj" / ".mlflow" / "artifacts").resolve()).as_uri()
    )
    assert tracking.artifact_location_for("http://127.0.0.1:5000") is None


def test_resolve_tracking_uri_prefers_config_then_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert tracking.resolve_tracking_uri("http://configured:5000", tmp_path) == "http://configured:5000"
    assert tracking.resolve_tracking_uri(None, tmp_path) == "http://tracking:5000"
    assert not (tmp_path / tracking.MLFLOW_DIRNAME).exists()  # the embedded store is not created
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking.resolve_tracking_uri("", tmp_path) == tracking.tracking_uri_default(tmp_path)


def test_flatten_params_nested_lists_and_scalars() -> None:
    flat = tracking.flatten_params(
        {
            "selector": {"k": 3, "windows": [[450, 500], [600, 650]], "opts": {}},
            "lr": 0.01,
            "on": True,
            "x": None,
        }
    )
    assert flat == {
        "selector.k": "3",
        "selector.windows": "[[450, 500], [600, 650]]",
        "selector.opts": "{}",
        "lr": "0.01",
        "on": "true",
        "x": "null",
    }
    assert tracking.flatten_params({"a": np.arange(3), "b": np.float32(1.5)}) == {
        "a": "[0, 1, 2]",
        "b": "1.5",
    }


def test_run_tags_params_selection_history(store: str, tmp_path: Path) -> None:
    long_list = list(range(3000))  # ~15k characters as JSON, beyond MLflow's param limit
    with tracking.start_run(
        "exp-a", run_name="r1", tags={"purpose": "test"}, campaign="camp-1", tracking_uri=store
    ) as run:
        logged = tracking.log_params_flat({"selector": {"k": 3, "long": long_list}, "trainer": {"epochs": 2}})
        content = tracking.log_selection(
            [4, 17, 30],
            [450.0, 550.5, 650.0],
            band_scores=np.linspace(0, 1, 5),
            objective=0.75,
            extra={"selector": "mrmr"},
        )
        n = tracking.log_history(
            [
                {"epoch": 0, "loss": 0.9, "auroc": 0.6, "temperature": 5.0, "weights": np.array([0.2, 0.8])},
                {"epoch": 1, "loss": 0.5, "auroc": None, "temperature": 2.5, "weights": np.array([0.1, 0.9])},
            ],
            band_labels=["b450nm", "b550nm"],
        )
        run_id = run.info.run_id
    assert n == 9

    client = MlflowClient(tracking_uri=store)
    data = client.get_run(run_id).data
    finished = client.get_run(run_id).info
    assert finished.status == "FINISHED"
    assert data.tags["bandselect.campaign"] == "camp-1"
    assert data.tags["purpose"] == "test"
    assert tracking.TAG_FLOW_RUN_ID not in data.tags  # not inside a Prefect flow run
    assert data.params["selector.k"] == "3"
    assert data.params["trainer.epochs"] == "2"
    assert len(data.params["selector.long"]) <= 6000
    assert data.params["selector.long"].endswith("...[truncated, full value in params.json]")
    assert logged["selector.long"] == data.params["selector.long"]
    assert json.loads(data.tags[tracking.TAG_TRUNCATED_PARAMS]) == ["selector.long"]
    full = _artifact_json(client, run_id, "params.json", tmp_path)
    assert full["selector"]["long"] == long_list

    assert data.params["selection.indices"] == "[4, 17, 30]"
    assert json.loads(data.params["selection.wavelengths_nm"]) == [450.0, 550.5, 650.0]
    assert data.tags["bandselect.selection.indices"] == "[4, 17, 30]"
    selection = _artifact_json(client, run_id, "selection.json", tmp_path)
    assert selection == content
    assert selection["indices"] == [4, 17, 30]
    assert selection["objective"] == 0.75
    assert selection["selector"] == "mrmr"
    assert len(selection["band_scores"]) == 5
    assert data.metrics["selection/objective"] == 0.75

    loss = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in sorted(loss, key=lambda m: m.step)] == [(0, 0.9), (1, 0.5)]
    assert [m.step for m in client.get_metric_history(run_id, "auroc")] == [0]
    weight = sorted(client.get_metric_history(run_id, "weight/b550nm"), key=lambda m: m.step)
    assert [m.value for m in weight] == pytest.approx([0.8, 0.9])
    temperature = client.get_metric_history(run_id, "temperature")
    assert sorted(m.value for m in temperature) == [2.5, 5.0]

    experiment = client.get_experiment_by_name("exp-a")
    db_dir = Path(store.removeprefix("sqlite:///")).parent
    assert experiment.artifact_location == (db_dir / "artifacts").as_uri()


def test_history_as_dict_of_series_and_default_labels(store: str) -> None:
    with tracking.start_run("exp-a", tracking_uri=store) as run:
        tracking.log_history({"loss": [3.0, 2.0, 1.0], "weights": [np.ones(12) * i for i in range(3)]})
    client = MlflowClient(tracking_uri=store)
    metrics = client.get_run(run.info.run_id).data.metrics
    assert metrics["loss"] == 1.0
    assert sorted(k for k in metrics if k.startswith("weight/"))[:2] == ["weight/00", "weight/01"]
    assert len([k for k in metrics if k.startswith("weight/")]) == 12
    assert len(client.get_metric_history(run.info.run_id, "weight/11")) == 3


def test_figure_file_and_directory_artifacts(store: str, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots()
    axis.plot([400, 500, 600], [0.1, 0.5, 0.2])
    pipeline_dir = tmp_path / "pipeline"
    pipeline_dir.mkdir()
    (pipeline_dir / "pipeline.yaml").write_text("nodes: {}\n")
    (pipeline_dir / "weights.pt").write_bytes(b"\x00")
    with tracking.start_run("exp-b", tracking_uri=store) as run:
        tracking.log_figure(fig, "plots/band_scores.png")
        tracking.log_file(pipeline_dir / "pipeline.yaml")
        tracking.log_directory(pipeline_dir, "pipeline")
    plt.close(fig)
    client = MlflowClient(tracking_uri=store)
    root = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"plots", "pipeline.yaml", "pipeline"} <= root
    assert {a.path for a in client.list_artifacts(run.info.run_id, "pipeline")} == {
        "pipeline/pipeline.yaml",
        "pipeline/weights.pt",
    }
    png = client.download_artifacts(run.info.run_id, "plots/band_scores.png", str(tmp_path))
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failed_block_marks_run_failed_and_helpers_need_a_run(store: str) -> None:
    with pytest.raises(RuntimeError, match="boom"), tracking.start_run("exp-a", tracking_uri=store) as run:
        raise RuntimeError("boom")
    assert MlflowClient(tracking_uri=store).get_run(run.info.run_id).info.status == "FAILED"
    with pytest.raises(BandSelectError, match="no active run"):
        tracking.log_params_flat({"a": 1})


def test_explicit_run_id_from_another_thread(store: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with tracking.start_run("exp-a", tracking_uri=store) as run, ThreadPoolExecutor(1) as pool:
        pool.submit(tracking.log_history, [{"loss": 1.0}], run_id=run.info.run_id).result()
    assert MlflowClient(tracking_uri=store).get_run(run.info.run_id).data.metrics["loss"] == 1.0


def test_bad_shapes_raise(store: str) -> None:
    with tracking.start_run("exp-a", tracking_uri=store):
        with pytest.raises(ShapeError, match="one wavelength per selected band"):
            tracking.log_selection([1, 2], [400.0, 500.0, 600.0])
        with pytest.raises(ShapeError, match="1-D sequence of integers"):
            tracking.log_selection([1.5, 2.0])
        with pytest.raises(ShapeError, match="scalar or a 1-D"):
            tracking.log_history([{"weights": np.ones((2, 3))}])
        with pytest.raises(ShapeError, match="same number of epochs"):
            tracking.log_history({"loss": [1.0, 2.0], "auroc": [0.5]})


def test_a_long_description_is_cut_at_a_line_and_says_where_the_whole_is() -> None:
    rows = "\n".join(f"| selector {i} | 0.9{i:03d} |" for i in range(2000))
    text = f"**Best** selector 0\n\n| name | auroc |\n|---|---|\n{rows}\n"
    cut = tracking.fit_description(text, "leaderboard.csv")
    assert len(cut) <= tracking.runs.MAX_TAG_VAL_LENGTH
    body, note = cut.rsplit("\n\n", 1)
    assert note == "*(shortened: the whole is in leaderboard.csv)*\n"
    assert text.startswith(body + "\n") and body.splitlines()[-1].startswith("| selector ")  # whole rows
    assert tracking.fit_description("short", "x") == "short"
