"""select_bands on a tiny synthetic campaign: real ephemeral Prefect, real sqlite MLflow under tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from matplotlib import image as mpl_image
from mlflow.tracking import MlflowClient

from bandselect import tracking
from bandselect.errors import ConfigError
from bandselect.export import published_config_hash, published_ids, read_composite
from bandselect.flows import SelectBandsConfig, load_config, select_bands
from bandselect.flows.config import DEMO_PIPELINE
from bandselect.reports.markdown import search_note
from bandselect.store import open_campaign
from bandselect.synthetic import write_campaign
from bandselect.tracking.flow_run import SELECTED_TEST_AUROC, SELECTED_VAL_AUROC

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("select") / "campaign.zarr"
    write_campaign(path, 2, 40, 48, n_bands=24, chunk_yx=24, anomaly_fraction=0.03)
    return path


def _config(store: Path, tmp_path: Path, uri: str, **overrides: object) -> SelectBandsConfig:
    data = {
        "campaign": "camp-t",
        "store": str(store),
        "output": str(tmp_path / "composites.zarr"),
        "statistics": {"n_bins": 128},
        "tracking": {"tracking_uri": uri, "experiment": "flow-tests"},
        **overrides,
    }
    return load_config(data, SelectBandsConfig)


def test_trained_selection_is_logged_completely(store: Path, tmp_path: Path, mlflow_store: str) -> None:
    config = _config(
        store,
        tmp_path,
        mlflow_store,
        pipeline=DEMO_PIPELINE,
        training={"epochs": 2, "patch_size": 16, "batches_per_epoch": 2},
    )
    summary = select_bands(config)
    assert summary.trained and summary.exported["published"] == 2
    assert published_ids(config.output) == summary.acquisition_ids
    selection = summary.selection
    assert len(selection.indices) == 3 and len(set(selection.indices)) == 3

    client = MlflowClient(tracking_uri=mlflow_store)
    run = client.get_run(summary.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags[tracking.TAG_FLOW_RUN_ID] == summary.flow_run_id
    assert run.data.tags[tracking.TAG_CAMPAIGN] == "camp-t"
    params = run.data.params
    assert params["pipeline.selector.type"] == "SoftChannelSelector"
    assert params["pipeline.selector.n_select"] == "3"
    assert params["pipeline.rx.background"] == "batch_negatives"
    assert params["config.training.epochs"] == "2"
    assert json.loads(params["selection.indices"]) == list(selection.indices)
    shown = json.loads(params["selection.wavelengths_nm"])  # rounded to 0.01 nm for people
    assert shown == pytest.approx(selection.wavelengths_nm, abs=0.005)
    history = client.get_metric_history(summary.mlflow_run_id, "loss")
    assert [m.step for m in history] == [0, 1]
    assert len(client.get_metric_history(summary.mlflow_run_id, "temperature")) == 2
    # A handful of charts: the 24 channel weights per epoch are one table, not 24 metrics.
    assert not any(key.startswith("weight/") for key in run.data.metrics)
    assert "auroc.auroc" in run.data.metrics
    assert run.data.tags["bandselect.selector_type"] == "SoftChannelSelector"
    # The run's description in the MLflow UI is the flow's summary, linking back to the Prefect run; the
    # demo pipeline's selector starts uniform, so no "two-phase" claim.
    description = run.data.tags["mlflow.note.content"]
    assert "fitted by gradient training from the uniform start" in description
    assert f"{selection.rgb_wavelengths_nm[0]:.1f}" in description and "**MLflow run**" not in description
    assert f"**Prefect flow run**: [{run.data.tags[tracking.TAG_FLOW_RUN_URL]}]" in description
    # The Prefect API lists the run's markdown summary and the link to its MLflow run; the run is tagged.
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # the run's logs reach the API in the background: sent before reading
    with get_client(sync_client=True) as prefect_client:
        flow_run = prefect_client.read_flow_run(summary.flow_run_id)
        artifacts_of_run = prefect_client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id]))
        )
        logs = prefect_client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])), limit=200
        )
    assert {"campaign:camp-t", "selector:SoftChannelSelector"} <= set(flow_run.tags)
    by_key = {artifact.key: artifact for artifact in artifacts_of_run}
    assert {"camp-t-summary", "camp-t-mlflow-run", "camp-t-training-progress"} <= set(by_key)
    # Progress: one log line per epoch (loss, metric, temperature, top bands by wavelength) and a
    # progress artifact at 100 % describing the last epoch.
    progress = by_key["camp-t-training-progress"]
    assert progress.type == "progress" and float(progress.data) == 100.0
    assert "training epoch 2/2" in progress.description
    epoch_lines = [log.message for log in logs if log.message.startswith("training epoch ")]
    assert [line.split(":")[0] for line in epoch_lines] == ["training epoch 1/2", "training epoch 2/2"]
    assert all("loss " in line and ", T " in line and " nm" in line for line in epoch_lines)
    assert f"{selection.rgb_wavelengths_nm[0]:.1f}" in by_key["camp-t-summary"].data
    assert f"/runs/{summary.mlflow_run_id}?workflowType=machine_learning)" in by_key["camp-t-mlflow-run"].data
    # The campaign store is the run's input dataset.
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "camp-t" and dataset_input.dataset.digest

    artifacts = Path(client.download_artifacts(summary.mlflow_run_id, "", str(tmp_path / "artifacts")))
    content = json.loads((artifacts / "selection.json").read_text())
    assert content["indices"] == list(selection.indices)
    # What training gave before the search after it: in the summary, in MLflow, and said in the Prefect
    # summary when the search moved a band.
    assert summary.trained_bands is not None and content["trained_bands"] == summary.trained_bands
    note = search_note(selection, summary.trained_bands)
    assert (note is None) == (set(summary.trained_bands) == set(selection.indices))
    assert note is None or note in by_key["camp-t-summary"].data
    # The exported selection's RX AUROC, once: the saved pipeline's validation and test numbers.
    kept = json.loads((artifacts / "pipeline" / "history.json").read_text())
    assert kept["test_auroc"] is not None
    assert run.data.metrics[SELECTED_TEST_AUROC] == pytest.approx(kept["test_auroc"], abs=1e-12)
    assert run.data.metrics[SELECTED_VAL_AUROC] == pytest.approx(kept["val_auroc"], abs=1e-12)
    assert (summary.val_auroc, summary.test_auroc) == (kept["val_auroc"], kept["test_auroc"])
    assert f"test {kept['test_auroc']:.4f} (held-out rows)" in by_key["camp-t-summary"].data
    assert content["rgb_wavelengths_nm"] == pytest.approx(selection.rgb_wavelengths_nm)
    assert content["config_hash"] == published_config_hash(config.output, summary.acquisition_ids[0])
    weights = json.loads((artifacts / "training" / "weights.json").read_text())
    assert [row["epoch"] for row in weights["rows"]] == [0, 1] and len(weights["wavelengths_nm"]) == 24
    assert all(len(row["weights"]) == 24 for row in weights["rows"])
    assert (artifacts / "training" / "weights.csv").read_text().startswith("epoch,best,")
    # The selection as an MLflow model reproduces the exported composite bit for bit.
    model = mlflow.pyfunc.load_model(f"runs:/{summary.mlflow_run_id}/model")
    first = summary.acquisition_ids[0]
    cube = open_campaign(config.store).open(first)["cube"].values
    np.testing.assert_array_equal(
        model.predict(cube), read_composite(config.output, first)["composite"].values
    )
    for name in ("band_scores", "temperature_schedule", "weight_evolution", "rgb_previews"):
        image = mpl_image.imread(artifacts / "plots" / f"{name}.png")
        assert image.ndim == 3 and image.shape[0] > 100
    assert len(list((artifacts / "previews").glob("*.png"))) == 2
    assert (artifacts / "pipeline" / "pipeline.yaml").is_file()
    assert (artifacts / "pipeline" / "weights.pt").is_file()
    # Reproducible from the artifacts: the logged config rebuilds the same flow config.
    logged = load_config(
        __import__("yaml").safe_load((artifacts / "config.yaml").read_text()), SelectBandsConfig
    )
    assert logged == config
    from bandselect.pipeline import Pipeline

    pipeline = Pipeline.load(artifacts / "pipeline")
    weights = pipeline.nodes["selector"].get_selection_weights(hard=False).numpy()
    assert sorted(np.argsort(-weights, kind="stable")[:3].tolist()) == sorted(selection.indices)


def test_supervised_default_finds_planted_band_and_rerun_skips(
    store: Path, tmp_path: Path, mlflow_store: str
) -> None:
    config = _config(store, tmp_path, mlflow_store)
    first = select_bands(config)
    assert not first.trained
    assert first.selection.selector_type == "SupervisedWindowedFalseRGBSelector"
    # The planted anomaly bands of the synthetic campaign lie near 550 and 782-790 nm; the green window
    # (500-580 nm) must pick the band nearest 550 nm.
    wavelengths = np.asarray(first.selection.wavelengths_nm)
    assert np.min(np.abs(wavelengths - 550.0)) < 12.0
    stamps = {i: read_composite(config.output, i).attrs["exported_at"] for i in first.acquisition_ids}
    second = select_bands(config)
    assert second.exported == {"published": 0, "replaced": 0, "skipped": 2}
    assert second.selection.indices == first.selection.indices
    assert {i: read_composite(config.output, i).attrs["exported_at"] for i in first.acquisition_ids} == stamps
    assert second.mlflow_run_id != first.mlflow_run_id  # one MLflow run per flow run


def test_positive_label_must_exist_and_config_errors(store: Path, tmp_path: Path, mlflow_store: str) -> None:
    from bandselect.errors import LabelError

    with pytest.raises(LabelError, match="positive_label"):
        select_bands(_config(store, tmp_path, mlflow_store, positive_label=7))
    with pytest.raises(ConfigError, match="store and output must be different"):
        load_config({"campaign": "c", "store": "a.zarr", "output": "a.zarr"}, SelectBandsConfig)
    bad = tmp_path / "bad.yaml"
    bad.write_text("campaign: c\nstore: s.zarr\noutput: o.zarr\ntraining: {epochs: 0}\n")
    with pytest.raises(ConfigError, match=r"training\.epochs"):
        load_config(bad, SelectBandsConfig)


def test_shipped_configs_load() -> None:
    root = Path(__file__).resolve().parents[2] / "configs"
    for name in ("select_bands.yaml", "demo.yaml"):
        config = load_config(root / name, SelectBandsConfig)
        assert "nodes" in config.pipeline_mapping()


def test_a_multiclass_selector_runs_in_the_flow_on_the_class_ids(tmp_path: Path, mlflow_store: str) -> None:
    # The plan's dry run initialises a multiclass=True node from its sample's class ids and the flow
    # from the campaign statistics' (the datamodules' batches are binary, which the trainer refuses).
    from multiclass_scenes import planted_pair_scene

    from bandselect.store import ingest

    scene = planted_pair_scene(size=32)
    source = tmp_path / "classes.npz"
    np.savez(source, cube=scene.cube, gt=scene.labels.astype(np.int32), wavelengths_nm=scene.wavelengths_nm)
    store = tmp_path / "classes.zarr"
    ingest(source, store)
    k = len(scene.planted)
    pipeline = {
        "nodes": {
            "selector": {
                "type": "SupervisedFullSpectrumBandSelector",
                "config": {
                    "num_spectral_bands": "auto",
                    "criterion": "separability",
                    "k": k,
                    "multiclass": True,
                },
            }
        },
        "connections": [
            ["data.cube", "selector.cube"],
            ["data.mask", "selector.mask"],
            ["data.wavelengths", "selector.wavelengths"],
        ],
    }
    result = select_bands(_config(store, tmp_path, mlflow_store, pipeline=pipeline, ignore_label=0))
    assert sorted(result.selection.indices) == sorted(scene.planted)
