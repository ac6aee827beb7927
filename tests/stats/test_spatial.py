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


def _reference_contrast(cube: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, int]:
    # The rule, pixel by pixel: kept centres only; a neighbour outside the image or not kept adds 0.
    height, width, n_bands = cube.shape
    total = np.zeros(n_bands)
    for y in range(height):
        for x in range(width):
            if not keep[y, x]:
                continue
            laplacian = np.zeros(n_bands)
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < height and 0 <= nx < width and keep[ny, nx]:
                    laplacian += cube[ny, nx].astype(np.float64) - cube[y, x]
            total += np.abs(laplacian)
    return total, int(keep.sum())


def test_pixels_that_do_not_count_never_reach_the_contrast() -> None:
    from bandselect.stats.classes import labelled_statistics

    cube = _scene()[:17, :15, :6].copy()
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, size=cube.shape[:2]).astype(np.int16)
    keep = labels != 0
    expected = _reference_contrast(cube, keep)
    np.testing.assert_allclose(laplacian_abs_sums(cube, keep)[0], expected[0], rtol=1e-12)
    assert laplacian_abs_sums(cube, keep)[1] == expected[1]
    # Without a keep mask: every pixel, as before (edges replicated).
    np.testing.assert_allclose(
        laplacian_abs_sums(cube)[0], _reference_contrast(cube, np.ones_like(keep))[0], rtol=1e-12
    )

    clean = labelled_statistics(cube, labels, ignore_label=0, n_bins=None, contrast=True)
    junk = cube.copy()
    junk[~keep] = np.nan  # NaN or any value in the ignored pixels: the same contrast, no error
    spoiled = labelled_statistics(junk, labels, ignore_label=0, n_bins=None, contrast=True)
    np.testing.assert_allclose(spoiled.laplacian_abs_sum, expected[0], rtol=1e-12)
    np.testing.assert_allclose(clean.laplacian_abs_sum, expected[0], rtol=1e-12)
    assert spoiled.laplacian_count == clean.laplacian_count == spoiled.count == int(keep.sum())
    # The valid mask and the NaN policy follow the same rule.
    from_valid = BandStatistics.from_arrays(junk, valid=keep, contrast=True)
    np.testing.assert_allclose(from_valid.laplacian_abs_sum, expected[0], rtol=1e-12)
    omitted = BandStatistics.from_arrays(junk, nan_policy="omit", contrast=True)
    np.testing.assert_allclose(omitted.laplacian_abs_sum, expected[0], rtol=1e-12)
    with pytest.raises(ShapeError, match="one flag per pixel"):
        laplacian_abs_sums(cube, keep[:-1])
    np.testing.assert_array_equal(
        laplacian_abs_sums(cube, keep.astype(np.uint8))[0], laplacian_abs_sums(cube, keep)[0]
    )


def test_chunked_store_contrast_leaves_out_invalid_pixels_as_memory_does() -> None:
    cube = _scene()
    rng = np.random.default_rng(6)
    valid = rng.random(cube.shape[:2]) > 0.2
    stored = np.where(valid[..., None], cube, 0.0).astype(np.float32)  # ingest stores invalid pixels as 0
    in_memory = BandStatistics.from_arrays(cube, valid=valid, contrast=True)
    for chunks in ({"y": 8, "x": 7}, {"y": 41, "x": 5}):
        ds = xr.Dataset(
            {"cube": (("y", "x", "band"), stored), "valid": (("y", "x"), valid)},
            coords={"wavelength": ("band", WAVELENGTHS)},
        ).chunk(chunks)
        chunked = compute_statistics(ds, n_bins=None, contrast=True)
        assert chunked.laplacian_count == in_memory.laplacian_count == int(valid.sum())
        np.testing.assert_allclose(chunked.laplacian_abs_sum, in_memory.laplacian_abs_sum, rtol=1e-12)


def test_high_contrast_ignores_the_ignored_pixels_values() -> None:
    from bandselect.training.fitting import fit_node

    cube = _scene()
    labels = np.ones(cube.shape[:2], np.int16)
    labels[::3, ::2] = 0  # scattered unlabelled pixels
    junk = cube.copy()
    junk[labels == 0] = np.random.default_rng(1).uniform(0, 5, size=(int((labels == 0).sum()), 31))
    picks = []
    for data in (cube, junk):
        node = HighContrastBandSelector()
        fit_node(node, data, labels, WAVELENGTHS, ignore_label=0)
        picks.append(node.selection(WAVELENGTHS))
    assert picks[0] == picks[1]
    assert list(picks[0].rgb_indices) == [25, 12, 4]


def test_high_contrast_fit_takes_the_ignore_label_like_fit_node() -> None:
    """``HighContrastBandSelector.fit(cube, wl, mask=..., ignore_label=...)`` (as the unsupervised
    selectors' fit): the same scores as ``fit_node`` with the ignore label, whatever the ignored pixels
    hold (junk and NaN); counted, the junk changes the picks."""
    from bandselect.errors import NonFiniteError
    from bandselect.training.fitting import fit_node

    cube = _scene()
    labels = np.ones(cube.shape[:2], np.int16)
    labels[::3, ::2] = 0
    junk = cube.copy()
    junk[labels == 0] = np.random.default_rng(1).uniform(0, 5, size=(int((labels == 0).sum()), 31))
    junk[0, 0] = np.nan  # an ignored pixel (row 0, column 0)
    reference = HighContrastBandSelector()
    fit_node(reference, cube, labels, WAVELENGTHS, ignore_label=0)
    fitted = HighContrastBandSelector().fit(junk[None], WAVELENGTHS, mask=labels[None], ignore_label=0)
    np.testing.assert_allclose(fitted.contrast_scores.numpy(), reference.contrast_scores.numpy(), rtol=1e-12)
    assert fitted.selection(WAVELENGTHS) == reference.selection(WAVELENGTHS)
    counted = HighContrastBandSelector().fit(np.nan_to_num(junk)[None], WAVELENGTHS)
    assert counted.selection(WAVELENGTHS) != reference.selection(WAVELENGTHS)
    with pytest.raises(NonFiniteError):
        HighContrastBandSelector().fit(junk[None], WAVELENGTHS)  # the NaN counts without the label
