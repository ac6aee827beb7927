"""Spatial contrast as a mergeable statistic: exact whatever the chunking, and what HighContrast scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from bandselect.errors import InputError, ShapeError
from bandselect.selectors import HighContrastBandSelector
from bandselect.stats import BandStatistics, compute_statistics
from bandselect.stats.spatial import laplacian_abs_sums

WAVELENGTHS = np.linspace(430.0, 730.0, 31)


def _scene(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cube = rng.normal(0.5, 0.01, (41, 37, 31)).astype(np.float32)
    yy, xx = np.mgrid[:41, :37]
    cube[..., 4] += 0.3 * ((yy // 3 + xx // 3) % 2)  # a checkerboard texture at 470 nm (blue window)
    cube[..., 12] += 0.2 * np.sin(xx / 2.0)  # stripes at 550 nm (green window)
    cube[..., 25] += 0.5 * (yy > 20)  # one edge at 680 nm: variance, little Laplacian energy (red window)
    return cube


def test_chunked_store_gives_the_whole_image_value() -> None:
    cube = _scene()
    whole = BandStatistics.from_arrays(cube, contrast=True)
    for chunks in ({"y": 8, "x": 7}, {"y": 41, "x": 5}, {"y": 1, "x": 37}):
        ds = xr.Dataset(
            {"cube": (("y", "x", "band"), cube)}, coords={"wavelength": ("band", WAVELENGTHS)}
        ).chunk(chunks)
        chunked = compute_statistics(ds, n_bins=None, contrast=True)
        assert chunked.laplacian_count == whole.laplacian_count == 41 * 37
        np.testing.assert_allclose(chunked.laplacian_energy, whole.laplacian_energy, rtol=1e-12, atol=0)


def test_merge_and_save_keep_the_contrast_terms(tmp_path) -> None:
    cube = _scene()
    top = BandStatistics.from_arrays(cube[None, :20], contrast=True)
    bottom = BandStatistics.from_arrays(cube[None, 20:], contrast=True)
    merged = top.merge(bottom)
    separate = laplacian_abs_sums(cube[:20])[0] + laplacian_abs_sums(cube[20:])[0]
    np.testing.assert_allclose(merged.laplacian_abs_sum, separate, rtol=1e-12)
    assert merged.laplacian_count == 41 * 37
    loaded = BandStatistics.load(merged.save(tmp_path / "s.npz"))
    np.testing.assert_array_equal(loaded.laplacian_abs_sum, merged.laplacian_abs_sum)
    assert loaded.laplacian_count == merged.laplacian_count
    with pytest.raises(InputError, match="contrast"):
        top.merge(BandStatistics.from_arrays(cube))
    with pytest.raises(InputError, match="contrast=True"):
        _ = BandStatistics.from_arrays(cube).laplacian_energy
    with pytest.raises(ShapeError, match="images"):
        BandStatistics.from_arrays(cube.reshape(-1, 31), contrast=True)


def test_high_contrast_fitted_from_statistics_equals_its_fit_and_forward() -> None:
    cube = _scene()
    wl = torch.from_numpy(WAVELENGTHS)
    from_cube = HighContrastBandSelector().fit(torch.from_numpy(cube[None]), wl)
    from_stats = HighContrastBandSelector()
    ds = xr.Dataset({"cube": (("y", "x", "band"), cube)}, coords={"wavelength": ("band", WAVELENGTHS)})
    from_stats.fit_from_statistics(
        compute_statistics(ds.chunk({"y": 9, "x": 9}), n_bins=None, contrast=True), wavelengths=WAVELENGTHS
    )
    forward = from_cube.forward(cube=torch.from_numpy(cube[None]), wavelengths=wl)["band_info"]
    assert from_stats.selection(WAVELENGTHS) == from_cube.selection(WAVELENGTHS)
    assert list(from_stats.selection(WAVELENGTHS).rgb_indices) == forward["band_indices"] == [25, 12, 4]
    np.testing.assert_allclose(
        from_stats.selection(WAVELENGTHS).score("contrast"),
        from_cube.selection(WAVELENGTHS).score("contrast"),
        rtol=1e-9,
    )
