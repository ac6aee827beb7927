"""Plain helpers for the store tests (imported by the test modules of this folder)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def small_cube(
    height: int = 9, width: int = 7, n_bands: int = 5, dtype: str = "uint16", seed: int = 0
) -> np.ndarray:
    """A cube whose every value differs, so any transposition or offset error shows."""
    rng = np.random.default_rng(seed)
    values = rng.permutation(height * width * n_bands).reshape(height, width, n_bands) + 1
    return values.astype(dtype)


def grid(n_bands: int = 5) -> np.ndarray:
    """Evenly spaced wavelengths in nm."""
    return 450.0 + 10.0 * np.arange(n_bands)


def write_geotiff(
    path: Path,
    cube: np.ndarray,
    *,
    descriptions: Sequence[str] | None = None,
    band_tags: Sequence[dict[str, str]] | None = None,
    imagery_um: Sequence[float] | None = None,
    epsg: int | None = None,
    transform: tuple[float, float, float, float, float, float] | None = None,
    nodata: float | None = None,
    driver: str = "GTiff",
) -> Path:
    """Write a (y, x, band) cube as a raster with rasterio, with the wavelength metadata asked for."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    height, width, count = cube.shape
    profile: dict[str, Any] = {
        "driver": driver,
        "width": width,
        "height": height,
        "count": count,
        "dtype": str(cube.dtype),
    }
    if epsg is not None:
        profile["crs"] = CRS.from_epsg(epsg)
    if transform is not None:
        profile["transform"] = Affine(*transform)
    if nodata is not None:
        profile["nodata"] = nodata
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NotGeoreferencedWarning for rasters written without a CRS
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.ascontiguousarray(cube.transpose(2, 0, 1)))
            for band in range(count):
                if descriptions is not None:
                    dst.set_band_description(band + 1, descriptions[band])
                if band_tags is not None:
                    dst.update_tags(band + 1, **band_tags[band])
                if imagery_um is not None:
                    dst.update_tags(band + 1, ns="IMAGERY", CENTRAL_WAVELENGTH_UM=str(imagery_um[band]))
    return path


def edit_header(header: Path, *, remove: Sequence[str] = (), set_lines: dict[str, str] | None = None) -> Path:
    """Remove fields from an ENVI header and set others (``{"byte order": "7"}``), as a hand edit would."""
    kept = [
        line
        for line in header.read_text().splitlines()
        if line.partition("=")[0].strip().lower()
        not in {name.lower() for name in (*remove, *(set_lines or {}))}
    ]
    kept += [f"{name} = {value}" for name, value in (set_lines or {}).items()]
    header.write_text("\n".join(kept) + "\n")
    return header
