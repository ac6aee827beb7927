"""Invalid pixels (an acquisition's ``valid`` variable: no-data values of the file, NaN/Inf ingested with
``mask_nonfinite``) through the training path: the batches carry them as ``valid`` False, so learnable
training leaves them out exactly as it leaves out an ``ignore_label`` class, and a pipeline that would
count them is refused before any work. (They used to reach the gradient phase as background pixels of
value 0.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from training_fixtures import rx_bce_pipeline

from bandselect.errors import LabelError
from bandselect.names import PORT_CUBE, PORT_MASK, PORT_VALID
from bandselect.store import DatasetSource, ingest
from bandselect.training import CampaignDataModule, PatchDataModule, TrainingData, train_two_phase

N_BANDS = 12
WAVELENGTHS = np.linspace(450.0, 900.0, N_BANDS)
TARGET_BAND = 7
TRAINING = {"epochs": 3, "patch_size": 8, "batches_per_epoch": 2, "device": "cpu", "seed": 0}


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 48 × 32 frame, 5 % targets bright in band 7; no-data pixels: two rows and a block of the
    training rows, a block of the test rows."""
    rng = np.random.default_rng(3)
    cube = rng.normal(1.0, 0.1, size=(48, 32, N_BANDS)).astype(np.float32)
    labels = (rng.random((48, 32)) < 0.05).astype(np.int64)
    cube[labels == 1, TARGET_BAND] += 0.6
    nodata = np.zeros((48, 32), bool)
    nodata[0:2] = True
    nodata[6:10, 4:12] = True
    nodata[40:44, 20:28] = True
    labels[nodata] = 0
    return cube, labels, nodata


def _ingested(tmp_path: Path, name: str, cube: np.ndarray, labels: np.ndarray, **options: object) -> Path:
    archive = tmp_path / f"{name}.npz"
    np.savez(archive, cube=cube, gt=labels, wavelengths_nm=WAVELENGTHS)
    store = tmp_path / f"{name}.zarr"
    ingest(archive, store, **options)  # type: ignore[arg-type]
    return store


def _with_nan(cube: np.ndarray, nodata: np.ndarray) -> np.ndarray:
    spoiled = cube.copy()
    spoiled[nodata] = np.nan
    return spoiled


def test_invalid_pixels_reach_the_batches_as_valid_false(tmp_path: Path) -> None:
    cube, labels, nodata = _scene()
    store = _ingested(tmp_path, "nan", _with_nan(cube, nodata), labels, mask_nonfinite=True)
    dm = PatchDataModule.from_store(store, patch_size=8, train_rows=(0.0, 1.0), val_rows=None)
    region = dm.region((0.0, 1.0))
    valid = region[PORT_VALID][0, ..., 0].numpy()
    np.testing.assert_array_equal(valid, ~nodata)
    assert not region[PORT_MASK][0, ..., 0].numpy()[nodata].any()
    assert (region[PORT_CUBE][0].numpy()[nodata] == 0).all()  # stored as 0 at ingest
    # In the patches too: invalid exactly where the store holds its 0s (the scene's values never are 0),
    # and the epoch's patches do meet the no-data pixels.
    patches = list(dm.train_dataloader())
    for patch in patches:
        np.testing.assert_array_equal(
            patch[PORT_VALID][..., 0].numpy(), (patch[PORT_CUBE].numpy() != 0).any(axis=-1)
        )
    assert sum(int((~patch[PORT_VALID]).sum()) for patch in patches) > 0
    # The statistics datamodule gives them too (it used to refuse such acquisitions).
    tiles = list(CampaignDataModule(store, patch_size=(16, 16)).train_dataloader())
    assert sum(int((~b[PORT_VALID]).sum()) for b in tiles) == int(nodata.sum())
    # A Dataset whose invalid pixels hold NaN is read with 0 there, not refused.
    dataset = xr.Dataset(
        {
            "cube": (("y", "x", "band"), _with_nan(cube, nodata)),
            "mask": (("y", "x"), labels),
            "valid": (("y", "x"), ~nodata),
        },
        coords={"wavelength": ("band", WAVELENGTHS)},
    )
    source = DatasetSource([dataset])
    assert source.flagged == [True] and source.invalid_pixels() == [int(nodata.sum())]
    dm = PatchDataModule(source, patch_size=8, train_rows=(0.0, 1.0), val_rows=None)
    from_dataset = dm.region((0.0, 1.0))
    np.testing.assert_array_equal(from_dataset[PORT_CUBE].numpy(), region[PORT_CUBE].numpy())
    np.testing.assert_array_equal(from_dataset[PORT_VALID].numpy(), region[PORT_VALID].numpy())


def test_learnable_training_leaves_invalid_pixels_out_as_it_leaves_an_ignored_class_out(
    tmp_path: Path,
) -> None:
    """The recipe on a store with no-data pixels (NaN ingested with mask_nonfinite) trains exactly as on
    the same store where those pixels hold 0 and a class the training ignores: the same losses, bands
    and test AUROC. Counted as background (0 and no flag), the same pixels change the training."""
    cube, labels, nodata = _scene()
    flagged = _ingested(tmp_path, "flagged", _with_nan(cube, nodata), labels, mask_nonfinite=True)
    zeros = cube.copy()
    zeros[nodata] = 0.0
    ignored_labels = np.where(nodata, 9, labels)
    ignored = _ingested(tmp_path, "ignored", zeros, ignored_labels)
    counted = _ingested(tmp_path, "counted", zeros, labels)
    runs = [
        train_two_phase(None, TrainingData.from_store(flagged), TRAINING),
        train_two_phase(None, TrainingData.from_store(ignored, ignore_label=9), TRAINING),
        train_two_phase(None, TrainingData.from_store(counted), TRAINING),
    ]
    losses = [[record.loss for record in run.history] for run in runs]
    assert losses[0] == losses[1] and all(np.isfinite(losses[0]))
    assert runs[0].selection_after == runs[1].selection_after
    assert runs[0].test_auroc_after == runs[1].test_auroc_after is not None
    assert TARGET_BAND in runs[0].selection_after.indices
    assert losses[2] != losses[0]  # the zeros, counted, are background pixels of their own


def test_a_pipeline_that_would_count_invalid_pixels_is_refused_before_any_work(tmp_path: Path) -> None:
    cube, labels, nodata = _scene()
    store = _ingested(tmp_path, "nan", _with_nan(cube, nodata), labels, mask_nonfinite=True)
    pipeline = rx_bce_pipeline(N_BANDS)  # its RX, head and loss do not read data.valid
    with pytest.raises(LabelError, match=r"invalid pixels.*128 pixels flagged invalid.*connect data.valid"):
        train_two_phase(pipeline, TrainingData.from_store(store), TRAINING, checkpoint_dir=tmp_path / "ck")
    assert not pipeline.nodes["soft"].is_initialized and not (tmp_path / "ck").exists()
