"""Damaged and crafted campaign stores: a typed error naming the group (and the chunk), never a zarr or
xarray traceback, never silent bad data, and the store left exactly as it was.

Each damage is applied to a copy of one small store (two labelled acquisitions, one with a ``valid``
array, 8 × 8 chunks), then the store is used the four ways users use it: ``bandselect info``, the
statistics engine, the window reader of the training path, and the incremental statistics update (which
must not write its sidecar).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from hostile_helpers import GRID_NM, assert_house_message, cube, run_cli, tree_digest, write_npz

from bandselect.errors import BandSelectError, StoreError, WavelengthError
from bandselect.stats import compute_statistics, update_campaign_statistics
from bandselect.store import StoreSource, Window, ingest_files, open_campaign
from bandselect.store.layout import digest_suffix

HEIGHT, WIDTH = 20, 18


def _labels(seed: int) -> np.ndarray:
    labels = np.zeros((HEIGHT, WIDTH), np.uint8)
    labels[seed : seed + 4, 2:6] = 1  # the other chunks of the mask hold only zeros (background)
    return labels


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], Path]:
    """The store (``a`` labelled, ``b`` labelled with one NaN pixel masked), its ids, and a foreign store."""
    folder = tmp_path_factory.mktemp("stores")
    store = folder / "store.zarr"
    a = write_npz(folder, "a", cube=cube(HEIGHT, WIDTH, seed=1), mask=_labels(1))
    with_nan = cube(HEIGHT, WIDTH, seed=2).astype(np.float32)
    with_nan[3, 4, 1] = np.nan
    b = write_npz(folder, "b", cube=with_nan, mask=_labels(9))
    ids = [r.acquisition_id for r in ingest_files([a, b], store, chunk_yx=8, mask_nonfinite=True)]
    foreign = folder / "foreign.zarr"
    other = write_npz(folder, "foreign", cube=cube(HEIGHT, WIDTH, seed=3), wavelengths_nm=GRID_NM + 500.0)
    ingest_files([other], foreign, chunk_yx=8)
    return store, ids, foreign


@pytest.fixture
def damaged(base: tuple[Path, list[str], Path], tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    store, ids, foreign = base
    copy = tmp_path / "store.zarr"
    shutil.copytree(store, copy)
    return copy, list(ids), foreign


# -- damages: each returns the fragments the message must name ---------------------------------------
Damage = Callable[[Path, list[str], Path], tuple[str, ...]]


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    metadata = json.loads(path.read_text())
    change(metadata)
    path.write_text(json.dumps(metadata))


def _meta(variable: str, change: Callable[[dict[str, Any]], None], which: int = 0) -> Damage:
    def damage(store: Path, ids: list[str], foreign: Path) -> tuple[str, ...]:
        _edit(store / ids[which] / variable / "zarr.json", change)
        return (ids[which],)

    return damage


def _set(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(metadata: dict[str, Any]) -> None:
        metadata[key] = value

    return change


def _chunks(shape: list[int]) -> Callable[[dict[str, Any]], None]:
    def change(metadata: dict[str, Any]) -> None:
        metadata["chunk_grid"]["configuration"]["chunk_shape"] = shape

    return change


def _dtype(name: str, fill: object) -> Callable[[dict[str, Any]], None]:
    def change(metadata: dict[str, Any]) -> None:
        metadata["data_type"] = name
        metadata["fill_value"] = fill
        metadata["attributes"].pop("_FillValue", None)

    return change


def _file(relative: str, content: Callable[[bytes], bytes], which: int = 0) -> Damage:
    def damage(store: Path, ids: list[str], foreign: Path) -> tuple[str, ...]:
        path = store / ids[which] / relative
        path.write_bytes(content(path.read_bytes()))
        return (ids[which],)

    return damage


def _remove(relative: str, which: int = 0) -> Damage:
    def damage(store: Path, ids: list[str], foreign: Path) -> tuple[str, ...]:
        target = store / ids[which] / relative
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        return (ids[which],)

    return damage


def _wavelengths(values: Callable[[np.ndarray], np.ndarray], which: int = 1) -> Damage:
    def damage(store: Path, ids: list[str], foreign: Path) -> tuple[str, ...]:
        array = zarr.open_array(str(store / ids[which] / "wavelength"), mode="r+")
        array[:] = values(np.asarray(array[:]))
        return (ids[which],)

    return damage


def _group_attrs(change: Callable[[dict[str, Any]], None]) -> Damage:
    def damage(store: Path, ids: list[str], foreign: Path) -> tuple[str, ...]:
        _edit(store / ids[0] / "zarr.json", lambda metadata: change(metadata["attributes"]))
        return (ids[0],)

    return damage


def _renamed(name_of: Callable[[list[str]], str]) -> Damage:
    def damage(store: Path, ids: list[str], foreign: Path) -> tuple[str, ...]:
        name = name_of(ids)
        os.rename(store / ids[0], store / name)
        return (name,)

    return damage


def _foreign_group(store: Path, ids: list[str], foreign: Path) -> tuple[str, ...]:
    (name,) = open_campaign(foreign).ids()
    shutil.copytree(foreign / name, store / name)
    return (name, "different band centres")


def _flip_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


LAYOUT: dict[str, Damage] = {
    "cube-dims-permuted": _meta("cube", _set("dimension_names", ["band", "y", "x"])),
    "cube-dims-renamed": _meta("cube", _set("dimension_names", ["row", "col", "band"])),
    "cube-dtype-int16": _meta("cube", _dtype("int16", 0)),
    "cube-dtype-float64": _meta("cube", _dtype("float64", "NaN")),
    "cube-band-axis-chunked": _meta("cube", _chunks([8, 8, 2])),
    "cube-missing": _remove("cube"),
    "cube-zarr-json-truncated": _file("cube/zarr.json", lambda data: data[: len(data) // 3]),
    "cube-zarr-json-garbage": _file("cube/zarr.json", lambda data: b"\x00\xff garbage"),
    "cube-zarr-json-empty": _file("cube/zarr.json", lambda data: b""),
    "mask-dims": _meta("mask", _set("dimension_names", ["x", "y"])),
    "mask-dtype-float": _meta("mask", _dtype("float32", 0.0)),
    "mask-shape": _meta("mask", _set("shape", [HEIGHT, WIDTH + 3])),
    "mask-zarr-json-truncated": _file("mask/zarr.json", lambda data: data[:40]),
    "valid-dtype-int": _meta("valid", _dtype("int8", 0), which=1),
    "wavelength-dims": _meta("wavelength", _set("dimension_names", ["y"])),
    "wavelength-length": _meta("wavelength", _set("shape", [4])),
    "wavelength-dtype-int": _meta("wavelength", _dtype("int32", 0)),
    "wavelength-missing": _remove("wavelength"),
    "wavelength-chunk-deleted": _remove("wavelength/c/0"),
    "wavelength-chunk-garbage": _file("wavelength/c/0", lambda data: b"not zstd"),
    "wavelength-chunk-flipped": _file("wavelength/c/0", _flip_middle),
    "wavelength-zarr-json-truncated": _file("wavelength/zarr.json", lambda data: data[:-10]),
    "wavelengths-decreasing": _wavelengths(lambda values: values[::-1].copy(), which=0),
    "wavelengths-negative": _wavelengths(lambda values: -values, which=0),
    "group-zarr-json-truncated": _file("zarr.json", lambda data: data[: len(data) // 2]),
    "group-zarr-json-garbage": _file("zarr.json", lambda data: os.urandom(64)),
    "digest-attribute-missing": _group_attrs(lambda attrs: attrs.pop("content_sha256")),
    "digest-attribute-changed": _group_attrs(lambda attrs: attrs.update(content_sha256="0" * 64)),
    "digest-named-group": _renamed(lambda ids: f"zz-{digest_suffix(ids[1])}"),
    "renamed-group": _renamed(lambda ids: "renamed-0123456789abcdef"),
}
GRIDS: dict[str, Damage] = {
    "grid-500-nm-off": _wavelengths(lambda values: values + 500.0),
    "grid-1-nm-off-in-one-band": _wavelengths(lambda values: values + np.eye(1, values.size, 2).ravel()),
    "foreign-group-copied-in": _foreign_group,
}


def _chunk(variable: str, key: str, content: Callable[[bytes], bytes] | None, which: int = 0) -> Damage:
    def damage(store: Path, ids: list[str], foreign: Path) -> tuple[str, ...]:
        path = store / ids[which] / variable / key
        if content is None:
            path.unlink()
        else:
            path.write_bytes(content(path.read_bytes()))
        return (ids[which], f"chunk {key} of {variable!r}")

    return damage


CHUNKS: dict[str, Damage] = {
    "cube-chunk-deleted-first": _chunk("cube", "c/0/0/0", None),
    "cube-chunk-deleted-edge": _chunk("cube", "c/2/2/0", None, which=1),
    "cube-chunk-garbage": _chunk("cube", "c/1/1/0", lambda data: os.urandom(len(data))),
    "cube-chunk-empty": _chunk("cube", "c/0/1/0", lambda data: b""),
    "cube-chunk-truncated": _chunk("cube", "c/1/0/0", lambda data: data[: len(data) // 2]),
    "cube-chunk-one-byte-flipped": _chunk("cube", "c/2/1/0", _flip_middle),
    "mask-chunk-deleted-background": _chunk("mask", "c/2/2", None),
    "mask-chunk-garbage": _chunk("mask", "c/0/0", lambda data: b"garbage!"),
    "valid-chunk-deleted": _chunk("valid", "c/1/1", None, which=1),
    "valid-chunk-flipped": _chunk("valid", "c/0/0", _flip_middle, which=1),
}


def _band_range(minimum: object, maximum: object | None = None) -> Damage:
    def damage(store: Path, ids: list[str], foreign: Path) -> tuple[str, ...]:
        def change(attrs: dict[str, Any]) -> None:
            attrs["band_minimum"] = minimum
            if maximum is not None:
                attrs["band_maximum"] = maximum

        _edit(store / ids[0] / "zarr.json", lambda metadata: change(metadata["attributes"]))
        return ("recorded",)

    return damage


#: The per-band range recorded at ingest (the statistics take their histogram edges from it).
RANGES: dict[str, Damage] = {
    "band-range-text": _band_range("lots"),
    "band-range-nested": _band_range([[1, 2], [3]]),
    "band-range-short": _band_range([0.0, 1.0]),
    "band-range-inverted": _band_range([1e9] * 5),
    "band-range-too-narrow": _band_range([0.0] * 5, [1.0] * 5),
}


# -- the four uses ------------------------------------------------------------------------------------
def _statistics(store: Path) -> None:
    compute_statistics(open_campaign(store), n_bins=16, scheduler="synchronous")


def _windows(store: Path) -> None:
    source = StoreSource(store)
    for index, (height, width) in enumerate(source.shapes):
        source.read(Window(index, 0, height, 0, width))
    source.invalid_pixels()


def _update(store: Path) -> None:
    update_campaign_statistics(open_campaign(store), n_bins=16, scheduler="synchronous")


USES: dict[str, Callable[[Path], None]] = {"statistics": _statistics, "windows": _windows, "update": _update}


def _check(
    store: Path, use: Callable[[Path], None], error_type: type[BandSelectError], fragments: tuple[str, ...]
) -> None:
    before = tree_digest(store)
    with pytest.raises(error_type) as raised:
        use(store)
    assert_house_message(str(raised.value), *fragments)
    assert tree_digest(store) == before


@pytest.mark.parametrize("use", sorted(USES))
@pytest.mark.parametrize("case", sorted(LAYOUT))
def test_a_group_outside_the_layout_is_a_store_error_naming_it(case: str, use: str, damaged: Any) -> None:
    store, ids, foreign = damaged
    fragments = LAYOUT[case](store, ids, foreign)
    _check(store, USES[use], StoreError, (*fragments, "retire"))


@pytest.mark.parametrize("use", sorted(USES))
@pytest.mark.parametrize("case", sorted(GRIDS))
def test_a_group_on_another_grid_is_a_wavelength_error_naming_it(case: str, use: str, damaged: Any) -> None:
    store, ids, foreign = damaged
    fragments = GRIDS[case](store, ids, foreign)
    _check(store, USES[use], WavelengthError, fragments)


@pytest.mark.parametrize("use", sorted(USES))
@pytest.mark.parametrize("case", sorted(CHUNKS))
def test_a_damaged_chunk_is_a_store_error_naming_acquisition_and_chunk(
    case: str, use: str, damaged: Any
) -> None:
    store, ids, foreign = damaged
    fragments = CHUNKS[case](store, ids, foreign)
    _check(store, USES[use], StoreError, fragments)


@pytest.mark.parametrize("use", ["statistics", "update"])
@pytest.mark.parametrize("case", sorted(RANGES))
def test_a_damaged_recorded_range_is_a_store_error(case: str, use: str, damaged: Any) -> None:
    store, ids, foreign = damaged
    fragments = RANGES[case](store, ids, foreign)
    _check(store, USES[use], StoreError, fragments)


@pytest.mark.parametrize("case", sorted({**LAYOUT, **GRIDS}))
def test_info_on_a_damaged_store_is_one_line_and_exit_2(
    case: str, damaged: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store, ids, foreign = damaged
    fragments = {**LAYOUT, **GRIDS}[case](store, ids, foreign)
    before = tree_digest(store)
    code, err = run_cli(["info", str(store)], capsys)
    assert code == 2, err
    assert err.startswith("bandselect info: error: ") and len(err.strip().splitlines()) == 1, err
    assert_house_message(err, *fragments)
    assert tree_digest(store) == before


def test_an_undamaged_copy_reads_as_the_original(damaged: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The control: every use works on the undamaged copy (so each damage above is what fails)."""
    store, _ids, _ = damaged
    for use in USES.values():
        use(store)
    assert run_cli(["info", str(store)], capsys)[0] == 0
    np.testing.assert_array_equal(
        StoreSource(store).read(Window(0, 0, HEIGHT, 0, WIDTH))[0],
        cube(HEIGHT, WIDTH, seed=1).astype(np.float32),
    )


# -- names that are not the content -------------------------------------------------------------------
def test_a_group_named_after_a_files_digest_does_not_make_it_present(damaged: Any, tmp_path: Path) -> None:
    """The issue's case: a group whose name ends with a new file's digest; the file is stored for real."""
    store, ids, _ = damaged
    new = write_npz(tmp_path, "new", cube=cube(HEIGHT, WIDTH, seed=7))
    (expected_id,) = [r.acquisition_id for r in ingest_files([new], tmp_path / "scratch.zarr", chunk_yx=8)]
    squatter = f"zz-{digest_suffix(expected_id)}"
    shutil.copytree(store / ids[0], store / squatter)  # other content, under the new file's digest
    (result,) = ingest_files([new], store, chunk_yx=8)
    assert result.created and result.acquisition_id == expected_id
    campaign = open_campaign(store)
    np.testing.assert_array_equal(
        campaign.open(expected_id)["cube"].values, cube(HEIGHT, WIDTH, seed=7).astype(np.float32)
    )
    with pytest.raises(StoreError) as raised:
        campaign.open(squatter)
    assert_house_message(str(raised.value), squatter, "named after other content")


def test_a_group_squatting_a_files_exact_id_is_refused(damaged: Any, tmp_path: Path) -> None:
    store, ids, _ = damaged
    new = write_npz(tmp_path, "new", cube=cube(HEIGHT, WIDTH, seed=8))
    (expected_id,) = [r.acquisition_id for r in ingest_files([new], tmp_path / "scratch.zarr", chunk_yx=8)]
    shutil.copytree(store / ids[1], store / expected_id)  # sorts after ids[0]: the campaign grid stays good
    before = tree_digest(store)
    with pytest.raises(StoreError) as raised:
        ingest_files([new], store, chunk_yx=8)
    assert_house_message(str(raised.value), expected_id, "nothing was published")
    assert tree_digest(store) == before
