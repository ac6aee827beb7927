"""bandselect.store.integrity: what the writer guarantees, what the readers check, and old stores."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from store_helpers import grid, small_cube

from bandselect.errors import StoreError
from bandselect.names import ATTR_ALL_CHUNKS_WRITTEN
from bandselect.store import StoreSource, Window, make_acquisition, open_campaign
from bandselect.store.integrity import CheckedArray, inspect_acquisition


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, str]:
    labels = np.zeros((9, 7), np.int32)
    labels[0:2, 0:2] = 1  # one labelled corner: the other mask chunks hold only background
    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    acquisition_id = campaign.append(make_acquisition(small_cube(), grid(), labels), chunk_yx=(4, 4))
    return tmp_path / "c.zarr", acquisition_id


def test_the_writer_writes_every_chunk_with_a_checksum(store: tuple[Path, str]) -> None:
    path, acquisition_id = store
    group = path / acquisition_id
    mask = group / "mask"
    chunks = sorted(str(p.relative_to(mask)) for p in (mask / "c").rglob("*") if p.is_file())
    assert chunks == [f"c/{i}/{j}" for i in range(3) for j in range(2)]  # all 3 x 2, all-zero ones too
    codecs = json.loads((group / "cube" / "zarr.json").read_text())["codecs"]
    assert {"name": "zstd", "configuration": {"level": 0, "checksum": True}} in codecs
    layout = inspect_acquisition(path, acquisition_id)
    assert layout.all_chunks_written and layout.shape == (9, 7, 5) and layout.chunk_yx == (4, 4)
    np.testing.assert_array_equal(layout.wavelengths_nm, grid())


def test_checked_reads_equal_the_stored_values(store: tuple[Path, str]) -> None:
    path, acquisition_id = store
    dataset = open_campaign(path).open(acquisition_id)
    assert dataset["cube"].data.chunks == ((4, 4, 1), (4, 3), (5,))
    np.testing.assert_array_equal(dataset["cube"].values, small_cube().astype(np.float32))
    assert int(dataset["mask"].values.sum()) == 4
    cube, _ = StoreSource(path, cache_bytes=0).read(Window(0, 1, 8, 2, 7))
    np.testing.assert_array_equal(cube, small_cube()[1:8, 2:7].astype(np.float32))


def test_a_checked_array_pickles_without_its_handle(store: tuple[Path, str]) -> None:
    path, acquisition_id = store
    array = CheckedArray(path / acquisition_id, "cube", acquisition_id)
    copy = pickle.loads(pickle.dumps(array))
    assert copy._array is None
    np.testing.assert_array_equal(copy[2:5, 1:3], array[2:5, 1:3])
    (path / acquisition_id / "cube" / "c" / "0" / "0" / "0").unlink()
    with pytest.raises(StoreError, match=r"chunk c/0/0/0 of 'cube'.*no such chunk"):
        copy[0:2, 0:2]


def test_a_store_written_before_all_chunks_written_reads_a_missing_label_chunk_as_background(
    store: tuple[Path, str],
) -> None:
    """zarr's default skipped chunks of fill values: there a missing label chunk is not damage."""
    path, acquisition_id = store
    group = path / acquisition_id
    metadata = json.loads((group / "zarr.json").read_text())
    del metadata["attributes"][ATTR_ALL_CHUNKS_WRITTEN]
    (group / "zarr.json").write_text(json.dumps(metadata))
    (group / "mask" / "c" / "2" / "1").unlink()
    source = StoreSource(path)
    _, labels = source.read(Window(0, 0, 9, 0, 7))
    assert labels is not None and int(labels.sum()) == 4
    (group / "cube" / "c" / "2" / "1" / "0").unlink()  # cube chunks are checked in any store
    with pytest.raises(StoreError, match=r"chunk c/2/1/0 of 'cube'"):
        StoreSource(path).read(Window(0, 8, 9, 4, 7))
