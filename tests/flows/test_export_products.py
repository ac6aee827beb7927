"""The flows' products: k-band cubes and GeoTIFFs chosen in the config (``export:``), the georeference
carried from an archive of GeoTIFFs to every product, and products the pipeline cannot feed refused before
any work (real ephemeral Prefect, real sqlite MLflow under tmp_path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from mlflow.tracking import MlflowClient
from rasterio.crs import CRS

from bandselect.errors import ConfigError
from bandselect.export import published_ids
from bandselect.flows import SelectBandsConfig, load_config, select_bands
from bandselect.products import read_bands
from bandselect.store import open_campaign

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

N_BANDS = 16
WAVELENGTHS = np.linspace(420.0, 900.0, N_BANDS)
TRANSFORM = (3.0, 0.0, 600000.0, 0.0, -3.0, 5200000.0)
FIVE = [450, 550, 650, 750, 850]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three GeoTIFF scenes in EPSG:32632, wavelengths in the band metadata (µm, as some sensors write)."""
    folder = tmp_path_factory.mktemp("archive")
    rng = np.random.default_rng(1)
    for index in range(3):
        cube = rng.normal(1000.0, 50.0, (24, 20, N_BANDS)).astype(np.float32)
        profile = {
            "driver": "GTiff",
            "width": 20,
            "height": 24,
            "count": N_BANDS,
            "dtype": "float32",
            "crs": CRS.from_epsg(32632),
            "transform": rasterio.Affine(*TRANSFORM),
        }
        with rasterio.open(folder / f"scene_{index}.tif", "w", **profile) as dst:
            dst.write(cube.transpose(2, 0, 1))
            for band, wavelength in enumerate(WAVELENGTHS, start=1):
                dst.update_tags(
                    band, wavelength=repr(float(wavelength) / 1000), wavelength_units="micrometers"
                )
    return folder


def _fixed(targets: list[float]) -> dict[str, object]:
    return {
        "nodes": {"selector": {"type": "FixedWavelengthSelector", "config": {"target_wavelengths": targets}}},
        "connections": [["data.cube", "selector.cube"], ["data.wavelengths", "selector.wavelengths"]],
    }


def _config(archive: Path, tmp_path: Path, uri: str, **overrides: object) -> SelectBandsConfig:
    data = {
        "campaign": "products",
        "archive": str(archive),
        "store": str(tmp_path / "campaign.zarr"),
        "output": str(tmp_path / "bands.zarr"),
        "statistics": {"n_bins": 64},
        "tracking": {"tracking_uri": uri, "experiment": "product-tests"},
        **overrides,
    }
    return load_config(data, SelectBandsConfig)


def test_k_band_cubes_and_cogs_from_an_archive_of_geotiffs(
    archive: Path, tmp_path: Path, mlflow_store: str
) -> None:
    config = _config(
        archive,
        tmp_path,
        mlflow_store,
        pipeline=_fixed(FIVE),
        export={"products": ["bands", "composite"], "geotiff": "cog"},
    )
    summary = select_bands(config)
    ids = summary.acquisition_ids
    assert len(ids) == 3 and summary.selection.k == 5
    assert summary.products == {
        "bands": str(tmp_path / "bands.zarr"),
        "composite": str(tmp_path / "bands-composite.zarr"),
    }
    assert summary.exported_by_product == {
        kind: {"published": 3, "replaced": 0, "skipped": 0}
        for kind in ("bands", "bands-geotiff", "composite", "composite-geotiff")
    }
    assert published_ids(tmp_path / "bands.zarr") == ids == published_ids(tmp_path / "bands-composite.zarr")
    kept = sorted(summary.selection.indices)
    campaign = open_campaign(config.store)
    for acquisition_id in ids:
        product = read_bands(tmp_path / "bands.zarr", acquisition_id)
        np.testing.assert_array_equal(product["wavelength"].values, WAVELENGTHS[kept])
        np.testing.assert_array_equal(
            product["cube"].values, campaign.open(acquisition_id)["cube"].values[..., kept]
        )
        with rasterio.open(tmp_path / "bands-geotiff" / "bands" / f"{acquisition_id}.tif") as dataset:
            assert dataset.crs == CRS.from_epsg(32632) and tuple(dataset.transform)[:6] == TRANSFORM
            assert dataset.count == 5 and dataset.descriptions[0] == f"{WAVELENGTHS[kept[0]]:g} nm"
    run = MlflowClient(tracking_uri=mlflow_store).get_run(summary.mlflow_run_id)
    assert run.info.status == "FINISHED"
    # A second run finds everything published with the same config hashes.
    again = select_bands(config)
    assert again.exported == {"published": 0, "replaced": 0, "skipped": 12}


def test_a_composite_from_two_bands_is_refused_before_any_work(
    archive: Path, tmp_path: Path, mlflow_store: str
) -> None:
    config = _config(
        archive,
        tmp_path,
        mlflow_store,
        pipeline=_fixed([450, 850]),
        output=str(tmp_path / "composites.zarr"),
        ingest={"wavelengths": list(WAVELENGTHS)},  # the grid is known: checked before the ingest
    )
    with pytest.raises(ConfigError, match=r"'composite'.*selects 2 bands.*products: \[bands\]"):
        select_bands(config)
    assert not (tmp_path / "campaign.zarr").exists()  # nothing ingested
    assert not (tmp_path / "composites.zarr").exists()  # no output created
    assert not config.resolved_work_dir.exists()
    assert (
        MlflowClient(tracking_uri=mlflow_store).search_experiments(filter_string="name = 'product-tests'")
        == []
    )
    # The same two bands as a k-band cube are a product.
    summary = select_bands(
        config.model_copy(update={"export": config.export.model_copy(update={"products": ["bands"]})})
    )
    assert summary.selection.k == 2 and summary.exported["published"] == 3
