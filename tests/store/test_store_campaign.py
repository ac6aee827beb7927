"""Campaign store: layout, lazy reads, atomic and idempotent append, wavelength grid, store errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from store_helpers import grid, small_cube

from bandselect.errors import LabelError, NonFiniteError, ShapeError, StoreError, WavelengthError
from bandselect.names import (
    ATTR_ACQUISITION_ID,
    ATTR_CONTENT_SHA256,
    ATTR_SOURCE_DTYPE,
    COORD_WAVELENGTH,
    STORE_FORMAT_KEY,
    VAR_CUBE,
    VAR_MASK,
    VAR_VALID,
)
from bandselect.store import Campaign, create_campaign, make_acquisition, open_campaign
from bandselect.store import writer as writer_module
from bandselect.store.campaign import STAGING_DIR
from bandselect.store.layout import sanitize_stem, validate_acquisition_id


def acquisition(seed: int = 0, height: int = 9, width: int = 7, with_mask: bool = True) -> xr.Dataset:
    cube = small_cube(height, width, seed=seed)
    mask = (cube[..., 0] % 3).astype(np.int32) if with_mask else None
    return make_acquisition(cube, grid(), mask, attrs={"name": f"scene{seed}"})


def test_append_then_open_round_trips_lazily_with_chunks_over_y_x_only(tmp_path: Path) -> None:
    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    dataset = acquisition()
    acquisition_id = campaign.append(dataset, chunk_yx=(4, 3))

    assert campaign.ids() == [acquisition_id]
    assert acquisition_id.startswith("scene0-")
    opened = campaign.open(acquisition_id)
    cube = opened[VAR_CUBE]
    assert isinstance(cube.data, da.Array)  # lazy
    assert cube.dims == ("y", "x", "band") and cube.dtype == np.float32
    assert cube.data.chunks == ((4, 4, 1), (3, 3, 1), (5,))  # whole spectrum in each chunk
    np.testing.assert_array_equal(cube.values, dataset[VAR_CUBE].values)
    np.testing.assert_array_equal(opened[VAR_MASK].values, dataset[VAR_MASK].values)
    assert opened[VAR_MASK].dtype == np.int32
    assert opened[COORD_WAVELENGTH].dtype == np.float64
    assert opened[COORD_WAVELENGTH].attrs["units"] == "nm"
    np.testing.assert_array_equal(opened[COORD_WAVELENGTH].values, grid())
    assert opened.attrs[ATTR_ACQUISITION_ID] == acquisition_id
    assert opened.attrs[ATTR_SOURCE_DTYPE] == "uint16"
    assert acquisition_id.endswith(opened.attrs[ATTR_CONTENT_SHA256][:16])
    np.testing.assert_array_equal(campaign.wavelengths, grid())


def test_append_is_idempotent_and_content_addressed(tmp_path: Path) -> None:
    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    first = campaign.append(acquisition(seed=0))
    again = campaign.append(acquisition(seed=0), name="renamed")  # same content, another name
    other = campaign.append(acquisition(seed=1))
    rechunked = campaign.append(acquisition(seed=0), chunk_yx=2)  # id does not depend on chunking
    assert again == first == rechunked
    assert other != first
    assert campaign.ids() == sorted([first, other])
    # Changing one label changes the content, hence the id.
    changed = acquisition(seed=0)
    changed[VAR_MASK][0, 0] = 7
    assert campaign.append(changed) not in (first, other)


def test_iter_datasets_and_items_follow_id_order(tmp_path: Path) -> None:
    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    ids = sorted(campaign.append(acquisition(seed=s)) for s in range(3))
    assert [d.attrs[ATTR_ACQUISITION_ID] for d in campaign.iter_datasets()] == ids
    assert [i for i, _ in campaign.items()] == ids
    assert len(campaign) == 3 and ids[0] in campaign and "nope" not in campaign


def test_dask_backed_dataset_appends_block_by_block(tmp_path: Path) -> None:
    source = open_campaign(tmp_path / "a.zarr", create=True)
    first = source.append(acquisition(height=20, width=6), chunk_yx=(5, 6))
    target = open_campaign(tmp_path / "b.zarr", create=True)
    copied = target.append(source.open(first), chunk_yx=(8, 4))
    assert copied == first  # same content, same id, in another store
    np.testing.assert_array_equal(target.open(copied)[VAR_CUBE].values, source.open(first)[VAR_CUBE].values)


def test_crash_during_write_leaves_nothing_visible_and_append_works_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    calls = {"n": 0}
    original = writer_module.ContentHasher.update

    def crash_on_second_block(self: object, *args: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full (simulated)")
        original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(writer_module.ContentHasher, "update", crash_on_second_block)
    with pytest.raises(OSError, match="simulated"):
        campaign.append(acquisition(height=12), chunk_yx=(4, 4))
    assert calls["n"] == 2  # it did crash mid-write, after a first block was written
    assert campaign.ids() == []
    assert list((campaign.path / STAGING_DIR).iterdir()) == []
    monkeypatch.undo()
    acquisition_id = campaign.append(acquisition(height=12), chunk_yx=(4, 4))
    assert campaign.ids() == [acquisition_id]


def test_killed_writer_leftover_is_ignored_then_cleaned(tmp_path: Path) -> None:
    """A process killed mid-write (no chance to clean up) leaves a staging directory only."""
    store = tmp_path / "c.zarr"
    open_campaign(store, create=True)
    script = f"""
import os
import numpy as np
from bandselect.store import make_acquisition, open_campaign
from bandselect.store import writer
original = writer.ContentHasher.update
def die(self, *args):
    original(self, *args)
    os._exit(9)  # like SIGKILL: no exception handler, no cleanup
writer.ContentHasher.update = die
cube = np.arange(12 * 7 * 5, dtype="float32").reshape(12, 7, 5)
open_campaign({str(store)!r}).append(make_acquisition(cube, 450.0 + 10 * np.arange(5)), chunk_yx=4)
"""
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 9, completed.stderr
    leftovers = list((store / STAGING_DIR).iterdir())
    assert len(leftovers) == 1 and (leftovers[0] / "cube").is_dir()  # a partial write exists...
    campaign = open_campaign(store)
    assert campaign.ids() == []  # ...but is invisible
    assert campaign.wavelengths is None
    new_id = campaign.append(acquisition())
    assert campaign.ids() == [new_id]
    assert list((store / STAGING_DIR).iterdir()) == []  # cleaned by the next append


def test_live_writers_staging_is_not_cleaned(tmp_path: Path) -> None:
    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    live = campaign.path / STAGING_DIR / writer_module.staging_name()  # this (running) process
    live.mkdir(parents=True)
    assert campaign.clean_staging() == []
    assert live.is_dir()


def test_other_wavelength_grid_is_rejected(tmp_path: Path) -> None:
    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    campaign.append(acquisition())
    shifted = make_acquisition(small_cube(), grid() + 1.0)
    with pytest.raises(WavelengthError, match="share one wavelength grid"):
        campaign.append(shifted)
    fewer = make_acquisition(small_cube(n_bands=4), grid(4))
    with pytest.raises(WavelengthError, match="expected the wavelength grid"):
        campaign.append(fewer)
    assert len(campaign.ids()) == 1


def test_nonfinite_raises_by_default_and_is_masked_on_request(tmp_path: Path) -> None:
    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    cube = small_cube(dtype="float32")
    cube[2, 3, 1] = np.nan
    cube[5, 0, 4] = np.inf
    dataset = make_acquisition(cube, grid())
    with pytest.raises(NonFiniteError, match=r"2 NaN/Inf values.*\(y=2, x=3, band=1\).*mask_nonfinite"):
        campaign.append(dataset)
    assert campaign.ids() == []
    acquisition_id = campaign.append(dataset, mask_nonfinite=True)
    stored = campaign.open(acquisition_id)
    valid = stored[VAR_VALID].values
    assert valid.dtype == bool and (~valid).sum() == 2 and not valid[2, 3] and not valid[5, 0]
    assert stored[VAR_CUBE].values[2, 3, 1] == 0 and stored[VAR_CUBE].values[5, 0, 4] == 0
    assert stored[VAR_CUBE].values[2, 3, 0] == cube[2, 3, 0]  # finite values of the pixel are kept


def test_mask_nonfinite_on_clean_data_stores_no_valid_and_keeps_the_id(tmp_path: Path) -> None:
    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    plain = campaign.append(acquisition())
    masked = campaign.append(acquisition(), mask_nonfinite=True)
    assert masked == plain
    assert VAR_VALID not in campaign.open(plain)


def test_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(ShapeError, match="3-D"):
        make_acquisition(np.zeros((4, 4)), grid())
    with pytest.raises(LabelError, match=r"expected \(9, 7\)"):
        make_acquisition(small_cube(), grid(), np.zeros((7, 9), dtype=np.int32))
    with pytest.raises(LabelError, match="negative"):
        make_acquisition(small_cube(), grid(), -np.ones((9, 7), dtype=np.int32))
    with pytest.raises(WavelengthError, match="5 values"):
        make_acquisition(small_cube(), grid(4))
    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    with pytest.raises(ShapeError, match="transpose"):
        campaign.append(acquisition().transpose("x", "y", "band"))
    assert campaign.ids() == []


def test_ids_are_sanitised() -> None:
    assert sanitize_stem("../../etc/passwd") == "etc_passwd"
    assert sanitize_stem("my scene (v2).hdr") == "my_scene_v2_hdr"
    assert sanitize_stem("...") == "acquisition"
    for bad in ("../x", "a/b", ".hidden", "", "x" * 200, 3):
        with pytest.raises(StoreError):
            validate_acquisition_id(bad)


def test_open_unknown_or_malicious_id_is_a_store_error(tmp_path: Path) -> None:
    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    with pytest.raises(StoreError, match="no such acquisition"):
        campaign.open("missing-0123456789abcdef")
    with pytest.raises(StoreError, match="no '/'"):
        campaign.open("../outside")


def test_store_path_checks(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such path"):
        open_campaign(tmp_path / "missing")
    not_a_store = tmp_path / "photos"
    not_a_store.mkdir()
    (not_a_store / "a.jpg").write_bytes(b"x")
    with pytest.raises(StoreError, match="expected a campaign store"):
        open_campaign(not_a_store, create=True)
    other_zarr = tmp_path / "other.zarr"
    other_zarr.mkdir()
    (other_zarr / "zarr.json").write_text(
        json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}})
    )
    with pytest.raises(StoreError, match=STORE_FORMAT_KEY):
        open_campaign(other_zarr)
    a_file = tmp_path / "file.zarr"
    a_file.write_text("x")
    with pytest.raises(StoreError, match="a file"):
        open_campaign(a_file)
    future = tmp_path / "future.zarr"
    future.mkdir()
    (future / "zarr.json").write_text(
        json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {STORE_FORMAT_KEY: 99}})
    )
    with pytest.raises(StoreError, match="version"):
        open_campaign(future)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert isinstance(open_campaign(empty, create=True), Campaign)
    assert open_campaign(empty).ids() == []
    assert create_campaign(empty).path == empty
    with pytest.raises(StoreError, match="exist_ok"):
        create_campaign(empty, exist_ok=False)
    notes = tmp_path / "notes.txt"  # a file where the store should go: a StoreError, not an OSError
    notes.write_text("x")
    with pytest.raises(StoreError, match="exist_ok"):
        create_campaign(notes, exist_ok=False)


def test_publish_race_with_same_content_keeps_one(tmp_path: Path) -> None:
    from bandselect.store.layout import source_from_dataset

    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    source = source_from_dataset(acquisition(), name="scene0")
    staged_a = campaign.stage(source, chunk_yx=4)
    staged_b = campaign.stage(source, chunk_yx=4)
    assert campaign.publish(staged_a).created is True
    result = campaign.publish(staged_b)
    assert result.created is False and result.acquisition_id == staged_a.acquisition_id
    assert campaign.ids() == [staged_a.acquisition_id]
    assert not os.path.exists(staged_b.path)


def test_chunk_option_and_block_budget() -> None:
    from bandselect.errors import ConfigError
    from bandselect.store.layout import BLOCK_BUDGET_BYTES, block_rows_for, check_chunk_yx

    assert check_chunk_yx(128) == (128, 128)
    assert check_chunk_yx([64, 32]) == (64, 32)
    for bad in (0, -4, (1, 2, 3), "256", True, 2.5):
        with pytest.raises(ConfigError, match="chunk_yx"):
            check_chunk_yx(bad)
    assert block_rows_for((256, 256), 2048, 61) == 256  # a whole chunk row fits the budget
    wide_rows = block_rows_for((256, 256), 20_000, 400)  # 32 MB per row: fewer rows per block
    assert wide_rows * 20_000 * 400 * 4 <= BLOCK_BUDGET_BYTES and wide_rows >= 1


def test_sources_are_read_one_block_at_a_time(tmp_path: Path) -> None:
    from bandselect.store.layout import AcquisitionSource, Block

    requested: list[int] = []
    delivered: list[int] = []

    def read_blocks(block_rows: int) -> Iterator[Block]:
        requested.append(block_rows)
        for y0 in range(0, 30, block_rows):
            rows = min(block_rows, 30 - y0)
            delivered.append(rows)
            yield np.full((rows, 4, 3), y0, dtype=np.int16), None, None

    source = AcquisitionSource("blocks", (30, 4, 3), np.dtype(np.int16), grid(3), read_blocks)
    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    acquisition_id = campaign.append_source(source, chunk_yx=(8, 4)).acquisition_id
    assert requested == [8] and delivered == [8, 8, 8, 6]
    assert (
        campaign.open(acquisition_id)[VAR_CUBE].values[:, 0, 0].tolist()
        == [0] * 8 + [8] * 8 + [16] * 8 + [24] * 6
    )
