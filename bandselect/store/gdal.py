"""Rasters read through GDAL (rasterio): GeoTIFF and COG, and any format GDAL opens (``reader="gdal"``).

Bands become the cube's band axis; rows are read as windows of whole rows, so memory stays bounded by a
block whatever the file's size (a COG's tiles are read as the windows need them). The georeference (CRS
and affine transform) is kept. Wavelengths come from the file's metadata, the first of:

1. band metadata ``wavelength`` with ``wavelength_units`` (what GDAL reports for ENVI files and what
   bandselect writes into its GeoTIFF products);
2. band metadata ``CENTRAL_WAVELENGTH_UM`` in the ``IMAGERY`` domain (GDAL ≥ 3.10's standard, in µm);
3. band descriptions that are a wavelength: a number with units (``"450.5 nm"``, ``"Band 3 (0.55 µm)"``)
   or a bare number (units then inferred from the magnitude, with a recorded warning);
4. the ENVI domain's ``wavelength`` list (an ENVI header read through GDAL).

Every band must have one, or the file has none; ``wavelengths=`` (``--wavelengths``) replaces them.
A band's no-data value marks those pixels invalid; an ENVI ``bbl`` read through GDAL drops bad bands.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bandselect.errors import DTypeError, FileFormatError, GeoreferenceError
from bandselect.store.georef import Georeference
from bandselect.store.layout import AcquisitionSource, Block, check_cube_dtype
from bandselect.store.sources import ReaderOptions, finish_source, resolve_grid

if TYPE_CHECKING:
    from rasterio.io import DatasetReader

__all__ = ["GDAL_SUFFIXES", "gdal_georeference", "read_gdal"]

#: Files taken by this reader without ``reader="gdal"``.
GDAL_SUFFIXES = (".tif", ".tiff")

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_UNIT = r"nm|nanomet(?:er|re)s?|um|µm|μm|micromet(?:er|re)s?|microns?"
_WITH_UNIT = re.compile(rf"({_NUMBER})\s*({_UNIT})\b", re.IGNORECASE)
_BARE = re.compile(rf"\s*({_NUMBER})\s*")


@contextmanager
def _opened(path: Path) -> Iterator[DatasetReader]:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():
            # A raster without map information is fine: it is ingested without a georeference.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as dataset:
                yield dataset
    except RasterioIOError as error:
        raise FileFormatError(
            f"raster {path}",
            expected="a file GDAL can open (GeoTIFF, COG, ENVI, ...)",
            found=str(error).splitlines()[0][:200],
            fix="check that the file is complete and of a raster format; re-export it as GeoTIFF",
        ) from error


def gdal_georeference(path: Path, what: str) -> Georeference | None:
    """The CRS and transform GDAL reads for ``path`` (e.g. an ENVI file's ``map info``).

    Raises
    ------
    GeoreferenceError
        GDAL cannot open the file, or cannot make a CRS of its map information.
    """
    from rasterio.errors import CRSError

    try:
        with _opened(path) as dataset:
            return Georeference.from_rasterio(dataset.crs, dataset.transform)
    except (FileFormatError, CRSError) as error:
        raise GeoreferenceError(
            what,
            expected="map information GDAL can read (ENVI 'map info' / 'coordinate system string')",
            found=str(error)[:200],
            fix="repair the map information, or remove it to ingest the image without a georeference",
        ) from error


def read_gdal(path: Path, *, options: ReaderOptions) -> AcquisitionSource:
    """Open a raster through GDAL as a block source. See :func:`bandselect.store.open_source`."""
    with _opened(path) as dataset:
        height, width, n_bands = int(dataset.height), int(dataset.width), int(dataset.count)
        if n_bands < 1:
            raise FileFormatError(
                f"raster {path}", expected="at least one band", found="none", fix="export the bands too"
            )
        dtypes = sorted(set(dataset.dtypes))
        if len(dtypes) != 1:
            raise DTypeError(
                f"raster {path}",
                expected="one data type for every band",
                found=f"bands of types {dtypes}",
                fix="convert every band to one type (gdal_translate -ot Float32)",
            )
        dtype = check_cube_dtype(np.dtype(dtypes[0]), f"raster {path.name}")
        driver = str(dataset.driver)
        found, units, origin = _wavelengths(dataset)
        good_bands = _envi_bad_bands(dataset) if driver == "ENVI" else None
        ignore_value = _nodata(dataset)
        georeference = Georeference.from_rasterio(dataset.crs, dataset.transform)
        tags = dataset.tags()
    grid = resolve_grid(
        found,
        units,
        options,
        n_bands,
        path.name,
        fix="pass wavelengths= (CLI --wavelengths 430,438,... or a file of them), or write them into the "
        "file: band descriptions like '450.5 nm' or band metadata 'wavelength' + 'wavelength_units'",
        good_bands=good_bands,
        units_from=origin,
    )
    return finish_source(
        path,
        (height, width, n_bands),
        dtype,
        grid,
        _row_blocks(path, height, width),
        source_format=f"gdal-{driver.lower()}",
        sensor=str(tags.get("SENSOR", tags.get("sensor_type", ""))),
        time=str(tags.get("TIFFTAG_DATETIME", tags.get("ACQUISITION_TIME", ""))),
        georeference=georeference,
        ignore_value=ignore_value,
    )


def _row_blocks(path: Path, height: int, width: int) -> Callable[[int], Iterator[Block]]:
    def read_blocks(block_rows: int) -> Iterator[Block]:
        from rasterio.windows import Window

        with _opened(path) as dataset:
            for y0 in range(0, height, block_rows):
                rows = min(block_rows, height - y0)
                bands = dataset.read(window=Window(0, y0, width, rows))  # (C, rows, W)
                yield np.ascontiguousarray(np.moveaxis(bands, 0, -1)), None, None

    return read_blocks


def _wavelengths(dataset: DatasetReader) -> tuple[np.ndarray | None, str | None, str]:
    """The band centres found in the metadata, their units, and where the units are stated."""
    indexes = range(1, dataset.count + 1)
    band_tags = [dataset.tags(i) for i in indexes]
    if all("wavelength" in tags for tags in band_tags):
        units = {
            str(tags.get("wavelength_units", dataset.tags().get("wavelength_units", "")))
            for tags in band_tags
        }
        values = _numbers([tags["wavelength"] for tags in band_tags], dataset, "band metadata 'wavelength'")
        return values, _one_unit(units, dataset), "the band metadata 'wavelength_units'"
    imagery = [dataset.tags(i, ns="IMAGERY") for i in indexes]
    if all("CENTRAL_WAVELENGTH_UM" in tags for tags in imagery):
        values = _numbers([t["CENTRAL_WAVELENGTH_UM"] for t in imagery], dataset, "CENTRAL_WAVELENGTH_UM")
        return values, "um", "the IMAGERY metadata (CENTRAL_WAVELENGTH_UM, µm)"
    parsed = [_from_description(text) for text in dataset.descriptions]
    if parsed and all(item is not None for item in parsed):
        units = {unit for _, unit in parsed}  # type: ignore[misc]
        values = np.asarray([value for value, _ in parsed], dtype=np.float64)  # type: ignore[misc]
        return values, _one_unit(units, dataset), "the band descriptions"
    envi = dataset.tags(ns="ENVI")
    if "wavelength" in envi:
        values = _numbers(envi["wavelength"].strip("{} ").split(","), dataset, "ENVI 'wavelength'")
        return values, envi.get("wavelength_units"), "the ENVI header's 'wavelength units'"
    return None, None, "the file's metadata"


def _from_description(text: str | None) -> tuple[float, str] | None:
    """``"450.5 nm"`` → ``(450.5, "nm")``; ``"450.5"`` → ``(450.5, "")``; ``"Band 1"`` → ``None``."""
    if not text:
        return None
    match = _WITH_UNIT.search(text)
    if match is not None:
        return float(match.group(1)), match.group(2)
    bare = _BARE.fullmatch(text)
    return (float(bare.group(1)), "") if bare is not None else None


def _numbers(texts: list[Any], dataset: DatasetReader, what: str) -> np.ndarray:
    try:
        return np.asarray([float(str(t).strip()) for t in texts], dtype=np.float64)
    except ValueError as error:
        raise FileFormatError(
            f"{what} of {dataset.name}",
            expected="one number per band",
            found=repr(texts[:6])[:120],
            fix="repair the wavelength metadata, or pass wavelengths= (CLI --wavelengths)",
        ) from error


def _one_unit(units: set[str], dataset: DatasetReader) -> str | None:
    stated = {u.strip() for u in units if u and u.strip()}
    if len(stated) > 1:
        raise FileFormatError(
            f"wavelength units of {dataset.name}",
            expected="one unit for every band",
            found=sorted(stated),
            fix="state every band's wavelength in the same unit, or pass wavelengths= in nm",
        )
    return stated.pop() if stated else None


def _nodata(dataset: DatasetReader) -> float | np.ndarray | None:
    values = dataset.nodatavals
    if all(v is None for v in values):
        return None
    # A band without a no-data value gets one that no pixel holds in a real raster (NaN in an int band).
    vector = np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    if np.all(vector == vector[0]) or np.all(np.isnan(vector)):
        return float(vector[0])
    return vector


def _envi_bad_bands(dataset: DatasetReader) -> np.ndarray | None:
    text = dataset.tags(ns="ENVI").get("bbl")
    if text is None:
        return None
    values = [v.strip() for v in text.strip("{} ").split(",") if v.strip()]
    try:
        good = np.asarray([float(v) for v in values]) == 1.0
    except ValueError:
        good = np.zeros(0, dtype=bool)
    if good.size != dataset.count or not good.any():
        raise FileFormatError(
            f"bad band list of {dataset.name}",
            expected=f"{dataset.count} values 1 (good) or 0 (bad), at least one good",
            found=text[:80],
            fix="repair 'bbl' in the ENVI header or remove it",
        )
    return good
