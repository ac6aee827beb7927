"""Products: the k-band cube (zarr), GeoTIFF/COG files of every product, georeference carried from the
acquisition to each product, the band-count rule of each product, and atomic, idempotent publishing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401 - the .rio accessor
from rasterio.crs import CRS
from rasterio.enums import ColorInterp

from bandselect.errors import ConfigError, StoreError
from bandselect.export import (
    ATTR_SELECTED_INDICES,
    ATTR_SOURCE_ACQUISITION,
    published_ids,
    read_composite,
)
from bandselect.names import COORD_SPATIAL_REF, VAR_CUBE, VAR_MASK, VAR_VALID
from bandselect.products import (
    ProductPlan,
    bands_config_hash,
    check_products,
    export_bands,
    export_products,
    open_bands,
    planned_band_count,
    read_bands,
)
from bandselect.products.bands import COORD_SOURCE_BAND
from bandselect.products.geotiff import TAG_CONFIG_HASH
from bandselect.selection import BandSelection
from bandselect.selectors import (
    CIRFalseColorSelector,
    FixedWavelengthSelector,
    SoftChannelSelector,
    SupervisedFullSpectrumBandSelector,
)
from bandselect.store import ingest, open_campaign, open_source
from bandselect.synthetic import write_campaign

UTM33 = (2.0, 0.0, 500000.0, 0.0, -2.0, 4100000.0)
N_BANDS = 12
WAVELENGTHS = np.linspace(450.0, 900.0, N_BANDS)


@pytest.fixture(scope="module")
def georeferenced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A campaign of two GeoTIFF scenes (EPSG:32633), one with a no-data pixel, ingested with chunks of 16."""
    folder = tmp_path_factory.mktemp("geo")
    rng = np.random.default_rng(0)
    for index, (height, width) in enumerate(((40, 30), (20, 36))):
        cube = rng.integers(1, 4000, (height, width, N_BANDS)).astype(np.uint16)
        if index == 0:
            cube[5, 6, :] = 0  # no data
        transform = (2.0, 0.0, 500000.0 + 1000 * index, 0.0, -2.0, 4100000.0)
        profile = {
            "driver": "GTiff",
            "width": width,
            "height": height,
            "count": N_BANDS,
            "dtype": "uint16",
            "crs": CRS.from_epsg(32633),
            "transform": rasterio.Affine(*transform),
            "nodata": 0,
        }
        with rasterio.open(folder / f"scene{index}.tif", "w", **profile) as dst:
            dst.write(cube.transpose(2, 0, 1))
            for band, wavelength in enumerate(WAVELENGTHS, start=1):
                dst.set_band_description(band, f"{float(wavelength)!r} nm")
    store = folder / "campaign.zarr"
    ingest(sorted(folder.glob("*.tif")), store, chunk_yx=16)
    return store


def five_bands(store: Path) -> BandSelection:
    selector = FixedWavelengthSelector(target_wavelengths=(860, 450, 655, 540, 736))
    return selector.selection(open_campaign(store).wavelengths)


def test_k_band_cube_keeps_the_selected_bands_with_their_wavelengths(
    georeferenced: Path, tmp_path: Path
) -> None:
    campaign = open_campaign(georeferenced)
    selection = five_bands(georeferenced)
    kept = sorted(selection.indices)
    output = tmp_path / "bands.zarr"
    for acquisition_id in campaign.ids():
        result = export_bands(campaign, acquisition_id, output, selection, attrs={"campaign": "geo"})
        assert (result.status, result.product, result.config_hash) == (
            "published",
            "bands",
            bands_config_hash(selection),
        )
        product = read_bands(output, acquisition_id)
        source = campaign.open(acquisition_id)
        np.testing.assert_array_equal(product[VAR_CUBE].values, source[VAR_CUBE].values[..., kept])
        np.testing.assert_array_equal(product["wavelength"].values, WAVELENGTHS[kept])  # increasing
        assert list(product[COORD_SOURCE_BAND].values) == kept
        np.testing.assert_array_equal(product[VAR_VALID].values, source[VAR_VALID].values)
        assert product[VAR_CUBE].data.chunks[0][0] == 16 and product[VAR_CUBE].shape[-1] == 5
        assert product.attrs[ATTR_SOURCE_ACQUISITION] == acquisition_id
        assert product.attrs[ATTR_SELECTED_INDICES] == list(selection.indices)
        assert product.attrs["campaign"] == "geo"
        # The georeference is carried to the product.
        assert product.rio.crs == CRS.from_epsg(32633)
        assert tuple(product.rio.transform())[:6] == tuple(source.rio.transform())[:6]
    first = campaign.ids()[0]
    assert not bool(read_bands(output, first)[VAR_VALID].values[5, 6])
    # Idempotent: the same selection again reads and writes nothing; another replaces the group.
    assert export_bands(campaign, first, output, selection).status == "skipped"
    other = FixedWavelengthSelector(target_wavelengths=(450, 900)).selection(campaign.wavelengths)
    assert export_bands(campaign, first, output, other).status == "replaced"
    assert read_bands(output, first)[VAR_CUBE].shape[-1] == 2
    assert list((output / ".staging").iterdir()) == []


def test_k_band_cube_copies_the_labels(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "s.zarr", 1, 24, 20, n_bands=16, chunk_yx=8, anomaly_fraction=0.05)
    [acquisition_id] = campaign.ids()
    selection = BandSelection.create(
        [3], campaign.wavelengths, selector_type="manual"
    )  # one band is a product
    export_bands(campaign, acquisition_id, tmp_path / "b.zarr", selection)
    product = read_bands(tmp_path / "b.zarr", acquisition_id)
    np.testing.assert_array_equal(product[VAR_MASK].values, campaign.open(acquisition_id)[VAR_MASK].values)
    assert COORD_SPATIAL_REF not in product.coords  # no georeference invented


@pytest.mark.parametrize("mode", ["tiff", "cog"])
def test_k_band_geotiff_opens_with_rasterio_georeferenced(
    georeferenced: Path, tmp_path: Path, mode: str
) -> None:
    campaign = open_campaign(georeferenced)
    selection = five_bands(georeferenced)
    kept = sorted(selection.indices)
    plan = ProductPlan(
        {"bands": str(tmp_path / "bands.zarr"), "composite": str(tmp_path / "rgb.zarr")},
        geotiff=mode,
        geotiff_dir=str(tmp_path / "geotiff"),
    )
    results = export_products(georeferenced, campaign.ids(), selection, plan)
    assert [r.product for r in results] == ["bands", "bands-geotiff", "composite", "composite-geotiff"] * 2
    assert {r.status for r in results} == {"published"}
    for acquisition_id in campaign.ids():
        source = campaign.open(acquisition_id)
        path = tmp_path / "geotiff" / "bands" / f"{acquisition_id}.tif"
        with rasterio.open(path) as dataset:
            assert dataset.crs == CRS.from_epsg(32633)
            assert tuple(dataset.transform)[:6] == tuple(source.rio.transform())[:6]
            assert dataset.count == 5 and dataset.dtypes[0] == "float32"
            assert dataset.descriptions == tuple(
                f"{w:.6f}".rstrip("0").rstrip(".") + " nm" for w in WAVELENGTHS[kept]
            )
            np.testing.assert_array_equal(
                dataset.read().transpose(1, 2, 0), source[VAR_CUBE].values[..., kept]
            )
            np.testing.assert_array_equal(dataset.dataset_mask() > 0, source[VAR_VALID].values)
            hashes = {r.config_hash for r in results if r.product == "bands-geotiff"}
            assert dataset.tags()[TAG_CONFIG_HASH] in hashes
            if mode == "cog":
                assert dataset.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        # bandselect reads its own product back exactly (wavelengths from the band metadata).
        reread = open_source(path)
        np.testing.assert_array_equal(reread.wavelengths_nm, WAVELENGTHS[kept])
        np.testing.assert_array_equal(next(reread.read_blocks(1000))[0], source[VAR_CUBE].values[..., kept])
        with rasterio.open(tmp_path / "geotiff" / "composite" / f"{acquisition_id}.tif") as composite:
            assert composite.count == 3 and composite.crs == CRS.from_epsg(32633)
            assert composite.colorinterp == (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
            rgb = list(selection.rgb_indices)
            np.testing.assert_array_equal(
                composite.read().transpose(1, 2, 0), source[VAR_CUBE].values[..., rgb]
            )
        assert read_composite(tmp_path / "rgb.zarr", acquisition_id).rio.crs == CRS.from_epsg(32633)
    # A second export skips everything (no file rewritten); no temporary file is left behind.
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "geotiff").rglob("*.tif")}
    again = export_products(georeferenced, campaign.ids(), selection, plan)
    assert {r.status for r in again} == {"skipped"}
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "geotiff").rglob("*.tif")} == stamps
    assert not [p for p in (tmp_path / "geotiff").rglob(".*")]


def test_a_product_the_selection_cannot_feed_is_refused_before_any_write(
    georeferenced: Path, tmp_path: Path
) -> None:
    two = FixedWavelengthSelector(target_wavelengths=(450, 900)).selection(
        open_campaign(georeferenced).wavelengths
    )
    plan = ProductPlan({"bands": str(tmp_path / "b.zarr"), "composite": str(tmp_path / "c.zarr")})
    with pytest.raises(
        ConfigError, match=r"'composite'.*at least 3 bands \(R, G and B\).*selects 2 bands"
    ) as raised:
        export_products(georeferenced, open_campaign(georeferenced).ids(), two, plan)
    assert "products: [bands]" in str(raised.value)
    assert not (tmp_path / "b.zarr").exists() and not (tmp_path / "c.zarr").exists()
    check_products(2, ["bands"])  # a k-band cube of any k >= 1 is fine
    check_products(None, ["composite"])  # unknown yet: nothing to check


def test_planned_band_count_from_the_pipeline() -> None:
    wavelengths = np.linspace(400.0, 1000.0, 61)
    assert planned_band_count(FixedWavelengthSelector(target_wavelengths=(450, 650)), wavelengths) == 2
    assert planned_band_count(FixedWavelengthSelector(target_wavelengths=(450, 650)), None) is None
    assert planned_band_count(SoftChannelSelector(n_select=2, input_channels=61), None) == 2
    assert planned_band_count(CIRFalseColorSelector(), wavelengths) == 3
    assert planned_band_count(SupervisedFullSpectrumBandSelector(num_spectral_bands=61), wavelengths) == 3


def test_stores_of_one_product_refuse_another(georeferenced: Path, tmp_path: Path) -> None:
    campaign = open_campaign(georeferenced)
    selection = five_bands(georeferenced)
    plan = ProductPlan({"composite": str(tmp_path / "out.zarr")})
    export_products(campaign, campaign.ids()[:1], selection, plan)
    with pytest.raises(StoreError, match="k-band store"):
        open_bands(tmp_path / "out.zarr")
    with pytest.raises(StoreError, match="k-band store"):
        open_bands(georeferenced)  # never a campaign store
    assert published_ids(tmp_path / "out.zarr") == campaign.ids()[:1]


def test_a_composite_geotiff_masks_the_pixels_without_data(tmp_path: Path) -> None:
    """The composite carries its acquisition's valid (NaN ingested with mask_nonfinite): its GeoTIFF's
    internal mask is False exactly there, as the k-band product's is."""
    rng = np.random.default_rng(4)
    cube = rng.uniform(0.1, 0.9, size=(18, 22, 6)).astype(np.float32)
    cube[3:6, 4:10] = np.nan
    np.savez(tmp_path / "holes.npz", cube=cube, wavelengths_nm=np.linspace(450, 900, 6))
    store = tmp_path / "s.zarr"
    (acquisition,) = ingest(tmp_path / "holes.npz", store, mask_nonfinite=True)
    selection = BandSelection.create([5, 3, 1], np.linspace(450, 900, 6), selector_type="manual")
    plan = ProductPlan(
        {"composite": str(tmp_path / "rgb.zarr")}, geotiff="tiff", geotiff_dir=str(tmp_path / "tif")
    )
    results = export_products(store, [acquisition], selection, plan)
    assert {r.status for r in results} == {"published"}
    valid = np.isfinite(cube).all(axis=-1)
    with rasterio.open(tmp_path / "tif" / "composite" / f"{acquisition}.tif") as composite:
        np.testing.assert_array_equal(composite.dataset_mask() > 0, valid)


def test_a_full_disk_creating_a_local_product_store_stays_an_oserror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only object-store failures become the "unreachable store" StoreError: a local full disk keeps its
    errno, which the flows turn into a ResourceError."""
    import errno

    from bandselect import export

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export.zarr, "open_group", full)
    with pytest.raises(OSError) as caught:
        export.open_composites(tmp_path / "c.zarr")
    assert caught.value.errno == errno.ENOSPC
