"""Datamodules: batch contents, exact tiling, shuffling, validation errors, campaign acquisitions."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import xarray as xr

from bandselect.errors import (
    ConfigError,
    DTypeError,
    LabelError,
    NonFiniteError,
    ShapeError,
    StoreError,
    WavelengthError,
)
from bandselect.pipeline import Pipeline
from bandselect.training import ArrayDataModule, CampaignDataModule, StatisticalTrainer

WAVELENGTHS = [450.0, 550.0, 650.0]


def _cube(shape: tuple[int, ...] = (2, 5, 7, 3), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _pixels(batches) -> np.ndarray:
    return np.concatenate([b["cube"].numpy().reshape(-1, 3) for b in batches])


def _sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])]


def test_array_batches_have_the_contract_types() -> None:
    cube = _cube()
    dm = ArrayDataModule(cube, mask=cube[..., 0] > 0.5, wavelengths=WAVELENGTHS, batch_size=2)
    (batch,) = list(dm.train_dataloader())
    assert set(batch) == {"cube", "mask", "labels", "wavelengths"}
    assert batch["cube"].dtype == torch.float32 and tuple(batch["cube"].shape) == (2, 5, 7, 3)
    assert batch["mask"].dtype == torch.bool and tuple(batch["mask"].shape) == (2, 5, 7, 1)
    # The class ids beside the bool mask (a bool mask's classes are 0 and 1).
    assert batch["labels"].dtype == torch.int64
    np.testing.assert_array_equal(batch["labels"].numpy(), batch["mask"].numpy().astype(np.int64))
    assert batch["wavelengths"].dtype == torch.float32 and batch["wavelengths"].tolist() == WAVELENGTHS
    np.testing.assert_array_equal(batch["cube"].numpy(), cube)
    np.testing.assert_array_equal(batch["mask"].numpy()[..., 0], cube[..., 0] > 0.5)
    assert dm.val_dataloader() is None and not dm.has_validation


def test_hwc_torch_and_integer_inputs() -> None:
    cube = torch.arange(4 * 4 * 3, dtype=torch.int32).reshape(4, 4, 3)
    labels = np.zeros((4, 4, 1), dtype=np.int64)
    labels[0, 0] = 2
    labels[1, 1] = 1
    dm = ArrayDataModule(cube, mask=labels, wavelengths=np.array([1, 2, 3]))
    (batch,) = list(dm.train_dataloader())
    assert tuple(batch["cube"].shape) == (1, 4, 4, 3) and batch["cube"].dtype == torch.float32
    assert int(batch["mask"].sum()) == 2  # labels > 0
    only_two = ArrayDataModule(cube, mask=labels, wavelengths=[1, 2, 3], positive_label=2)
    assert int(next(iter(only_two.train_dataloader()))["mask"].sum()) == 1
    with pytest.raises(LabelError, match="positive_label=5"):
        ArrayDataModule(cube, mask=labels, wavelengths=[1, 2, 3], positive_label=5)


def test_patches_tile_every_pixel_exactly_once_and_never_mix_sizes() -> None:
    cube = _cube((2, 5, 7, 3))
    dm = ArrayDataModule(cube, wavelengths=WAVELENGTHS, patch_size=(2, 3), batch_size=4)
    batches = list(dm.train_dataloader())
    assert len(batches) == len(dm.train_dataloader())
    # 5x7 in 2x3 patches: rows 2,2,1 x cols 3,3,1 -> sizes (2,3)x4, (2,1)x2, (1,3)x2, (1,1)x1 per frame
    sizes = sorted(tuple(b["cube"].shape) for b in batches)
    assert sizes == sorted([(4, 2, 3, 3), (4, 2, 3, 3), (4, 2, 1, 3), (4, 1, 3, 3), (2, 1, 1, 3)])
    np.testing.assert_array_equal(_sorted_rows(_pixels(batches)), _sorted_rows(cube.reshape(-1, 3)))


def test_shuffle_is_reproducible_and_changes_between_epochs() -> None:
    cube = _cube((6, 4, 4, 3))

    def orders(seed: int) -> list[list[float]]:
        loader = ArrayDataModule(cube, wavelengths=WAVELENGTHS, shuffle=True, seed=seed).train_dataloader()
        return [[float(b["cube"][0, 0, 0, 0]) for b in loader] for _ in range(2)]

    first, again = orders(1), orders(1)
    assert first == again
    assert first[0] != first[1]  # a new order per iteration
    assert sorted(first[0]) == sorted(first[1]) == sorted(cube[:, 0, 0, 0].tolist())
    assert orders(2) != first


def test_validation_loader() -> None:
    cube, val = _cube(), _cube((1, 3, 3, 3), seed=1)
    dm = ArrayDataModule(cube, wavelengths=WAVELENGTHS, val_cube=val, val_mask=val[..., 0] > 0.5)
    (batch,) = list(dm.val_dataloader())
    np.testing.assert_array_equal(batch["cube"].numpy(), val)
    assert "mask" in batch and dm.has_validation
    with pytest.raises(ShapeError, match="3 bands like cube"):
        ArrayDataModule(cube, wavelengths=WAVELENGTHS, val_cube=_cube((1, 3, 3, 4)))
    with pytest.raises(ConfigError, match="val_mask without val_cube"):
        ArrayDataModule(cube, wavelengths=WAVELENGTHS, val_mask=np.zeros((1, 3, 3), bool))


def test_array_input_errors() -> None:
    cube = _cube()
    with pytest.raises(ShapeError, match=r"\(H, W, C\) or \(B, H, W, C\).*found \(5, 7\)"):
        ArrayDataModule(cube[0, ..., 0], wavelengths=WAVELENGTHS)
    bad = cube.copy()
    bad[1, 2, 3, 0] = np.nan
    with pytest.raises(NonFiniteError, match=r"1 NaN/Inf values, the first at index \(1, 2, 3, 0\)"):
        ArrayDataModule(bad, wavelengths=WAVELENGTHS)
    with pytest.raises(DTypeError, match="real numeric dtype"):
        ArrayDataModule(cube > 0.5, wavelengths=WAVELENGTHS)
    with pytest.raises(WavelengthError, match="expected 3 values"):
        ArrayDataModule(cube, wavelengths=[450.0, 550.0])
    with pytest.raises(ShapeError, match=r"mask.*\(2, 5, 7\)"):
        ArrayDataModule(cube, mask=np.zeros((2, 5, 6), bool), wavelengths=WAVELENGTHS)
    with pytest.raises(DTypeError, match="bool or integer labels"):
        ArrayDataModule(cube, mask=cube[..., 0], wavelengths=WAVELENGTHS)
    with pytest.raises(ConfigError, match="batch_size"):
        ArrayDataModule(cube, wavelengths=WAVELENGTHS, batch_size=0)
    with pytest.raises(ConfigError, match="patch_size"):
        ArrayDataModule(cube, wavelengths=WAVELENGTHS, patch_size=(2, 0))


def _dataset(height: int, width: int, seed: int, *, mask: bool = True, acquisition: str | None = None):
    cube = _cube((height, width, 3), seed)
    variables = {"cube": (("y", "x", "band"), cube)}
    if mask:
        labels = np.zeros((height, width), np.int16)
        labels[: height // 2] = 1
        labels[0, 0] = 2
        variables["mask"] = (("y", "x"), labels)
    ds = xr.Dataset(variables, coords={"wavelength": ("band", np.array(WAVELENGTHS))})
    if acquisition is not None:
        ds.attrs["acquisition_id"] = acquisition
    return ds.chunk({"y": 2, "x": 3})


def test_campaign_batches_by_size_and_reads_every_pixel() -> None:
    datasets = [
        _dataset(4, 6, 0, acquisition="a"),
        _dataset(5, 3, 1, acquisition="b"),
        _dataset(4, 6, 2, acquisition="c"),
    ]
    dm = CampaignDataModule(datasets, batch_size=2)
    assert dm.acquisitions == ["a", "b", "c"] and dm.use_mask
    batches = list(dm.train_dataloader())
    assert [tuple(b["cube"].shape) for b in batches] == [(2, 4, 6, 3), (1, 5, 3, 3)]
    expected = np.concatenate([ds["cube"].values.reshape(-1, 3) for ds in datasets])
    np.testing.assert_array_equal(_sorted_rows(_pixels(batches)), _sorted_rows(expected))
    assert int(sum(b["mask"].sum() for b in batches)) == sum(int((ds["mask"] > 0).sum()) for ds in datasets)
    only_class_two = CampaignDataModule(datasets, positive_label=2, patch_size=2, batch_size=8)
    assert int(sum(b["mask"].sum() for b in only_class_two.train_dataloader())) == 3


def test_campaign_selection_and_validation_split() -> None:
    datasets = [_dataset(4, 4, i, acquisition=f"acq{i}") for i in range(3)]
    dm = CampaignDataModule(datasets, val_acquisitions=["acq1"])
    assert dm.acquisitions == ["acq0", "acq2"] and dm.val_acquisitions == ["acq1"]
    (val,) = list(dm.val_dataloader())
    np.testing.assert_array_equal(val["cube"].numpy()[0], datasets[1]["cube"].values)
    with pytest.raises(StoreError, match=r"unknown acquisition 'acq9'.*did you mean"):
        CampaignDataModule(datasets, acquisitions=["acq9"])


def test_campaign_errors() -> None:
    other = _dataset(4, 4, 1, acquisition="b").assign_coords(wavelength=("band", [460.0, 560.0, 660.0]))
    with pytest.raises(WavelengthError, match="wavelengths of acquisition 'b'"):
        CampaignDataModule([_dataset(4, 4, 0, acquisition="a"), other])
    mixed = [_dataset(4, 4, 0, acquisition="a"), _dataset(4, 4, 1, mask=False, acquisition="b")]
    with pytest.raises(LabelError, match=r"no mask in \['b'\].*use_mask=False"):
        CampaignDataModule(mixed)
    assert "mask" not in next(iter(CampaignDataModule(mixed, use_mask=False).train_dataloader()))
    invalid = _dataset(4, 4, 0, acquisition="a")
    invalid["valid"] = (("y", "x"), np.ones((4, 4), bool))
    invalid["valid"][0, 0] = False  # carried as the batches' validity (tests/training/test_invalid_pixels.py)
    (batch,) = list(CampaignDataModule([invalid]).train_dataloader())
    assert batch["valid"][0, ..., 0].numpy().tolist() == invalid["valid"].values.tolist()
    nan = _dataset(4, 4, 0, acquisition="a").compute()
    nan["cube"][1, 2, 0] = np.nan
    with pytest.raises(NonFiniteError, match="acquisition 'a' rows 0:4"):
        list(CampaignDataModule([nan]).train_dataloader())
    with pytest.raises(ConfigError, match="campaign store path"):
        CampaignDataModule(42)


def test_statistical_trainer_over_campaign_matches_numpy() -> None:
    selectors = pytest.importorskip("bandselect.selectors")
    datasets = [_dataset(4, 6, 0), _dataset(5, 3, 1), _dataset(6, 6, 2)]
    selector = selectors.SoftChannelSelector(n_select=2, input_channels=3, init_method="variance")
    pipeline = Pipeline()
    pipeline.connect((pipeline.data.cube, selector.data))
    StatisticalTrainer(
        pipeline=pipeline, datamodule=CampaignDataModule(datasets, patch_size=(4, 4), batch_size=3)
    ).fit()
    pixels = np.concatenate([ds["cube"].values.reshape(-1, 3) for ds in datasets]).astype(np.float64)
    np.testing.assert_allclose(
        selector.channel_logits.numpy(), np.log(pixels.var(axis=0) + selector.eps), rtol=1e-5
    )


@pytest.mark.skipif(
    importlib.util.find_spec("bandselect.store") is None, reason="bandselect.store not written yet"
)
def test_campaign_store_path(tmp_path) -> None:
    from bandselect.store import StoreSource, open_campaign

    campaign = open_campaign(tmp_path / "campaign.zarr", create=True)
    ids = [campaign.append(_dataset(4, 6, seed).compute()) for seed in range(2)]
    dm = CampaignDataModule(tmp_path / "campaign.zarr", batch_size=2)
    assert sorted(dm.acquisitions) == sorted(ids)
    assert isinstance(dm.source, StoreSource)  # the store's chunk reader, not xarray isel per item
    with pytest.raises(LabelError, match=r"positive_label=3.*classes \[0, 1, 2\]"):
        CampaignDataModule(campaign, positive_label=3)
    batches = list(dm.train_dataloader())
    expected = np.concatenate([campaign.open(i)["cube"].values.reshape(-1, 3) for i in ids])
    np.testing.assert_array_equal(_sorted_rows(_pixels(batches)), _sorted_rows(expected))
