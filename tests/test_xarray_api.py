"""xarray cubes: fit on a lazy DataArray through the Dask statistics path, keep the selected bands."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from dask.callbacks import Callback
from multiclass_scenes import planted_pair_scene

import bandselect.xarray_api  # noqa: F401  (registers the .bandselect accessor)
from bandselect.errors import ConfigError, LabelError, WavelengthError
from bandselect.selectors import OrthogonalProjectionBandSelector, SupervisedFullSpectrumBandSelector
from bandselect.sklearn_api import SpectralBandSelector
from bandselect.xarray_api import band_dimension, fit_selector, select_bands

SCENE = planted_pair_scene()
N_BANDS = SCENE.cube.shape[-1]


def _cube(order: tuple[str, ...] = ("wavelength", "lat", "lon"), chunks: dict | None = None) -> xr.DataArray:
    cube = xr.DataArray(
        SCENE.cube,
        dims=("lat", "lon", "wavelength"),
        coords={
            "lat": np.linspace(45.0, 46.0, SCENE.cube.shape[0]),
            "lon": np.linspace(7.0, 8.0, SCENE.cube.shape[1]),
            "wavelength": ("wavelength", SCENE.wavelengths_nm, {"units": "nm"}),
            "time": np.datetime64("2026-06-01"),
        },
        attrs={"sensor": "synthetic", "campaign": "test"},
        name="reflectance",
    ).transpose(*order)
    return cube.chunk(chunks or {"lat": 13, "lon": 17})


def _labels(order: tuple[str, ...] = ("lon", "lat")) -> xr.DataArray:
    return xr.DataArray(SCENE.labels, dims=("lat", "lon")).transpose(*order).chunk({"lat": 9})


class _Count(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.tasks = 0

    def _posttask(self, *args: object) -> None:
        self.tasks += 1


def test_round_trip_keeps_coordinates_attributes_and_laziness() -> None:
    cube = _cube()
    selector = fit_selector(
        SupervisedFullSpectrumBandSelector(
            num_spectral_bands=N_BANDS, criterion="separability", k=6, multiclass=True
        ),
        cube,
        _labels(),
        ignore_label=0,
    )
    kept = select_bands(cube, selector)
    assert isinstance(kept.data, da.Array)  # still lazy
    assert kept.dims == cube.dims and kept.attrs == cube.attrs and kept.name == "reflectance"
    for name in ("lat", "lon", "time"):
        assert kept.coords[name].equals(cube.coords[name])
    assert kept.coords["wavelength"].values.tolist() == [
        SCENE.wavelengths_nm[b] for b in sorted(SCENE.planted)
    ]
    assert kept.coords["wavelength"].attrs == {"units": "nm"}
    np.testing.assert_array_equal(kept.values, cube.values[sorted(SCENE.planted)])


def test_fit_on_a_lazy_cube_runs_on_dask_and_equals_the_in_memory_fit() -> None:
    counter = _Count()
    with counter, dask.config.set(scheduler="threads"):
        lazy = fit_selector(
            SupervisedFullSpectrumBandSelector(
                num_spectral_bands=N_BANDS, criterion="mrmr", k=6, multiclass=True
            ),
            _cube(("lon", "wavelength", "lat")),
            _labels(),
            ignore_label=0,
        )
    assert counter.tasks > 20  # a graph over the chunks, not one in-memory call
    memory = SupervisedFullSpectrumBandSelector(
        num_spectral_bands=N_BANDS, criterion="mrmr", k=6, multiclass=True
    )
    memory.fit(SCENE.cube[None], SCENE.labels[None], ignore_label=0)
    assert lazy.selection(SCENE.wavelengths_nm) == memory.selection(SCENE.wavelengths_nm)


def test_ignored_pixels_may_hold_garbage_in_a_lazy_cube() -> None:
    cube = _cube(("lat", "lon", "wavelength"))
    garbage = cube.where(xr.DataArray(SCENE.labels != 0, dims=("lat", "lon")), np.nan)
    clean = fit_selector(SpectralBandSelector(k=6), cube, _labels(), ignore_label=0)
    dirty = fit_selector(SpectralBandSelector(k=6), garbage, _labels(), ignore_label=0)
    assert dirty.indices_.tolist() == clean.indices_.tolist()
    assert sorted(dirty.indices_.tolist()) == sorted(SCENE.planted)


def test_datasets_pixel_lists_and_the_accessor() -> None:
    ds = xr.Dataset({"cube": _cube(), "mask": _labels()})
    one_vs_rest = fit_selector(SpectralBandSelector(k=3), ds, positive_label=12, ignore_label=0)
    direct = SpectralBandSelector(k=3, positive_label=12, ignore_label=0).fit(
        SCENE.cube.reshape(-1, N_BANDS), SCENE.labels.reshape(-1)
    )
    assert one_vs_rest.indices_.tolist() == direct.indices_.tolist()
    own_roles = fit_selector(SpectralBandSelector(k=3, positive_label=12, ignore_label=0), ds)
    assert own_roles.indices_.tolist() == direct.indices_.tolist()
    with pytest.raises(ConfigError, match="ignore_label"):
        fit_selector(SpectralBandSelector(k=3, ignore_label=0), ds, ignore_label=255)
    pixels = xr.DataArray(
        SCENE.cube.reshape(-1, N_BANDS),
        dims=("pixel", "band"),
        coords={"wavelength": ("band", SCENE.wavelengths_nm)},
    )
    unsupervised = pixels.bandselect.fit(OrthogonalProjectionBandSelector(num_spectral_bands=N_BANDS, k=4))
    in_memory = OrthogonalProjectionBandSelector(num_spectral_bands=N_BANDS, k=4).fit(SCENE.cube[None])
    assert unsupervised.selected_indices.tolist() == in_memory.selected_indices.tolist()
    assert pixels.bandselect.band_dim == "band"
    assert pixels.bandselect.select(unsupervised).sizes == {"pixel": SCENE.labels.size, "band": 4}
    assert select_bands(ds, [3, 1]).coords["wavelength"].values.tolist() == list(SCENE.wavelengths_nm[[1, 3]])


def test_bad_input() -> None:
    bare = xr.DataArray(SCENE.cube, dims=("row", "col", "channel"))
    with pytest.raises(WavelengthError, match=r"dims \('row', 'col', 'channel'\)"):
        band_dimension(bare)
    with pytest.raises(WavelengthError, match="'row', 'col', 'channel'"):
        fit_selector(SpectralBandSelector(), bare, SCENE.labels)
    with pytest.raises(LabelError, match="one class only"):
        fit_selector(SpectralBandSelector(), _cube(), np.where(SCENE.labels == 3, 3, 0), ignore_label=0)
    with pytest.raises(LabelError, match="labels"):
        fit_selector(SpectralBandSelector(), _cube(), None, ignore_label=0)
    other_grid = SpectralBandSelector(k=3, wavelengths_nm=SCENE.wavelengths_nm + 1.0)
    other_grid.fit(SCENE.cube.reshape(-1, N_BANDS), SCENE.labels.reshape(-1))
    with pytest.raises(WavelengthError, match="grid"):
        select_bands(_cube(), other_grid.selection_)
    # Bands out of order (overlapping spectrometers): the fix is xarray's own one-liner, and it works.
    swapped = _cube().isel(wavelength=[1, 0, *range(2, N_BANDS)])
    with pytest.raises(WavelengthError, match=r"data\.sortby\('wavelength'\)"):
        fit_selector(SpectralBandSelector(k=6), swapped, _labels())
    refit = fit_selector(SpectralBandSelector(k=6), swapped.sortby("wavelength"), _labels())
    assert sorted(refit.get_support(indices=True)) == sorted(SCENE.planted)
