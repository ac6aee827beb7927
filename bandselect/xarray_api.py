"""Band selection on xarray cubes: fit a selector on a (lazy) DataArray, keep its bands.

A cube is a ``DataArray`` (or a ``Dataset`` holding one) with a ``wavelength`` coordinate along its band
dimension, in any dimension order, in memory or Dask-backed:

- :func:`fit_selector` fits a selector node (any node that asks for statistics, e.g.
  ``SupervisedFullSpectrumBandSelector``, ``OrthogonalProjectionBandSelector``) or a
  :class:`~bandselect.sklearn_api.SpectralBandSelector`. The statistics are computed with
  :func:`bandselect.stats.compute_statistics`, the Dask path of the flows (one partial per chunk, a tree
  reduction, one ``dask.compute`` per pass), so a cube larger than memory never has to be loaded. The
  label rule applies (``positive_label``, ``ignore_label``: ignored pixels are left out through the
  engine's ``valid`` variable).
- :func:`select_bands` returns the selected bands as a ``DataArray`` with every coordinate and attribute
  kept (lazy stays lazy).
- The ``.bandselect`` accessor (``cube.bandselect.fit(selector, labels)``,
  ``cube.bandselect.select(selection)``) does the same, registered when this module is imported.

Examples
--------
>>> import numpy as np, xarray as xr
>>> from bandselect.selectors import OrthogonalProjectionBandSelector
>>> rng = np.random.default_rng(0)
>>> values = rng.random((8, 6, 5))
>>> values[3] = values[1]  # band 3 repeats band 1
>>> cube = xr.DataArray(values, dims=("wavelength", "row", "col"),
...                     coords={"wavelength": [450.0, 500.0, 550.0, 600.0, 650.0, 700.0, 750.0, 800.0]},
...                     attrs={"sensor": "demo"}).chunk({"row": 3})
>>> selector = fit_selector(OrthogonalProjectionBandSelector(num_spectral_bands=8, k=3), cube)
>>> kept = select_bands(cube, selector)
>>> kept.dims, kept.attrs["sensor"], kept.sizes["wavelength"]
(('wavelength', 'row', 'col'), 'demo', 3)
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

import numpy as np
import xarray as xr

from bandselect.errors import ConfigError, InputError, LabelError, ShapeError, WavelengthError
from bandselect.labels import check_label_roles
from bandselect.names import COORD_WAVELENGTH, DIM_BAND, DIM_X, DIM_Y, VAR_CUBE, VAR_MASK, VAR_VALID
from bandselect.pipeline.node import BandSelector, Node
from bandselect.selection import BandSelection
from bandselect.sklearn_api import SpectralBandSelector
from bandselect.spectral import validate_wavelengths
from bandselect.stats import DEFAULT_N_BINS, BandStatistics, compute_statistics

__all__ = ["BandSelectAccessor", "band_dimension", "fit_selector", "select_bands", "statistics_of_cube"]


def _cube(data: xr.DataArray | xr.Dataset, variable: str) -> xr.DataArray:
    if isinstance(data, xr.Dataset):
        if variable not in data.data_vars:
            raise InputError(
                "Dataset",
                expected=f"a data variable {variable!r} holding the cube",
                found=f"variables {sorted(map(str, data.data_vars))}",
                fix="pass variable=... naming the cube",
            )
        return data[variable]
    if not isinstance(data, xr.DataArray):
        raise InputError(
            "cube",
            expected="an xarray DataArray or Dataset",
            found=type(data).__name__,
            fix="wrap the array: xr.DataArray(values, dims=..., coords={'wavelength': ...})",
        )
    return data


def band_dimension(cube: xr.DataArray) -> Hashable:
    """The dimension of ``cube`` that the ``wavelength`` coordinate runs along.

    Raises
    ------
    WavelengthError
        No one-dimensional ``wavelength`` coordinate; the message names the dims and coords found.
    """
    coordinate = cube.coords.get(COORD_WAVELENGTH)
    if coordinate is None or coordinate.ndim != 1:
        raise WavelengthError(
            "cube",
            expected=f"a 1-D {COORD_WAVELENGTH!r} coordinate (nm) along the band dimension",
            found=f"dims {tuple(map(str, cube.dims))} and coords {sorted(map(str, cube.coords))}",
            fix="assign it: cube.assign_coords(wavelength=('band', wavelengths_nm))",
        )
    return coordinate.dims[0]


def _labels(labels: Any, data: xr.DataArray | xr.Dataset, cube: xr.DataArray, band: Hashable) -> Any:
    """The labels as an array over the cube's non-band dims, or None."""
    pixel_dims = [d for d in cube.dims if d != band]
    if labels is None and isinstance(data, xr.Dataset) and VAR_MASK in data.data_vars:
        labels = data[VAR_MASK]
    if labels is None:
        return None
    if isinstance(labels, xr.DataArray):
        if set(labels.dims) != set(pixel_dims):
            raise ShapeError(
                "labels",
                expected=f"a DataArray over the cube's pixel dims {tuple(map(str, pixel_dims))}",
                found=f"dims {tuple(map(str, labels.dims))}",
                fix="label every pixel of the cube once",
            )
        return labels.transpose(*pixel_dims)
    array = np.asarray(labels)
    shape = tuple(cube.sizes[d] for d in pixel_dims)
    if array.shape != shape:
        raise ShapeError(
            "labels",
            expected=f"shape {shape} (the cube's dims {tuple(map(str, pixel_dims))} without the band dim)",
            found=f"shape {array.shape}",
            fix="pass one label per pixel, in the cube's dimension order",
        )
    return xr.DataArray(array, dims=pixel_dims)


def _as_store_layout(cube: xr.DataArray, band: Hashable, labels: Any) -> xr.Dataset:
    """The cube (and labels) as an acquisition Dataset ``cube (y, x, band)``, lazily (a view or a reshape).

    Two pixel dims become ``y`` and ``x``; one becomes ``x`` (``y`` of size 1); more are flattened into
    ``y``. The band dim is one chunk (a pixel's spectrum is one block of the statistics engine).
    """
    pixel_dims = [d for d in cube.dims if d != band]
    if not pixel_dims:
        raise ShapeError(
            "cube",
            expected="pixel dims besides the band dim",
            found=f"dims {tuple(map(str, cube.dims))}",
            fix="pass a cube with at least one pixel dim",
        )
    values = cube.transpose(*pixel_dims, band).data
    label_values = None if labels is None else labels.data
    sizes = [cube.sizes[d] for d in pixel_dims]
    height = int(math.prod(sizes[:-1])) if len(sizes) > 1 else 1
    width = int(sizes[-1])
    values = values.reshape(height, width, cube.sizes[band])
    if label_values is not None:
        label_values = label_values.reshape(height, width)
    variables = {VAR_CUBE: ((DIM_Y, DIM_X, DIM_BAND), values)}
    if label_values is not None:
        variables[VAR_MASK] = ((DIM_Y, DIM_X), label_values)
    wavelengths = np.asarray(cube.coords[COORD_WAVELENGTH].values, dtype=np.float64)
    return xr.Dataset(variables, coords={COORD_WAVELENGTH: (DIM_BAND, wavelengths)})


def _apply_label_rule(ds: xr.Dataset, positive_label: int | None, ignore_label: int | None) -> xr.Dataset:
    """The label rule as lazy variables: ``valid`` (``mask != ignore_label``), a binary ``mask``."""
    if VAR_MASK not in ds.data_vars:
        return ds
    mask = ds[VAR_MASK]
    out = ds
    if ignore_label is not None:
        out = out.assign({VAR_VALID: mask != ignore_label})
    if positive_label is not None:
        out = out.assign({VAR_MASK: mask == positive_label})
    return out


def statistics_of_cube(
    data: xr.DataArray | xr.Dataset,
    labels: Any = None,
    *,
    positive_label: int | None = None,
    ignore_label: int | None = None,
    n_bins: int | None = DEFAULT_N_BINS,
    contrast: bool = False,
    variable: str = VAR_CUBE,
    **compute_options: Any,
) -> BandStatistics:
    """Merged statistics of an xarray cube through :func:`bandselect.stats.compute_statistics` (Dask).

    Parameters
    ----------
    data
        A DataArray with a ``wavelength`` coordinate, or a Dataset holding it as ``variable`` (and, when
        ``labels`` is None, labels as ``mask``).
    labels
        Labels over the cube's pixel dims (DataArray or array), or None.
    positive_label, ignore_label
        The label rule (:mod:`bandselect.labels`).
    n_bins, contrast
        As :func:`~bandselect.stats.compute_statistics` (``contrast`` needs two pixel dims, the image).
    variable
        The cube's variable in a Dataset.
    **compute_options
        Passed to :func:`~bandselect.stats.compute_statistics` (``scheduler``, ``max_pixels``,
        ``nan_policy``...).

    Raises
    ------
    WavelengthError
        No ``wavelength`` coordinate (the message names the dims the cube has).
    LabelError
        A label role without labels, or both roles on one class.
    """
    cube = _cube(data, variable)
    band = band_dimension(cube)
    validate_wavelengths(
        cube.coords[COORD_WAVELENGTH].values,
        cube.sizes[band],
        order_fix=f"sort the cube by wavelength first: data.sortby({COORD_WAVELENGTH!r})",
    )
    positive, ignore = check_label_roles(positive_label, ignore_label, what="labels")
    label_array = _labels(labels, data, cube, band)
    if label_array is None and (positive is not None or ignore is not None):
        raise LabelError(
            "labels",
            expected="labels (positive_label and ignore_label name classes of them)",
            found="none",
            fix="pass labels=..., or a Dataset with a 'mask' variable",
        )
    if contrast and len(cube.dims) != 3:
        raise ShapeError(
            "cube",
            expected="two pixel dims (an image) for the spatial contrast terms",
            found=f"dims {tuple(map(str, cube.dims))}",
            fix="pass one image (y, x, band) in any order",
        )
    ds = _apply_label_rule(_as_store_layout(cube, band, label_array), positive, ignore)
    return compute_statistics(ds, n_bins=n_bins, contrast=contrast, **compute_options)


def fit_selector(
    selector: Any,
    data: xr.DataArray | xr.Dataset,
    labels: Any = None,
    *,
    positive_label: int | None = None,
    ignore_label: int | None = None,
    variable: str = VAR_CUBE,
    **compute_options: Any,
) -> Any:
    """Fit ``selector`` on an xarray cube through the Dask statistics path; return the selector.

    The node is asked what it needs (``statistics_request()``: histograms, contrast, labels) and gets
    exactly those statistics, as the flows give them from a campaign store. Unsupervised nodes use the
    labels only to leave ``ignore_label`` pixels out.

    Parameters
    ----------
    selector
        A node that requests statistics (``statistics_request()`` and ``fit_from_statistics``), or a
        :class:`~bandselect.sklearn_api.SpectralBandSelector`.
    data, labels, positive_label, ignore_label, variable, **compute_options
        As :func:`statistics_of_cube`.

    Raises
    ------
    ConfigError
        A selector that fits without statistics.
    """
    cube = _cube(data, variable)
    wavelengths = (
        np.asarray(cube.coords[COORD_WAVELENGTH].values) if COORD_WAVELENGTH in cube.coords else None
    )
    options = {"positive_label": positive_label, "ignore_label": ignore_label, "variable": variable}
    if isinstance(selector, SpectralBandSelector):
        # The estimator's own label roles apply unless given here; two different ones are an error.
        own_roles = {"positive_label": selector.positive_label, "ignore_label": selector.ignore_label}
        for role, own in own_roles.items():
            if options[role] is None:
                options[role] = own
            elif own is not None and own != options[role]:
                raise ConfigError(
                    f"{role} of {type(selector).__name__}",
                    expected=f"one {role}",
                    found=f"{own} on the estimator and {options[role]} here",
                    fix=f"set {role} in one place",
                )
        n_bins = selector.n_bins if selector.supervised else None
        stats = statistics_of_cube(data, labels, n_bins=n_bins, **options, **compute_options)
        return selector.fit_from_statistics(stats, wavelengths=wavelengths)
    request = selector.statistics_request() if isinstance(selector, Node) else None
    if request is None:
        raise ConfigError(
            f"selector {type(selector).__name__}",
            expected="a node that initialises from statistics, or a SpectralBandSelector",
            found="a selector without statistics_request()",
            fix="fixed-wavelength selectors need no fit: call selection(wavelengths) directly",
        )
    supervised = request.mask_port is not None
    stats = statistics_of_cube(
        data,
        labels if supervised or ignore_label is not None else None,
        positive_label=positive_label if supervised else None,
        ignore_label=ignore_label,
        n_bins=(request.n_bins or DEFAULT_N_BINS) if request.histograms else None,
        contrast=request.contrast,
        variable=variable,
        **compute_options,
    )
    selector.fit_from_statistics(stats, wavelengths=wavelengths if request.wavelengths_port else None)
    return selector


def _selected_indices(selection: Any, cube: xr.DataArray, band: Hashable) -> list[int]:
    wavelengths = np.asarray(cube.coords[COORD_WAVELENGTH].values, dtype=np.float64)
    if isinstance(selection, SpectralBandSelector):
        selection = selection.get_support(indices=True)
    elif isinstance(selection, BandSelector):
        selection = selection.selection(wavelengths)
    if isinstance(selection, BandSelection):
        if not np.allclose(np.asarray(selection.sensor_wavelengths_nm), wavelengths, rtol=0.0, atol=1e-6):
            raise WavelengthError(
                "selection",
                expected="a selection made on this cube's wavelength grid",
                found=f"a grid of {selection.n_bands} bands ({selection.sensor_wavelengths_nm[0]:g}–"
                f"{selection.sensor_wavelengths_nm[-1]:g} nm) for {wavelengths.size} bands here",
                fix="fit the selector on this sensor's cube",
            )
        return sorted(selection.indices)
    indices = np.asarray(selection).reshape(-1)
    if indices.size == 0 or not np.issubdtype(indices.dtype, np.integer):
        raise ConfigError(
            "selection",
            expected="a BandSelection, a fitted selector or band indices",
            found=repr(selection)[:80],
            fix="pass selector.selection(wavelengths) or a fitted selector",
        )
    if indices.min() < 0 or indices.max() >= cube.sizes[band]:
        raise ShapeError(
            "selection",
            expected=f"band indices in [0, {cube.sizes[band]})",
            found=indices.tolist()[:10],
            fix="pass indices of this cube's bands",
        )
    return sorted(set(int(i) for i in indices))


def select_bands(
    data: xr.DataArray | xr.Dataset, selection: Any, *, variable: str = VAR_CUBE
) -> xr.DataArray:
    """The selected bands of a cube, in wavelength order, with every coordinate and attribute kept.

    Parameters
    ----------
    data
        A DataArray with a ``wavelength`` coordinate (any dimension order, lazy or not), or a Dataset
        holding it as ``variable``.
    selection
        A :class:`~bandselect.selection.BandSelection`, a fitted selector node or
        :class:`~bandselect.sklearn_api.SpectralBandSelector`, or band indices.

    Returns
    -------
    xarray.DataArray
        ``data`` with only the selected bands along its band dim (``isel``: lazy stays lazy).

    Raises
    ------
    WavelengthError
        No ``wavelength`` coordinate, or a selection made on another grid.
    """
    cube = _cube(data, variable)
    band = band_dimension(cube)
    return cube.isel({band: _selected_indices(selection, cube, band)})


@xr.register_dataarray_accessor("bandselect")
class BandSelectAccessor:
    """``cube.bandselect``: :func:`fit_selector` and :func:`select_bands` as methods of a DataArray."""

    def __init__(self, cube: xr.DataArray) -> None:
        self._cube = cube

    def fit(self, selector: Any, labels: Any = None, **options: Any) -> Any:
        """:func:`fit_selector` on this cube."""
        return fit_selector(selector, self._cube, labels, **options)

    def select(self, selection: Any) -> xr.DataArray:
        """:func:`select_bands` of this cube."""
        return select_bands(self._cube, selection)

    @property
    def band_dim(self) -> Hashable:
        """The band dimension (:func:`band_dimension`)."""
        return band_dimension(self._cube)
