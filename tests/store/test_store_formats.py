"""Readers on the field's libraries: GeoTIFF/COG (rasterio), HDF5 and MATLAB v7.3 (h5py), ENVI corrections
(missing byte order, bbl, data ignore value, map info), and the georeference kept on every acquisition.

Every file is written in the test by rasterio, h5py or SPy; a round trip gives exactly the source values
and wavelengths.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401 - the .rio accessor
from rasterio.crs import CRS
from store_helpers import edit_header, grid, small_cube, write_geotiff

from bandselect.errors import GeoreferenceError, WavelengthError
from bandselect.names import (
    ATTR_DATA_IGNORE_VALUE,
    ATTR_DROPPED_BANDS,
    ATTR_INGEST_WARNINGS,
    ATTR_SOURCE_AXIS_ORDER,
    ATTR_SOURCE_BAND_ORDER,
    ATTR_SOURCE_BYTE_ORDER,
    ATTR_SOURCE_FORMAT,
    ATTR_SOURCE_WAVELENGTH_UNITS,
    COORD_SPATIAL_REF,
    VAR_CUBE,
    VAR_MASK,
    VAR_VALID,
)
from bandselect.store import ingest, make_acquisition, open_campaign, open_source
from bandselect.store.georef import Georeference, georeference_of

WriteEnvi = Callable[..., Path]
UTM33 = (2.0, 0.0, 500000.0, 0.0, -2.0, 4100000.0)
MAP_INFO_UTM33 = "{UTM, 1.000, 1.000, 500000.000, 4100000.000, 2.0, 2.0, 33, North, WGS-84, units=Meters}"


def stored(store: Path, acquisition_id: str):
    return open_campaign(store).open(acquisition_id)


# -- GeoTIFF / COG -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("metadata", ["descriptions", "band-metadata-um", "imagery", "bare-numbers"])
def test_geotiff_with_crs_round_trip(tmp_path: Path, metadata: str) -> None:
    cube = small_cube(13, 6, 5, dtype="uint16")
    options: dict[str, object] = {
        "descriptions": {"descriptions": [f"{w:g} nm" for w in grid()]},
        "band-metadata-um": {
            "band_tags": [{"wavelength": f"{w / 1000:g}", "wavelength_units": "Micrometers"} for w in grid()]
        },
        "imagery": {"imagery_um": [w / 1000 for w in grid()]},
        "bare-numbers": {"descriptions": [f"{w:g}" for w in grid()]},
    }[metadata]
    path = write_geotiff(tmp_path / "scene.tif", cube, epsg=32633, transform=UTM33, **options)  # type: ignore[arg-type]
    inferred = metadata == "bare-numbers"
    with pytest.warns(UserWarning, match="no wavelength units") if inferred else contextlib.nullcontext():
        [acquisition_id] = ingest([path], tmp_path / "c.zarr", chunk_yx=4)
    dataset = stored(tmp_path / "c.zarr", acquisition_id)
    np.testing.assert_array_equal(dataset[VAR_CUBE].values, cube.astype(np.float32))
    np.testing.assert_array_equal(dataset["wavelength"].values, grid())  # exactly 450.0, 460.0, ...
    assert dataset.attrs[ATTR_SOURCE_FORMAT] == "gdal-gtiff"
    # The georeference, after rioxarray's convention: a spatial_ref coordinate.
    assert COORD_SPATIAL_REF in dataset.coords
    assert dataset.rio.crs == CRS.from_epsg(32633)
    assert tuple(dataset.rio.transform())[:6] == UTM33
    if inferred:
        assert "no wavelength units" in dataset.attrs[ATTR_INGEST_WARNINGS][0]
    else:
        assert ATTR_INGEST_WARNINGS not in dataset.attrs


def test_geotiff_without_wavelengths_says_how_to_pass_them(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "plain.tif", small_cube(), descriptions=["Band 1", "", "x", "y", "z"])
    with pytest.raises(WavelengthError) as raised:
        ingest([path], tmp_path / "c.zarr")
    message = str(raised.value)
    assert "none in the file" in message and "--wavelengths" in message and "band descriptions" in message
    assert not (tmp_path / "c.zarr").exists()
    [acquisition_id] = ingest([path], tmp_path / "c.zarr", wavelengths="450,460,470,480,490")
    dataset = stored(tmp_path / "c.zarr", acquisition_id)
    np.testing.assert_array_equal(dataset["wavelength"].values, grid())
    assert COORD_SPATIAL_REF not in dataset.coords  # no map information: no georeference invented


def test_cog_with_nodata_marks_those_pixels_invalid(tmp_path: Path) -> None:
    cube = small_cube(20, 18, 5, dtype="int16")
    cube[3, 4, :] = -9999
    cube[7, 1, 2] = -9999  # one band is enough: a spectrum with a hole is not a valid spectrum
    path = write_geotiff(
        tmp_path / "scene.tif",
        cube,
        descriptions=[f"{w:g} nm" for w in grid()],
        epsg=4326,
        transform=(0.001, 0.0, 10.0, 0.0, -0.001, 45.0),
        nodata=-9999,
        driver="COG",
    )
    [acquisition_id] = ingest([path], tmp_path / "c.zarr")
    dataset = stored(tmp_path / "c.zarr", acquisition_id)
    valid = dataset[VAR_VALID].values
    assert sorted(zip(*np.nonzero(~valid), strict=True)) == [(3, 4), (7, 1)]
    expected = np.where(cube == -9999, 0, cube).astype(np.float32)
    np.testing.assert_array_equal(dataset[VAR_CUBE].values, expected)
    assert dataset.attrs[ATTR_DATA_IGNORE_VALUE] == -9999.0
    assert dataset.rio.crs == CRS.from_epsg(4326)


# -- HDF5 and MATLAB v7.3 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["y,x,band", "band,y,x"])
def test_hdf5_round_trip(tmp_path: Path, layout: str) -> None:
    cube = small_cube(11, 7, 5, dtype="float32")
    labels = (np.arange(77).reshape(11, 7) % 3).astype(np.uint8)
    path = tmp_path / "scene.h5"
    with h5py.File(path, "w") as handle:
        group = handle.create_group("scan")
        stored_cube = cube if layout == "y,x,band" else np.moveaxis(cube, -1, 0)
        group.create_dataset("cube", data=stored_cube, chunks=True)
        wavelengths = group.create_dataset("wavelength", data=grid() / 1000)
        wavelengths.attrs["units"] = "micrometers"
        group.create_dataset("gt", data=labels)
    [acquisition_id] = ingest([path], tmp_path / "c.zarr", chunk_yx=4)
    dataset = stored(tmp_path / "c.zarr", acquisition_id)
    np.testing.assert_array_equal(dataset[VAR_CUBE].values, cube)
    np.testing.assert_array_equal(dataset["wavelength"].values, grid())
    np.testing.assert_array_equal(dataset[VAR_MASK].values, labels)
    assert dataset.attrs[ATTR_SOURCE_AXIS_ORDER] == layout
    assert dataset.attrs[ATTR_SOURCE_WAVELENGTH_UNITS] == "micrometers"


def _write_matlab_v73(path: Path, variables: dict[str, np.ndarray]) -> Path:
    """A MATLAB v7.3 file as MATLAB writes one: a 512-byte header, then HDF5 with column-major arrays."""
    with h5py.File(path, "w", userblock_size=512) as handle:
        for name, value in variables.items():
            dataset = handle.create_dataset(name, data=np.asarray(value).T)  # column-major: axes reversed
            dataset.attrs["MATLAB_class"] = np.bytes_("double" if value.dtype.kind == "f" else "uint16")
    header = (
        b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Dec  1 10:00:00 2026 HDF5 schema 1.00 ."
    )
    with open(path, "r+b") as handle:
        handle.write(header.ljust(124, b" ") + b"\x00\x02IM")
    return path


def test_matlab_v73_round_trip(tmp_path: Path) -> None:
    cube = small_cube(9, 7, 5, dtype="uint16")
    labels = (np.arange(63).reshape(9, 7) % 2).astype(np.uint16)
    path = _write_matlab_v73(
        tmp_path / "scene.mat", {"img": cube, "wavelengths_nm": grid()[None, :], "mask": labels}
    )
    [acquisition_id] = ingest([path], tmp_path / "c.zarr")
    dataset = stored(tmp_path / "c.zarr", acquisition_id)
    np.testing.assert_array_equal(dataset[VAR_CUBE].values, cube.astype(np.float32))
    np.testing.assert_array_equal(dataset["wavelength"].values, grid())
    np.testing.assert_array_equal(dataset[VAR_MASK].values, labels)
    assert dataset.attrs[ATTR_SOURCE_FORMAT] == "mat-v7.3"


# -- ENVI ----------------------------------------------------------------------------------------------------
def test_envi_without_byte_order_is_read_little_endian_with_a_recorded_warning(
    write_envi: WriteEnvi, tmp_path: Path
) -> None:
    cube = small_cube(dtype="<u2")
    header = write_envi(cube, metadata={"wavelength": list(grid()), "wavelength units": "nm"})
    edit_header(header, remove=["byte order"])  # as PlantCV writes them
    with pytest.warns(UserWarning, match="no 'byte order'"):
        [acquisition_id] = ingest([header], tmp_path / "c.zarr")
    dataset = stored(tmp_path / "c.zarr", acquisition_id)
    np.testing.assert_array_equal(dataset[VAR_CUBE].values, cube.astype(np.float32))
    assert dataset.attrs[ATTR_SOURCE_BYTE_ORDER] == "little"
    [note] = dataset.attrs[ATTR_INGEST_WARNINGS]
    assert "little-endian (the ENVI default)" in note and "--byte-order big" in note


def test_byte_order_option_overrides_the_header(write_envi: WriteEnvi, tmp_path: Path) -> None:
    cube = small_cube(dtype="uint16")
    header = write_envi(
        cube, interleave="bip", metadata={"wavelength": list(grid()), "wavelength units": "nm"}
    )
    header.with_suffix(".raw").write_bytes(cube.astype(">u2").tobytes())  # big-endian data, BIP order
    edit_header(header, remove=["byte order"])
    with pytest.warns(UserWarning):
        wrong = open_source(header)  # little-endian by default: every value byte-swapped
    right = open_source(header, byte_order="big")
    block_wrong = next(wrong.read_blocks(100))[0]
    block_right = next(right.read_blocks(100))[0]
    np.testing.assert_array_equal(block_right, cube)
    np.testing.assert_array_equal(block_wrong, cube.astype("<u2").byteswap())  # every value byte-swapped
    assert right.attrs[ATTR_SOURCE_BYTE_ORDER] == "big"
    assert "as given" in right.attrs[ATTR_INGEST_WARNINGS][0]


def test_envi_bad_band_list_drops_the_bad_bands(write_envi: WriteEnvi, tmp_path: Path) -> None:
    cube = small_cube(n_bands=6)
    wavelengths = [450.0, 460.0, 460.0, 470.0, 480.0, 0.0]  # bad bands may carry junk wavelengths
    header = write_envi(
        cube,
        metadata={"wavelength": wavelengths, "wavelength units": "nm", "bbl": [1, 1, 0, 1, 1, 0]},
    )
    [acquisition_id] = ingest([header], tmp_path / "c.zarr")
    dataset = stored(tmp_path / "c.zarr", acquisition_id)
    np.testing.assert_array_equal(dataset[VAR_CUBE].values, cube[..., [0, 1, 3, 4]].astype(np.float32))
    np.testing.assert_array_equal(dataset["wavelength"].values, [450.0, 460.0, 470.0, 480.0])
    assert list(dataset.attrs[ATTR_DROPPED_BANDS]) == [2, 5]
    assert list(dataset.attrs[ATTR_SOURCE_BAND_ORDER]) == [0, 1, 3, 4]
    assert "2 bad bands left out" in dataset.attrs[ATTR_INGEST_WARNINGS][0]


def test_envi_data_ignore_value_marks_pixels_invalid(write_envi: WriteEnvi, tmp_path: Path) -> None:
    cube = small_cube(dtype="float32")
    cube[2, 3, :] = -9999.0
    header = write_envi(
        cube, metadata={"wavelength": list(grid()), "wavelength units": "nm", "data ignore value": -9999}
    )
    [acquisition_id] = ingest([header], tmp_path / "c.zarr")
    dataset = stored(tmp_path / "c.zarr", acquisition_id)
    valid = dataset[VAR_VALID].values
    assert (~valid).sum() == 1 and not valid[2, 3]
    assert (dataset[VAR_CUBE].values[2, 3] == 0).all()
    np.testing.assert_array_equal(dataset[VAR_CUBE].values[valid], cube[valid])
    assert dataset.attrs[ATTR_DATA_IGNORE_VALUE] == -9999.0


def test_envi_map_info_is_kept_and_gdal_reads_the_same(write_envi: WriteEnvi, tmp_path: Path) -> None:
    cube = small_cube(dtype="int16")
    header = write_envi(
        cube,
        metadata={"wavelength": list(grid()), "wavelength units": "nm", "map info": MAP_INFO_UTM33},
    )
    native = open_source(header)
    through_gdal = open_source(header, reader="gdal")
    assert native.georeference == through_gdal.georeference
    assert native.georeference is not None and native.georeference.describe() == "EPSG:32633"
    assert native.georeference.transform == UTM33
    np.testing.assert_array_equal(native.wavelengths_nm, through_gdal.wavelengths_nm)
    for (a, _, _), (b, _, _) in zip(native.read_blocks(4), through_gdal.read_blocks(4), strict=True):
        np.testing.assert_array_equal(a, b)
    assert through_gdal.attrs[ATTR_SOURCE_FORMAT] == "gdal-envi"
    [acquisition_id] = ingest([header], tmp_path / "c.zarr")
    assert stored(tmp_path / "c.zarr", acquisition_id).rio.crs == CRS.from_epsg(32633)


# -- georeference in the campaign ----------------------------------------------------------------------------
def test_mixed_crs_in_one_campaign_is_an_error(tmp_path: Path) -> None:
    descriptions = [f"{w:g} nm" for w in grid()]
    a = write_geotiff(
        tmp_path / "a.tif", small_cube(), descriptions=descriptions, epsg=32633, transform=UTM33
    )
    b = write_geotiff(
        tmp_path / "b.tif", small_cube(seed=1), descriptions=descriptions, epsg=32634, transform=UTM33
    )
    with pytest.raises(GeoreferenceError, match=r"EPSG:32633.*found EPSG:32634") as raised:
        ingest([a, b], tmp_path / "c.zarr")
    assert "Fix:" in str(raised.value) and "b.tif" in str(raised.value)
    assert not (tmp_path / "c.zarr").exists()  # nothing written
    ingest([a], tmp_path / "c.zarr")
    with pytest.raises(GeoreferenceError, match="a campaign has one CRS"):
        ingest([b], tmp_path / "c.zarr")  # against the campaign's
    campaign = open_campaign(tmp_path / "c.zarr")
    assert len(campaign.ids()) == 1
    other = make_acquisition(
        small_cube(seed=2), grid(), georeference=Georeference(CRS.from_epsg(32634).to_wkt(), UTM33)
    )
    with pytest.raises(GeoreferenceError):
        campaign.append(other)  # the in-memory path checks it too
    # An acquisition without a CRS fits any campaign.
    np.savez(tmp_path / "plain.npz", cube=small_cube(seed=3), wavelengths_nm=grid())
    ingest([tmp_path / "plain.npz"], tmp_path / "c.zarr")
    assert len(open_campaign(tmp_path / "c.zarr").ids()) == 2


def test_georeference_is_part_of_the_content_and_survives_append(tmp_path: Path) -> None:
    cube = small_cube(dtype="float32")
    wkt = CRS.from_epsg(32633).to_wkt()
    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    plain = campaign.append(make_acquisition(cube, grid()))
    here = campaign.append(make_acquisition(cube, grid(), georeference=Georeference(wkt, UTM33)))
    shifted = (2.0, 0.0, 500100.0, 0.0, -2.0, 4100000.0)
    there = campaign.append(make_acquisition(cube, grid(), georeference=Georeference(wkt, shifted)))
    assert len({plain, here, there}) == 3  # same pixels, other place: other acquisitions
    assert georeference_of(campaign.open(plain)) is None
    assert georeference_of(campaign.open(there)) == Georeference(wkt, shifted)
    assert campaign.open(here)[VAR_CUBE].encoding["grid_mapping"] == COORD_SPATIAL_REF
    # The same content appended again is still a no-op.
    assert campaign.append(make_acquisition(cube, grid(), georeference=Georeference(wkt, UTM33))) == here


def test_a_raster_gdal_opens_is_read_with_reader_gdal(tmp_path: Path) -> None:
    """Any format GDAL opens (here an ERDAS Imagine .img, GDAL's HFA driver) goes through --reader gdal."""
    cube = small_cube(dtype="uint16")
    path = write_geotiff(
        tmp_path / "scene.img", cube, descriptions=[f"{w:g} nm" for w in grid()], driver="HFA"
    )
    with rasterio.open(path) as dataset:
        assert dataset.driver == "HFA"
    source = open_source(path, reader="gdal")
    np.testing.assert_array_equal(next(source.read_blocks(100))[0], cube)
    np.testing.assert_array_equal(source.wavelengths_nm, grid())
