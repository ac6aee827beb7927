"""select_bands with ``ignore_label``: the campaign statistics drop the ignored class before one class is
compared with the rest, so the ignored pixels' values change nothing and the selection is ``fit()``'s; a
bad label role stops the flow before any work. Real ephemeral Prefect, real sqlite MLflow."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from mlflow.tracking import MlflowClient

from bandselect.errors import LabelError
from bandselect.flows import SelectBandsConfig, load_config, select_bands
from bandselect.flows.config import DEMO_PIPELINE
from bandselect.selectors import SupervisedFullSpectrumBandSelector
from bandselect.stats.incremental import SIDECAR_DIR
from bandselect.store import open_campaign

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

N_BANDS = 12
WAVELENGTHS = np.linspace(450.0, 900.0, N_BANDS)
UNLABELLED, TARGET = 0, 2
# Separability (Bhattacharyya on the class moments): the moments of the kept classes are exact after
# dropping a class from the stored statistics, whatever the ignored pixels hold.
SELECTOR = {"type": "SupervisedFullSpectrumBandSelector", "config": {"num_spectral_bands": "auto", "k": 3}}
SELECTOR["config"]["criterion"] = "separability"
PIPELINE = {
    "nodes": {"selector": SELECTOR},
    "connections": [
        ["data.cube", "selector.cube"],
        ["data.wavelengths", "selector.wavelengths"],
        ["data.mask", "selector.mask"],
    ],
}


def _scene() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    cube = rng.normal(1.0, 0.2, size=(2, 24, 24, N_BANDS)).astype(np.float32)
    labels = rng.integers(0, 4, size=(2, 24, 24)).astype(np.int16)
    cube[labels == TARGET, 7] += 1.0
    cube[labels == TARGET, 3] -= 0.6
    cube[labels == 3, 2] += 0.8
    return cube, labels


def _garbage(cube: np.ndarray, labels: np.ndarray) -> np.ndarray:
    spoiled = cube.copy()
    ignored = labels == UNLABELLED
    rng = np.random.default_rng(7)
    spoiled[ignored] = rng.uniform(-1e5, 1e5, size=(int(ignored.sum()), N_BANDS)).astype(np.float32)
    return spoiled


def _store(path: Path, cube: np.ndarray, labels: np.ndarray) -> Path:
    campaign = open_campaign(path, create=True)
    for frame, frame_labels in zip(cube, labels, strict=True):
        campaign.append(
            xr.Dataset(
                {"cube": (("y", "x", "band"), frame), "mask": (("y", "x"), frame_labels)},
                coords={"wavelength": ("band", WAVELENGTHS)},
            )
        )
    return path


def _config(store: Path, out: Path, uri: str, **overrides: object) -> SelectBandsConfig:
    data = {
        "campaign": "ignore",
        "store": str(store),
        "output": str(out / "composites.zarr"),
        "pipeline": PIPELINE,
        "positive_label": TARGET,
        "ignore_label": UNLABELLED,
        "tracking": {"tracking_uri": uri, "experiment": "ignore-label"},
        **overrides,
    }
    return load_config(data, SelectBandsConfig)


def test_ignored_pixels_change_nothing_and_the_flow_equals_fit(tmp_path: Path, mlflow_store: str) -> None:
    cube, labels = _scene()
    clean = select_bands(_config(_store(tmp_path / "a.zarr", cube, labels), tmp_path / "a", mlflow_store))
    spoiled_store = _store(tmp_path / "b.zarr", _garbage(cube, labels), labels)
    spoiled = select_bands(_config(spoiled_store, tmp_path / "b", mlflow_store))
    assert spoiled.selection == clean.selection

    node = SupervisedFullSpectrumBandSelector(num_spectral_bands=N_BANDS, k=3, criterion="separability")
    node.fit(_garbage(cube, labels), labels, WAVELENGTHS, positive_label=TARGET, ignore_label=UNLABELLED)
    assert clean.selection == node.selection(WAVELENGTHS)
    assert 7 in clean.selection.indices  # the target's band

    params = MlflowClient(tracking_uri=mlflow_store).get_run(clean.mlflow_run_id).data.params
    assert params["config.ignore_label"] == str(UNLABELLED)
    assert params["config.positive_label"] == str(TARGET)


def test_bad_label_roles_stop_the_flow_before_any_work(tmp_path: Path, mlflow_store: str) -> None:
    cube, labels = _scene()
    store = _store(tmp_path / "c.zarr", cube, labels)
    out = tmp_path / "out"
    with pytest.raises(LabelError, match=r"positive_label and ignore_label.*both 2"):
        select_bands(_config(store, out, mlflow_store, ignore_label=TARGET))
    # A learnable pipeline whose loss reads the mask without data.valid would count the ignored pixels
    # as negatives: refused in the plan, naming the connection to make (the shipped recipe has it).
    blind = copy.deepcopy(DEMO_PIPELINE)
    blind["connections"] = [pair for pair in blind["connections"] if pair[0] != "data.valid"]
    with pytest.raises(
        LabelError, match=r"ignore_label=0 with a learnable pipeline.*connect data.valid to bce"
    ):
        select_bands(_config(store, out, mlflow_store, pipeline=blind))
    # The plan's errors come before anything is written: no output, no work folder, no statistics.
    assert not out.exists()
    assert not (store / SIDECAR_DIR).exists()


def test_auc_and_mi_of_the_flow_are_fits_whatever_the_ignored_pixels_hold(
    tmp_path: Path, mlflow_store: str
) -> None:
    # mRMR over Fisher, AUC and MI: the histograms must be binned on the kept pixels' range, as fit()
    # bins them. The ignored junk (±1e5) set the stored edges: on those, every kept value would share a
    # bin (AUC 0.5, MI 0 for every band).
    cube, labels = _scene()
    spoiled = _garbage(cube, labels)
    mrmr = {"type": "SupervisedFullSpectrumBandSelector", "config": {"num_spectral_bands": "auto", "k": 3}}
    pipeline = {**PIPELINE, "nodes": {"selector": mrmr}}
    store = _store(tmp_path / "m.zarr", spoiled, labels)
    flow = select_bands(_config(store, tmp_path / "m", mlflow_store, pipeline=pipeline))

    node = SupervisedFullSpectrumBandSelector(num_spectral_bands=N_BANDS, k=3)
    node.fit(spoiled, labels, WAVELENGTHS, positive_label=TARGET, ignore_label=UNLABELLED)
    assert flow.selection == node.selection(WAVELENGTHS)
    assert {7, 3} <= set(flow.selection.indices)  # the target's two bands
    # The kept pixels' histograms are in the sidecar beside the statistics they derive from.
    assert list((store / SIDECAR_DIR).glob("statistics-*.derived/without-0.npz"))


def test_the_shipped_learnable_pipeline_trains_with_ignore_label_whatever_the_ignored_pixels_hold(
    tmp_path: Path, mlflow_store: str
) -> None:
    cube, labels = _scene()
    training = {"epochs": 3, "patch_size": 8, "batches_per_epoch": 2, "device": "cpu"}
    runs = []
    for name, values in (("a", cube), ("b", _garbage(cube, labels))):
        store = _store(tmp_path / f"{name}.zarr", values, labels)
        runs.append(
            select_bands(
                _config(store, tmp_path / name, mlflow_store, pipeline=DEMO_PIPELINE, training=training)
            )
        )
    clean, spoiled = runs
    assert clean.trained and clean.test_auroc is not None
    assert spoiled.selection.indices == clean.selection.indices
    assert (spoiled.val_auroc, spoiled.test_auroc) == (clean.val_auroc, clean.test_auroc)


def test_pixels_without_data_count_nowhere_in_the_learnable_flow(tmp_path: Path, mlflow_store: str) -> None:
    """A campaign ingested from a file with NaN pixels (mask_nonfinite): the flow trains the shipped
    learnable pipeline with them left out (the same bands and AUROCs as with those pixels given as an
    ignored class), says how many there were, and the composite carries the flag."""
    from bandselect.export import read_composite
    from bandselect.store import ingest

    cube, labels = _scene()
    frame, frame_labels = cube[0], np.where(labels[0] == UNLABELLED, 1, labels[0])  # no ignored class
    nodata = np.zeros(frame_labels.shape, bool)
    nodata[:2] = True
    nodata[10:14, 4:12] = True
    holes = frame.copy()
    holes[nodata] = np.nan
    np.savez(tmp_path / "holes.npz", cube=holes, gt=frame_labels, wavelengths_nm=WAVELENGTHS)
    flagged_store = tmp_path / "flagged.zarr"
    (acquisition,) = ingest(tmp_path / "holes.npz", flagged_store, mask_nonfinite=True)
    zeros = frame.copy()
    zeros[nodata] = 0.0
    ignored_store = _store(tmp_path / "ignored.zarr", zeros[None], np.where(nodata, 9, frame_labels)[None])
    training = {"epochs": 3, "patch_size": 8, "batches_per_epoch": 2, "device": "cpu"}
    common = {"pipeline": DEMO_PIPELINE, "training": training}
    flagged = select_bands(
        _config(flagged_store, tmp_path / "f", mlflow_store, ignore_label=None, **common)  # type: ignore[arg-type]
    )
    ignored = select_bands(
        _config(ignored_store, tmp_path / "i", mlflow_store, ignore_label=9, **common)  # type: ignore[arg-type]
    )
    assert flagged.trained and flagged.test_auroc is not None
    assert flagged.statistics.n_invalid == int(nodata.sum()) and ignored.statistics.n_invalid == 0
    assert flagged.selection.indices == ignored.selection.indices
    assert (flagged.val_auroc, flagged.test_auroc) == (ignored.val_auroc, ignored.test_auroc)
    composite = read_composite(flagged.output, acquisition)
    np.testing.assert_array_equal(composite["valid"].values, ~nodata)
