"""Window sources: one window reads the same through every source; the grid rule; bad windows and inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from store_helpers import grid, small_cube

from bandselect.errors import DTypeError, NonFiniteError, ShapeError, StoreError, WavelengthError
from bandselect.store import (
    ArraySource,
    DatasetSource,
    StoreSource,
    Window,
    WindowSource,
    make_acquisition,
    open_campaign,
    stack_frames,
)
from bandselect.synthetic import write_campaign

SHAPES = ((9, 7), (6, 11))


def _scene(seed: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    cube = small_cube(height, width, seed=seed)  # every value distinct: any offset error shows
    labels = (cube[..., 0] % 3).astype(np.int32)  # classes 0, 1, 2
    return cube, labels


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("windows") / "campaign"
    campaign = open_campaign(path, create=True)
    for seed, (height, width) in enumerate(SHAPES):
        cube, labels = _scene(seed, height, width)
        campaign.append(
            make_acquisition(cube, grid(), labels, attrs={"name": f"scene{seed}"}), chunk_yx=(4, 3)
        )
    return path


def _windows(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Chunk-aligned, chunk-crossing, ragged-edge, single-pixel and whole-frame windows (chunks 4 x 3)."""
    return [
        (0, 4, 0, 3),
        (2, height - 1, 1, width - 1),
        (height - 1, height, width - 2, width),
        (3, 4, 5, 6),
        (0, height, 0, width),
    ]


@pytest.mark.parametrize("cache_bytes", [0, 300, 2**20])
def test_the_same_window_reads_the_same_through_every_source(store: Path, cache_bytes: int) -> None:
    campaign = open_campaign(store)
    stored = StoreSource(store, cache_bytes=cache_bytes)
    scenes = [_scene(seed, h, w) for seed, (h, w) in enumerate(SHAPES)]
    memory = ArraySource([c for c, _ in scenes], [m for _, m in scenes], wavelengths=grid())
    datasets = DatasetSource([campaign.open(i) for i in stored.ids])
    for source in (stored, memory, datasets):
        assert isinstance(source, WindowSource)
        assert source.shapes == list(SHAPES) and source.has_mask and source.labelled == [True, True]
        assert source.wavelengths.dtype == np.float64 and source.classes() == [0, 1, 2]
        np.testing.assert_array_equal(source.wavelengths, grid())
    for index, (height, width) in enumerate(SHAPES):
        for y0, y1, x0, x1 in _windows(height, width):
            window = Window(index, y0, y1, x0, x1)
            cube, labels = scenes[index][0][y0:y1, x0:x1].astype(np.float32), scenes[index][1][y0:y1, x0:x1]
            for source in (stored, memory, datasets):
                got_cube, got_labels = source.read(window)
                assert got_cube.dtype == np.float32 and got_labels.dtype == np.int32  # labels as stored
                np.testing.assert_array_equal(got_cube, cube)
                np.testing.assert_array_equal(got_labels, labels)
    if cache_bytes:
        assert 0 < stored.cache.nbytes <= cache_bytes and stored.cache.hits > 0


def test_a_synthetic_campaign_reads_like_its_arrays(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "synthetic", 2, 21, 17, n_bands=6, seed=1, chunk_yx=(8, 8))
    stored = StoreSource(campaign)
    datasets = [campaign.open(i) for i in stored.ids]
    memory = ArraySource(
        [ds["cube"].values for ds in datasets],
        [ds["mask"].values for ds in datasets],
        wavelengths=stored.wavelengths,
    )
    for window in (Window(0, 5, 21, 3, 17), Window(1, 7, 9, 0, 17), Window(1, 0, 21, 16, 17)):
        (a_cube, a_labels), (b_cube, b_labels) = stored.read(window), memory.read(window)
        np.testing.assert_array_equal(a_cube, b_cube)
        np.testing.assert_array_equal(a_labels, b_labels)
        assert a_labels.dtype == b_labels.dtype


def test_a_grid_mismatch_between_acquisitions_is_refused_by_the_grid_rule(
    store: Path, tmp_path: Path
) -> None:
    other = open_campaign(tmp_path / "other", create=True)
    cube, labels = _scene(5, 4, 4)
    foreign = other.append(make_acquisition(cube, grid() + 1.0, labels, attrs={"name": "foreign"}))
    # A store edited by hand (a group copied in from a campaign of another sensor configuration).
    mixed = tmp_path / "mixed"
    shutil.copytree(store, mixed)
    shutil.copytree(tmp_path / "other" / foreign, mixed / foreign)
    ids = open_campaign(store).ids()
    with pytest.raises(
        WavelengthError, match=rf"wavelengths of acquisition '{foreign}'.*different band centres"
    ):
        StoreSource(mixed, [*ids, foreign])
    with pytest.raises(WavelengthError, match=rf"grid of acquisition '{foreign}'"):
        StoreSource(mixed)  # sorted ids: the foreign one comes first and is the reference
    campaign = open_campaign(store)
    with pytest.raises(
        WavelengthError, match=rf"wavelengths of acquisition '{foreign}': expected the wavelength"
    ):
        DatasetSource([campaign.open(campaign.ids()[0]), other.open(foreign)])
    datasets = [campaign.open(campaign.ids()[0]), campaign.open(campaign.ids()[1]).isel(band=slice(0, 4))]
    with pytest.raises(WavelengthError, match=r"\(5 bands\).*found 450.0–480.0 nm \(4 bands\)"):
        DatasetSource(datasets)


def test_windows_outside_a_frame_are_refused(store: Path) -> None:
    for source in (StoreSource(store), ArraySource([np.zeros((9, 7, 5))], wavelengths=grid())):
        with pytest.raises(ShapeError, match=r"inside its 9 × 7 pixels.*rows 8:10"):
            source.read(Window(0, 8, 10, 0, 2))
        with pytest.raises(ShapeError, match=r"rows 3:3"):
            source.read(Window(0, 3, 3, 0, 2))
        with pytest.raises(ShapeError, match=r"an acquisition index in \[0, \d\)"):
            source.read(Window(5, 0, 1, 0, 1))


def test_store_source_ids_and_layout_errors(store: Path, tmp_path: Path) -> None:
    ids = open_campaign(store).ids()
    assert StoreSource(store, [ids[1], ids[1]]).ids == [ids[1]]
    with pytest.raises(
        StoreError, match=rf"unknown acquisition '{ids[0][:-1]}' in ids.*did you mean '{ids[0]}'"
    ):
        StoreSource(store, [ids[0][:-1]])
    with pytest.raises(StoreError, match="at least one acquisition"):
        StoreSource(open_campaign(tmp_path / "empty", create=True))


def test_stack_frames_and_array_source_inputs() -> None:
    stack, labels = stack_frames(np.ones((4, 5, 3), np.uint16), np.zeros((4, 5, 1), np.int8))
    assert stack.shape == (1, 4, 5, 3) and stack.dtype == np.float32 and labels.shape == (1, 4, 5)
    with pytest.raises(ShapeError, match=r"\(1, 4, 5\) or \(1, 4, 5, 1\) matching cube"):
        stack_frames(np.ones((4, 5, 3)), np.zeros((5, 4)))
    bad = np.ones((2, 3, 3), np.float32)
    bad[1, 2, 0] = np.inf
    with pytest.raises(NonFiniteError, match=r"1 NaN/Inf values, the first at index \(1, 1, 2, 0\)"):
        ArraySource([np.ones((2, 3, 3)), bad], wavelengths=[1.0, 2.0, 3.0])
    with pytest.raises(DTypeError, match="bool or integer labels"):
        ArraySource([np.ones((2, 3, 3))], [np.full((2, 3), 0.5)], wavelengths=[1.0, 2.0, 3.0])
    with pytest.raises(ShapeError, match="C = 3 bands"):
        ArraySource([np.ones((2, 3, 3)), np.ones((2, 3, 4))], wavelengths=[1.0, 2.0, 3.0])
    source = ArraySource([np.ones((2, 2, 1))], [np.array([[0.0, 3.0], [3.0, 0.0]])], wavelengths=[500.0])
    assert source.classes() == [0, 3] and source.masks[0].dtype == np.int64  # integral floats: integers


def test_dataset_source_refuses_nan_where_read_and_bad_layouts() -> None:
    cube = np.ones((4, 4, 2), np.float32)
    cube[3, 1, 0] = np.nan
    ds = xr.Dataset(
        {"cube": (("band", "y", "x"), cube.transpose(2, 0, 1))}, coords={"wavelength": ("band", [1.0, 2.0])}
    )
    source = DatasetSource([ds])
    assert source.ids == ["0"] and not source.has_mask and source.invalid_pixels() == [0]
    np.testing.assert_array_equal(
        source.read(Window(0, 0, 3, 0, 4))[0], cube[:3]
    )  # transposed to (y, x, band)
    with pytest.raises(NonFiniteError, match=r"acquisition '0' rows 2:4 cols 0:2.*index \(0, 1, 1, 0\)"):
        source.read(Window(0, 2, 4, 0, 2))
    with pytest.raises(StoreError, match="a variable 'cube'"):
        DatasetSource([ds.rename({"cube": "data"})])
    with pytest.raises(WavelengthError, match="a 'wavelength' coordinate"):
        DatasetSource([ds.drop_vars("wavelength")])
    with pytest.raises(StoreError, match="distinct acquisition ids"):
        DatasetSource([ds.assign_attrs(acquisition_id="a"), ds.assign_attrs(acquisition_id="a")])


def test_invalid_pixels_are_counted(tmp_path: Path) -> None:
    campaign = open_campaign(tmp_path / "c", create=True)
    cube, labels = _scene(0, 9, 7)
    cube = cube.astype(np.float32)
    cube[2, 3, 1] = np.nan
    cube[4, 4, :] = np.inf
    ids = [
        campaign.append(make_acquisition(cube, grid(), labels, attrs={"name": "holes"}), mask_nonfinite=True),
        campaign.append(make_acquisition(np.ones((3, 3, 5)), grid(), attrs={"name": "clean"})),
    ]
    source = StoreSource(campaign, ids)
    assert source.invalid_pixels() == [2, 0] and source.labelled == [True, False] and not source.has_mask
    assert DatasetSource([campaign.open(i) for i in ids]).invalid_pixels() == [2, 0]
    assert source.read(Window(1, 0, 3, 0, 3))[1] is None
