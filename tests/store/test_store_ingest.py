"""Ingest: ENVI in three interleaves, npz/npy/mat, directories, and every kind of bad input."""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from store_helpers import grid, small_cube

from bandselect.errors import (
    DTypeError,
    FileFormatError,
    LabelError,
    NonFiniteError,
    ShapeError,
    StoreError,
    WavelengthError,
)
from bandselect.names import (
    ATTR_SOURCE_BAND_ORDER,
    ATTR_SOURCE_FILE,
    ATTR_SOURCE_FORMAT,
    ATTR_SOURCE_SHA256,
    ATTR_SOURCE_WAVELENGTH_UNITS,
    VAR_CUBE,
    VAR_MASK,
    VAR_VALID,
)
from bandselect.store import ingest, ingest_files, open_campaign, open_source
from bandselect.store.readers import file_sha256

WriteEnvi = Callable[..., Path]


def stored(store: Path, acquisition_id: str) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    dataset = open_campaign(store).open(acquisition_id)
    return dataset[VAR_CUBE].values, dataset["wavelength"].values, dict(dataset.attrs)


@pytest.mark.parametrize("interleave", ["bil", "bip", "bsq"])
@pytest.mark.parametrize("dtype", ["uint16", "int16", "float32", "float64"])
def test_envi_round_trip_in_every_interleave(
    write_envi: WriteEnvi, tmp_path: Path, interleave: str, dtype: str
) -> None:
    cube = small_cube(13, 6, 5, dtype=dtype)
    header = write_envi(
        cube,
        f"s_{interleave}",
        interleave=interleave,
        ext=f".{interleave}",
        metadata={"wavelength": list(grid()), "wavelength units": "Nanometers"},
    )
    [acquisition_id] = ingest([header], tmp_path / "c.zarr", chunk_yx=4)  # 13 rows: a partial last block
    values, wavelengths, attrs = stored(tmp_path / "c.zarr", acquisition_id)
    np.testing.assert_array_equal(values, cube.astype(np.float32))
    np.testing.assert_array_equal(wavelengths, grid())
    assert attrs[ATTR_SOURCE_FORMAT] == f"envi-{interleave}"
    data_file = header.with_suffix(f".{interleave}")
    assert attrs[ATTR_SOURCE_SHA256] == file_sha256(data_file)
    assert attrs[ATTR_SOURCE_FILE] == str(data_file.resolve())


def test_same_cube_in_three_interleaves_gives_one_acquisition(write_envi: WriteEnvi, tmp_path: Path) -> None:
    cube = small_cube()
    metadata = {"wavelength": list(grid())}
    headers = [
        write_envi(cube, f"s_{il}", interleave=il, metadata={**metadata, "wavelength units": "nm"})
        for il in ("bil", "bip", "bsq")
    ]
    results = ingest_files(headers, tmp_path / "c.zarr")
    assert len({r.acquisition_id.rsplit("-", 1)[1] for r in results}) == 1  # one content digest
    assert [r.created for r in results] == [True, False, False]
    assert len(open_campaign(tmp_path / "c.zarr").ids()) == 1


def test_big_endian_envi_and_data_file_given_instead_of_header(write_envi: WriteEnvi, tmp_path: Path) -> None:
    cube = small_cube(dtype=">u2")
    header = write_envi(
        cube,
        "be",
        interleave="bip",
        ext=".img",
        metadata={"wavelength": list(grid()), "wavelength units": "nm", "byte order": 1},
    )
    [acquisition_id] = ingest([header.with_suffix(".img")], tmp_path / "c.zarr")
    np.testing.assert_array_equal(stored(tmp_path / "c.zarr", acquisition_id)[0], cube.astype(np.float32))


def test_micrometre_header_is_converted_to_nm(write_envi: WriteEnvi, tmp_path: Path) -> None:
    header = write_envi(
        small_cube(),
        metadata={"wavelength": [0.45, 0.46, 0.47, 0.48, 0.49], "wavelength units": "Micrometers"},
    )
    [acquisition_id] = ingest([header], tmp_path / "c.zarr")
    _, wavelengths, attrs = stored(tmp_path / "c.zarr", acquisition_id)
    np.testing.assert_array_equal(wavelengths, grid())  # exactly 450.0, 460.0, ... nm
    assert attrs[ATTR_SOURCE_WAVELENGTH_UNITS] == "Micrometers"


def test_missing_units_are_inferred_with_a_warning(write_envi: WriteEnvi) -> None:
    header = write_envi(small_cube(), metadata={"wavelength": [0.45, 0.46, 0.47, 0.48, 0.49]})
    with pytest.warns(UserWarning, match="no wavelength units"):
        source = open_source(header)
    np.testing.assert_array_equal(source.wavelengths_nm, grid())


def test_header_without_wavelengths_needs_them_given(write_envi: WriteEnvi, tmp_path: Path) -> None:
    header = write_envi(small_cube())
    with pytest.raises(WavelengthError, match=r"none in the file.*--wavelengths"):
        ingest([header], tmp_path / "c.zarr")
    assert not (tmp_path / "c.zarr").exists()  # nothing written, not even the store
    listing = tmp_path / "wl.txt"
    listing.write_text("450\n460\n470\n480\n490\n")
    for given in (listing, "450,460,470,480,490", list(grid())):
        [acquisition_id] = ingest([header], tmp_path / "c.zarr", wavelengths=given)
        np.testing.assert_array_equal(stored(tmp_path / "c.zarr", acquisition_id)[1], grid())


@pytest.mark.parametrize(
    ("wavelengths", "message"),
    [
        ([450, 460, 470, 480], "expected 5 values"),
        ([450, 470, 460, 480, 490], "decreasing values"),
        ([450, 460, 460, 480, 490], "duplicate values"),
        ([450, 460, float("nan"), 480, 490], "NaN"),
    ],
)
def test_bad_wavelengths(
    write_envi: WriteEnvi, tmp_path: Path, wavelengths: list[float], message: str
) -> None:
    header = write_envi(small_cube(), metadata={"wavelength": wavelengths, "wavelength units": "nm"})
    with pytest.raises(WavelengthError, match=message) as raised:
        ingest([header], tmp_path / "c.zarr")
    assert "Fix:" in str(raised.value) and str(header) in str(raised.value)
    assert not (tmp_path / "c.zarr").exists()


def test_sort_bands_reorders_overlapping_spectrometers(write_envi: WriteEnvi, tmp_path: Path) -> None:
    cube = small_cube()
    wavelengths = [450.0, 470.0, 460.0, 480.0, 490.0]
    header = write_envi(cube, metadata={"wavelength": wavelengths, "wavelength units": "nm"})
    with pytest.raises(WavelengthError, match="--sort-bands"):
        ingest([header], tmp_path / "c.zarr")
    [acquisition_id] = ingest([header], tmp_path / "c.zarr", sort_bands=True)
    values, stored_wavelengths, attrs = stored(tmp_path / "c.zarr", acquisition_id)
    order = [0, 2, 1, 3, 4]
    np.testing.assert_array_equal(stored_wavelengths, grid())
    np.testing.assert_array_equal(values, cube[..., order].astype(np.float32))
    assert list(attrs[ATTR_SOURCE_BAND_ORDER]) == order


def test_missing_header_or_data_file(write_envi: WriteEnvi, tmp_path: Path) -> None:
    header = write_envi(small_cube(), metadata={"wavelength": list(grid()), "wavelength units": "nm"})
    data = header.with_suffix(".raw")
    orphan = tmp_path / "orphan.raw"
    data.rename(orphan)
    with pytest.raises(FileFormatError, match="no data file"):
        ingest([header], tmp_path / "c.zarr")
    with pytest.raises(FileFormatError, match="no header"):
        ingest([orphan], tmp_path / "c.zarr")
    with pytest.raises(FileFormatError, match="no such path"):
        ingest([tmp_path / "nowhere.hdr"], tmp_path / "c.zarr")
    assert not (tmp_path / "c.zarr").exists()


def test_truncated_and_corrupt_files(write_envi: WriteEnvi, tmp_path: Path) -> None:
    header = write_envi(small_cube(), metadata={"wavelength": list(grid()), "wavelength units": "nm"})
    data = header.with_suffix(".raw")
    data.write_bytes(data.read_bytes()[:-10])
    with pytest.raises(FileFormatError, match="truncated"):
        ingest([header], tmp_path / "c.zarr")
    bad_header = tmp_path / "bad.hdr"
    bad_header.write_text("not an envi header\n")
    (tmp_path / "bad.raw").write_bytes(b"\0" * 100)
    with pytest.raises(FileFormatError, match="readable ENVI header"):
        ingest([bad_header], tmp_path / "c.zarr")
    npz = tmp_path / "cut.npz"
    np.savez(npz, cube=small_cube(), wavelengths_nm=grid())
    npz.write_bytes(npz.read_bytes()[:200])
    with pytest.raises(FileFormatError, match="zip"):
        ingest([npz], tmp_path / "c.zarr")
    npy = tmp_path / "cut.npy"
    np.save(npy, small_cube())
    npy.write_bytes(npy.read_bytes()[:-3])
    with pytest.raises(FileFormatError, match="truncated"):
        ingest([npy], tmp_path / "c.zarr", wavelengths=grid())
    assert not (tmp_path / "c.zarr").exists()


def test_corrupt_npz_member_is_found_while_streaming(tmp_path: Path) -> None:
    """A bit flip inside a compressed member passes the header checks and fails the CRC: nothing published."""
    npz = tmp_path / "flip.npz"
    np.savez(npz, cube=small_cube(40, 30, 5), wavelengths_nm=grid())
    raw = bytearray(npz.read_bytes())
    with zipfile.ZipFile(npz) as archive:
        info = archive.getinfo("cube.npy")
    raw[info.header_offset + 30 + len("cube.npy") + 200] ^= 0xFF  # inside the cube's data
    npz.write_bytes(bytes(raw))
    with pytest.raises(FileFormatError, match="corrupt"):
        ingest([npz], tmp_path / "c.zarr")
    assert open_campaign(tmp_path / "c.zarr").ids() == []


def test_nonfinite_cube_in_a_file(tmp_path: Path) -> None:
    cube = small_cube(dtype="float32")
    cube[1, 1, 1] = np.nan
    npz = tmp_path / "nan.npz"
    np.savez_compressed(npz, cube=cube, wavelengths_nm=grid())
    with pytest.raises(NonFiniteError, match=r"nan\.npz"):
        ingest([npz], tmp_path / "c.zarr")
    assert open_campaign(tmp_path / "c.zarr").ids() == []
    [acquisition_id] = ingest([npz], tmp_path / "c.zarr", mask_nonfinite=True)
    valid = open_campaign(tmp_path / "c.zarr").open(acquisition_id)[VAR_VALID].values
    assert (~valid).sum() == 1 and not valid[1, 1]


@pytest.mark.parametrize("bad", ["complex", "strings", "object", "bool"])
def test_unsupported_dtypes(tmp_path: Path, bad: str) -> None:
    cube = small_cube()
    arrays: dict[str, np.ndarray] = {
        "complex": cube.astype(np.complex64),
        "strings": cube.astype(str),
        "object": cube.astype(object),
        "bool": cube > 10,
    }
    npz = tmp_path / f"{bad}.npz"
    np.savez(npz, cube=arrays[bad], wavelengths_nm=grid())
    with pytest.raises(DTypeError, match="real numeric dtype") as raised:
        ingest([npz], tmp_path / "c.zarr")
    assert "Fix:" in str(raised.value)
    assert not (tmp_path / "c.zarr").exists()


def test_complex_envi_is_a_dtype_error(write_envi: WriteEnvi, tmp_path: Path) -> None:
    header = write_envi(
        small_cube().astype(np.complex64), metadata={"wavelength": list(grid()), "wavelength units": "nm"}
    )
    with pytest.raises(DTypeError, match="complex"):
        ingest([header], tmp_path / "c.zarr")


def test_npz_with_mask_and_npy(tmp_path: Path) -> None:
    cube = small_cube()
    labels = (np.arange(63).reshape(9, 7) % 4).astype(np.int32)
    np.savez(tmp_path / "a.npz", cube=cube, wavelengths_nm=grid(), gt=labels)
    np.save(tmp_path / "b.npy", cube + 1)
    ids = ingest([tmp_path / "a.npz", tmp_path / "b.npy"], tmp_path / "c.zarr", wavelengths=grid())
    campaign = open_campaign(tmp_path / "c.zarr")
    a, b = (campaign.open(i) for i in ids)
    np.testing.assert_array_equal(a[VAR_MASK].values, labels)
    np.testing.assert_array_equal(b[VAR_CUBE].values, (cube + 1).astype(np.float32))
    assert VAR_MASK not in b


def test_npy_needs_wavelengths(tmp_path: Path) -> None:
    np.save(tmp_path / "b.npy", small_cube())
    with pytest.raises(WavelengthError, match="holds only the cube"):
        ingest([tmp_path / "b.npy"], tmp_path / "c.zarr")


def test_mask_of_another_shape(tmp_path: Path) -> None:
    np.savez(tmp_path / "m.npz", cube=small_cube(), wavelengths_nm=grid(), mask=np.zeros((7, 9), np.int32))
    with pytest.raises(LabelError, match=r"expected \(9, 7\).*found \(7, 9\)"):
        ingest([tmp_path / "m.npz"], tmp_path / "c.zarr")


def test_npz_without_cube_and_2d_cube(tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", data=small_cube(), wavelengths_nm=grid())
    with pytest.raises(FileFormatError, match="found arrays"):
        ingest([tmp_path / "x.npz"], tmp_path / "c.zarr")
    np.savez(tmp_path / "flat.npz", cube=np.zeros((9, 7)), wavelengths_nm=grid())
    with pytest.raises(ShapeError, match="3-D"):
        ingest([tmp_path / "flat.npz"], tmp_path / "c.zarr")


def test_mat_v5_round_trip_and_damaged_v73(tmp_path: Path) -> None:
    cube = small_cube()
    labels = (np.arange(63).reshape(9, 7) % 2).astype(np.uint8)
    scipy.io.savemat(tmp_path / "scene.mat", {"cube": cube, "wavelengths_nm": grid(), "gt": labels})
    [acquisition_id] = ingest([tmp_path / "scene.mat"], tmp_path / "c.zarr")
    dataset = open_campaign(tmp_path / "c.zarr").open(acquisition_id)
    np.testing.assert_array_equal(dataset[VAR_CUBE].values, cube.astype(np.float32))
    np.testing.assert_array_equal(dataset[VAR_MASK].values, labels)
    v73 = tmp_path / "new.mat"
    v73.write_bytes(b"MATLAB 7.3 MAT-file".ljust(512, b" ") + b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(FileFormatError, match=r"readable MATLAB v7\.3 file"):  # the signature, no HDF5 behind
        ingest([v73], tmp_path / "c.zarr")
    garbage = tmp_path / "garbage.mat"
    garbage.write_bytes(b"\x01\x02" * 100)
    with pytest.raises(FileFormatError, match="MATLAB"):
        ingest([garbage], tmp_path / "c.zarr")


def test_mat_with_ambiguous_cube_and_micron_wavelengths(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "two.mat", {"a": small_cube(), "b": small_cube(seed=1), "wavelength": grid()})
    with pytest.raises(FileFormatError, match="name the cube variable 'cube'"):
        ingest([tmp_path / "two.mat"], tmp_path / "c.zarr")
    scipy.io.savemat(tmp_path / "one.mat", {"img": small_cube(), "wavelength": grid() / 1000})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        [acquisition_id] = ingest([tmp_path / "one.mat"], tmp_path / "c.zarr")
    np.testing.assert_allclose(open_campaign(tmp_path / "c.zarr").open(acquisition_id)["wavelength"], grid())


def test_unknown_file_type(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FileFormatError, match=r"unknown type '\.txt'"):
        ingest([tmp_path / "notes.txt"], tmp_path / "c.zarr")


def test_directory_is_walked_and_unsupported_files_skipped(write_envi: WriteEnvi, tmp_path: Path) -> None:
    source = tmp_path / "archive"
    write_envi(
        small_cube(),
        "a",
        metadata={"wavelength": list(grid()), "wavelength units": "nm"},
        directory=source / "day1",
    )
    (source / "day2").mkdir()
    np.savez(source / "day2" / "b.npz", cube=small_cube(seed=2), wavelengths_nm=grid())
    (source / "README.txt").write_text("not a cube")
    (source / ".hidden").mkdir()
    (source / ".hidden" / "x.npz").write_bytes(b"junk")
    results = ingest_files([source], tmp_path / "c.zarr")
    assert [r.source.name for r in results] == ["a.hdr", "b.npz"]
    assert all(r.created for r in results)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileFormatError, match="at least one file"):
        ingest([empty], tmp_path / "c.zarr")


def test_several_files_are_all_validated_before_any_write(write_envi: WriteEnvi, tmp_path: Path) -> None:
    good = write_envi(small_cube(), "good", metadata={"wavelength": list(grid()), "wavelength units": "nm"})
    no_wl = write_envi(small_cube(seed=1), "no_wavelengths")
    np.savez(tmp_path / "other_grid.npz", cube=small_cube(n_bands=4), wavelengths_nm=grid(4))
    with pytest.raises(WavelengthError) as raised:
        ingest([good, no_wl, tmp_path / "other_grid.npz"], tmp_path / "c.zarr")
    message = str(raised.value)
    assert "2 of 3 files" in message and "no_wavelengths.hdr" in message and "other_grid.npz" in message
    failing = [line.split(": ", 1)[0] for line in message.splitlines()[1:]]
    assert [Path(f).name for f in failing] == ["no_wavelengths.hdr", "other_grid.npz"]  # good.hdr is fine
    assert not (tmp_path / "c.zarr").exists()


def test_failure_while_streaming_a_later_file_publishes_none(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", cube=small_cube(dtype="float32"), wavelengths_nm=grid())
    bad = small_cube(dtype="float32", seed=3)
    bad[-1, -1, -1] = np.inf
    np.savez(tmp_path / "b.npz", cube=bad, wavelengths_nm=grid())
    with pytest.raises(NonFiniteError, match=r"b\.npz"):
        ingest([tmp_path / "a.npz", tmp_path / "b.npz"], tmp_path / "c.zarr")
    campaign = open_campaign(tmp_path / "c.zarr")
    assert campaign.ids() == []
    assert list((campaign.path / ".staging").iterdir()) == []


def test_ingest_into_something_that_is_not_a_store(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", cube=small_cube(), wavelengths_nm=grid())
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(StoreError, match="expected a campaign store"):
        ingest([tmp_path / "a.npz"], folder)
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]


def test_ingest_into_campaign_with_other_grid(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", cube=small_cube(), wavelengths_nm=grid())
    np.savez(tmp_path / "b.npz", cube=small_cube(), wavelengths_nm=grid() + 2)
    ingest([tmp_path / "a.npz"], tmp_path / "c.zarr")
    with pytest.raises(WavelengthError, match="share one wavelength grid"):
        ingest([tmp_path / "b.npz"], tmp_path / "c.zarr")
    assert len(open_campaign(tmp_path / "c.zarr").ids()) == 1
