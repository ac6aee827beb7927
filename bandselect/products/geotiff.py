"""GeoTIFF / COG files of published products: one per acquisition, georeferenced, bands described.

Each file is written from the product's zarr group (never from the campaign), block of rows by block of
rows, so memory stays bounded whatever the acquisition's size:

- float32, tiled 256 × 256, deflate with the floating-point predictor; BigTIFF when needed;
- CRS and affine transform of the acquisition (none for an acquisition without a georeference);
- band descriptions are the wavelengths (``"550.5 nm"``), with band metadata ``wavelength`` +
  ``wavelength_units = nm`` (GDAL's ENVI convention, which bandselect's GeoTIFF reader reads back) and
  ``CENTRAL_WAVELENGTH_UM`` in the ``IMAGERY`` domain (GDAL ≥ 3.10); a composite's bands are
  interpreted as red, green and blue;
- the acquisition's invalid pixels (``valid`` False) as the file's internal mask;
- provenance tags: ``BANDSELECT_CONFIG_HASH``, ``BANDSELECT_SOURCE_ACQUISITION``, ``BANDSELECT_SELECTOR``,
  ``BANDSELECT_SELECTION_DIGEST``.

``mode="cog"`` copies that file into a Cloud-Optimised GeoTIFF (GDAL's COG driver: overviews, tiles in
order) before publishing. A file is written under a hidden temporary name in the same folder and published
by one ``os.replace``, so a reader never sees a partial file; a file whose config-hash tag already matches
is skipped without reading anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import zarr

from bandselect import storage
from bandselect.errors import StoreError
from bandselect.export import ATTR_CONFIG_HASH, ATTR_SELECTION, ATTR_SELECTOR, ExportResult
from bandselect.names import COORD_SPATIAL_REF, COORD_WAVELENGTH, VAR_VALID
from bandselect.store.georef import Georeference
from bandselect.store.writer import staging_name

__all__ = ["TAG_CONFIG_HASH", "export_geotiff", "geotiff_config_hash", "published_geotiff_hash"]

TAG_CONFIG_HASH = "BANDSELECT_CONFIG_HASH"
TAG_SOURCE_ACQUISITION = "BANDSELECT_SOURCE_ACQUISITION"
TAG_SELECTOR = "BANDSELECT_SELECTOR"
TAG_SELECTION_DIGEST = "BANDSELECT_SELECTION_DIGEST"
GEOTIFF_FORMAT_VERSION = 1
_TILE = 256


def geotiff_config_hash(product_config_hash: str, mode: Literal["tiff", "cog"]) -> str:
    """Digest (16 hex digits) of a GeoTIFF: the product it is made from and the file settings."""
    text = json.dumps(
        {"product": product_config_hash, "mode": mode, "format": GEOTIFF_FORMAT_VERSION}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def published_geotiff_hash(path: str | os.PathLike[str]) -> str | None:
    """The config-hash tag of a published GeoTIFF; ``None`` when there is no (readable) file."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    if not Path(path).is_file():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a product without map information
            with rasterio.open(path) as dataset:
                return dataset.tags().get(TAG_CONFIG_HASH)
    except RasterioIOError:
        return None  # a damaged file is rewritten


def export_geotiff(
    product_store: str | os.PathLike[str],
    acquisition_id: str,
    variable: str,
    path: str | os.PathLike[str],
    *,
    mode: Literal["tiff", "cog"],
    product: str,
) -> ExportResult:
    """Write the GeoTIFF (or COG) of one published product group; skip it when already written.

    Parameters
    ----------
    product_store
        The product's zarr store (composites or k-band cubes).
    acquisition_id
        The acquisition (a published group of ``product_store``).
    variable
        The group's ``(y, x, band)`` variable (``composite`` or ``cube``).
    path
        The GeoTIFF to write (its folder is created).
    mode
        ``"tiff"`` or ``"cog"``.
    product
        The product kind, recorded in the result (``"<product>-geotiff"``).

    Raises
    ------
    StoreError
        The product group is not published, or the file cannot be written (nothing is left behind).
    ConfigError
        ``path`` is an object-store URL (checked before anything is read).
    """
    started = time.perf_counter()
    target = storage.local_path(path, "GeoTIFF", "GeoTIFFs are written to local files")
    group_path = storage.join(product_store, acquisition_id)  # a folder or an object-store prefix
    if not storage.has_marker(group_path):
        raise StoreError(
            f"{product} of {acquisition_id} in {product_store}",
            expected="a published product group",
            found="none",
            fix="export the product before its GeoTIFF",
        )
    group = zarr.open_group(str(group_path), mode="r")
    product_hash = str(group.attrs[ATTR_CONFIG_HASH])
    config_hash = geotiff_config_hash(product_hash, mode)
    label = f"{product}-geotiff"
    if published_geotiff_hash(target) == config_hash:
        return _result(acquisition_id, "skipped", config_hash, started, label, target)
    status = "replaced" if target.is_file() else "published"
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{staging_name()}.tmp.tif")
    copied = target.with_name(f".{target.name}.{staging_name()}.cog.tif")
    try:
        _write_tiff(group, variable, temporary, config_hash, acquisition_id, colour=product == "composite")
        if mode == "cog":
            _to_cog(temporary, copied)
            temporary.unlink()
            temporary = copied
        os.replace(temporary, target)
    except OSError as error:
        raise StoreError(
            f"GeoTIFF {target}",
            expected="a writable folder",
            found=f"{type(error).__name__}: {error}",
            fix="check the folder's permissions and free space",
        ) from error
    finally:
        for leftover in (temporary, copied):
            leftover.unlink(missing_ok=True)
    return _result(acquisition_id, status, config_hash, started, label, target)  # type: ignore[arg-type]


def _result(
    acquisition_id: str,
    status: Literal["published", "replaced", "skipped"],
    config_hash: str,
    started: float,
    product: str,
    path: Path,
) -> ExportResult:
    return ExportResult(
        acquisition_id,
        status,
        config_hash,
        None,
        time.perf_counter() - started,
        product=product,
        path=str(path),
    )


def _georeference(group: zarr.Group) -> Georeference | None:
    if COORD_SPATIAL_REF not in group:
        return None
    return Georeference.from_attrs(dict(group[COORD_SPATIAL_REF].attrs))


def _write_tiff(
    group: zarr.Group, variable: str, path: Path, config_hash: str, acquisition_id: str, *, colour: bool
) -> None:
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.windows import Window

    array = group[variable]
    height, width, count = (int(s) for s in array.shape)
    wavelengths = np.asarray(group[COORD_WAVELENGTH][:], dtype=np.float64)
    georeference = _georeference(group)
    profile: dict[str, object] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": "float32",
        "tiled": True,
        "blockxsize": _TILE,
        "blockysize": _TILE,
        "compress": "deflate",
        "predictor": 3,
        "BIGTIFF": "IF_SAFER",
    }
    if georeference is not None:
        profile.update(crs=georeference.crs, transform=georeference.affine)
    valid = group[VAR_VALID] if VAR_VALID in group else None
    selection = json.loads(json.dumps(dict(group.attrs).get(ATTR_SELECTION, {})))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a product without map information
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
            rows = max(_TILE, int(array.chunks[0]))
            for y0 in range(0, height, rows):
                y1 = min(height, y0 + rows)
                window = Window(0, y0, width, y1 - y0)
                block = np.asarray(array[y0:y1], dtype=np.float32)
                dst.write(np.ascontiguousarray(block.transpose(2, 0, 1)), window=window)
                if valid is not None:
                    dst.write_mask(np.asarray(valid[y0:y1], dtype=np.uint8) * 255, window=window)
            for band, wavelength in enumerate(wavelengths, start=1):
                dst.set_band_description(band, f"{_format_nm(wavelength)} nm")
                # Full precision in the metadata (read back exactly); the description is for people.
                dst.update_tags(band, wavelength=repr(float(wavelength)), wavelength_units="nm")
                dst.update_tags(band, ns="IMAGERY", CENTRAL_WAVELENGTH_UM=repr(float(wavelength) / 1000.0))
            if colour and count == 3:
                dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
            dst.update_tags(
                **{
                    TAG_CONFIG_HASH: config_hash,
                    TAG_SOURCE_ACQUISITION: acquisition_id,
                    TAG_SELECTOR: str(group.attrs.get(ATTR_SELECTOR, "")),
                    TAG_SELECTION_DIGEST: str(selection.get("digest", "")),
                }
            )


def _to_cog(source: Path, target: Path) -> None:
    import rasterio.shutil

    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        rasterio.shutil.copy(
            source, target, driver="COG", compress="DEFLATE", predictor="YES", BIGTIFF="IF_SAFER"
        )


def _format_nm(wavelength: float) -> str:
    """A wavelength with up to six decimals and no trailing zeros (``550.5``, ``430``)."""
    return f"{float(wavelength):.6f}".rstrip("0").rstrip(".")
