"""Georeference of an acquisition: its CRS and affine transform, kept after rioxarray's convention.

A georeferenced acquisition (and every product made from it) carries a scalar coordinate ``spatial_ref``
whose attributes hold the CRS as WKT (``crs_wkt``, ``spatial_ref``, plus the CF grid-mapping attributes
rioxarray writes) and the affine transform in GDAL order (``GeoTransform``); every ``(y, x)`` variable
names it in its ``grid_mapping`` attribute. ``dataset.rio.crs`` and ``dataset.rio.transform()`` then work
on what :meth:`bandselect.store.Campaign.open` returns, and GDAL-based tools read the products' GeoTIFFs.

Pixel ``(row, column)`` maps to map coordinates ``transform * (column, row)`` (the corner of the pixel),
as in rasterio. The georeference is part of an acquisition's content: the same pixels with another CRS or
transform are another acquisition. All acquisitions of a campaign that have a CRS share one (one store per
CRS, as one store per sensor).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import xarray as xr

from bandselect import storage
from bandselect.errors import GeoreferenceError
from bandselect.names import ATTR_GRID_MAPPING, COORD_SPATIAL_REF, DIM_X, DIM_Y
from bandselect.storage import StoreLocation

if TYPE_CHECKING:
    from rasterio.crs import CRS
    from rasterio.transform import Affine

__all__ = [
    "Georeference",
    "campaign_georeference",
    "check_campaign_crs",
    "check_same_crs",
    "georeference_of",
    "with_georeference",
]

#: The identity transform: a raster without map information (rasterio's default).
_IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
_ZARR_JSON = "zarr.json"


@dataclass(frozen=True)
class Georeference:
    """The CRS and affine transform of an acquisition's pixel grid.

    Parameters
    ----------
    crs_wkt
        The coordinate reference system as WKT; ``None`` for map coordinates without a CRS (e.g. ENVI
        ``map info = {Arbitrary, ...}``).
    transform
        The affine transform ``(a, b, c, d, e, f)`` in rasterio's order: ``x = a·col + b·row + c``,
        ``y = d·col + e·row + f``.
    """

    crs_wkt: str | None
    transform: tuple[float, float, float, float, float, float]

    def __post_init__(self) -> None:
        values = tuple(float(v) for v in self.transform)
        if len(values) != 6 or not all(math.isfinite(v) for v in values):
            raise GeoreferenceError(
                "affine transform",
                expected="six finite numbers (a, b, c, d, e, f)",
                found=repr(self.transform),
                fix="repair the file's geotransform (or map info)",
            )
        object.__setattr__(self, "transform", values)
        if self.crs_wkt is not None and not str(self.crs_wkt).strip():
            object.__setattr__(self, "crs_wkt", None)

    @classmethod
    def from_rasterio(cls, crs: CRS | None, transform: Affine | None) -> Georeference | None:
        """The georeference of a rasterio dataset; ``None`` when it has neither a CRS nor a transform."""
        values = _IDENTITY if transform is None else tuple(float(v) for v in tuple(transform)[:6])
        if crs is None and values == _IDENTITY:
            return None
        return cls(None if crs is None else crs.to_wkt(), values)  # type: ignore[arg-type]

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> Georeference | None:
        """Read a ``spatial_ref`` variable's attributes (``crs_wkt`` or ``spatial_ref``, ``GeoTransform``)."""
        crs_wkt = attrs.get("crs_wkt") or attrs.get("spatial_ref")
        text = attrs.get("GeoTransform")
        values: tuple[float, ...] = _IDENTITY
        if text is not None:
            try:
                gdal = [float(v) for v in str(text).split()]
            except ValueError as error:
                raise _bad_geotransform(text) from error
            if len(gdal) != 6:
                raise _bad_geotransform(text)
            c, a, b, f, d, e = gdal
            values = (a, b, c, d, e, f)
        if crs_wkt is None and values == _IDENTITY:
            return None
        return cls(None if crs_wkt is None else str(crs_wkt), values)  # type: ignore[arg-type]

    @property
    def affine(self) -> Affine:
        """The transform as a :class:`rasterio.transform.Affine`."""
        from rasterio.transform import Affine

        return Affine(*self.transform)

    @property
    def crs(self) -> CRS | None:
        """The CRS as a :class:`rasterio.crs.CRS` (``None`` without one)."""
        from rasterio.crs import CRS

        return None if self.crs_wkt is None else CRS.from_wkt(self.crs_wkt)

    def describe(self) -> str:
        """A short name of the CRS (``EPSG:32633`` where it has a code), for messages."""
        crs = self.crs
        if crs is None:
            return "no CRS (map coordinates only)"
        code = crs.to_epsg()
        return f"EPSG:{code}" if code is not None else crs.to_wkt()[:60] + "..."

    def same_crs(self, other: Georeference) -> bool:
        """Whether both have the same CRS (compared as CRSs, not as WKT text)."""
        if self.crs_wkt is None or other.crs_wkt is None:
            return self.crs_wkt is None and other.crs_wkt is None
        return self.crs == other.crs

    def coordinate(self) -> xr.DataArray:
        """The ``spatial_ref`` scalar coordinate, as rioxarray writes it (CF grid-mapping attributes)."""
        import rioxarray  # noqa: F401 - registers the .rio accessor

        dataset = xr.Dataset()
        if self.crs_wkt is not None:
            dataset = dataset.rio.write_crs(self.crs_wkt, grid_mapping_name=COORD_SPATIAL_REF)
        dataset = dataset.rio.write_transform(self.affine, grid_mapping_name=COORD_SPATIAL_REF)
        return dataset.coords[COORD_SPATIAL_REF]

    def digest_text(self) -> str:
        """What enters an acquisition's content digest: the CRS (normalised WKT) and the transform."""
        crs = self.crs
        wkt = "" if crs is None else crs.to_wkt()
        return json.dumps({"crs": wkt, "transform": [round(v, 9) for v in self.transform]})


def _bad_geotransform(text: object) -> GeoreferenceError:
    return GeoreferenceError(
        f"{COORD_SPATIAL_REF} GeoTransform",
        expected="six numbers separated by spaces (GDAL order: c a b f d e)",
        found=repr(text)[:80],
        fix="write the georeference with bandselect or rioxarray (dataset.rio.write_transform)",
    )


def georeference_of(dataset: xr.Dataset | xr.DataArray) -> Georeference | None:
    """The georeference a dataset carries in its ``spatial_ref`` variable; ``None`` when it has none."""
    if COORD_SPATIAL_REF not in dataset.coords and (
        not isinstance(dataset, xr.Dataset) or COORD_SPATIAL_REF not in dataset.data_vars
    ):
        return None
    return Georeference.from_attrs(dict(dataset[COORD_SPATIAL_REF].attrs))


def with_georeference(dataset: xr.Dataset, georeference: Georeference | None) -> xr.Dataset:
    """``dataset`` with the ``spatial_ref`` coordinate, named by the ``grid_mapping`` of its (y, x) variables.

    Returns ``dataset`` unchanged when ``georeference`` is ``None``.
    """
    if georeference is None:
        return dataset
    result = dataset.assign_coords({COORD_SPATIAL_REF: georeference.coordinate()})
    for name, variable in result.data_vars.items():
        if DIM_Y in variable.dims and DIM_X in variable.dims:
            # An attribute, not (as rioxarray does) the encoding: an encoding= given to to_zarr replaces
            # a variable's encoding, which would drop it. Decoding moves it into the encoding.
            result[name].attrs[ATTR_GRID_MAPPING] = COORD_SPATIAL_REF
    return result


def campaign_georeference(
    store: StoreLocation, acquisition_ids: Sequence[str]
) -> tuple[str, Georeference] | None:
    """The first stored acquisition with a CRS, and its georeference (read from the metadata only)."""
    for acquisition_id in acquisition_ids:
        marker = storage.join(store, acquisition_id, COORD_SPATIAL_REF, _ZARR_JSON)
        try:
            attributes = json.loads(storage.read_bytes(marker).decode("utf-8")).get("attributes", {})
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as error:
            raise GeoreferenceError(
                f"georeference of {acquisition_id} in {store}",
                expected=f"a readable {COORD_SPATIAL_REF}/{_ZARR_JSON}",
                found=f"{type(error).__name__}: {error}",
                fix="the store is damaged: re-ingest that acquisition",
            ) from error
        georeference = Georeference.from_attrs(attributes)
        if georeference is not None and georeference.crs_wkt is not None:
            return acquisition_id, georeference
    return None


def check_same_crs(
    reference: Georeference | None, candidate: Georeference | None, what: str, *, reference_name: str
) -> None:
    """Raise :class:`GeoreferenceError` when two georeferenced acquisitions have different CRSs.

    An acquisition without a CRS (no georeference, or map coordinates only) fits any campaign.
    """
    if reference is None or candidate is None or reference.crs_wkt is None or candidate.crs_wkt is None:
        return
    if reference.same_crs(candidate):
        return
    raise GeoreferenceError(
        what,
        expected=f"the CRS of {reference_name}, {reference.describe()} (a campaign has one CRS)",
        found=candidate.describe(),
        fix="ingest acquisitions of another CRS into a store of their own, or reproject them first "
        "(e.g. gdalwarp -t_srs " + (reference.describe() if "EPSG" in reference.describe() else "...") + ")",
    )


def check_campaign_crs(
    store: StoreLocation, acquisition_ids: Sequence[str], candidate: Georeference | None, what: str
) -> None:
    """Raise :class:`GeoreferenceError` when ``candidate`` has a CRS other than the campaign's."""
    if candidate is None or candidate.crs_wkt is None:
        return  # nothing to compare: the campaign's acquisitions need not be read
    found = campaign_georeference(store, acquisition_ids)
    if found is not None:
        check_same_crs(found[1], candidate, what, reference_name=f"acquisition {found[0]} of {store}")
