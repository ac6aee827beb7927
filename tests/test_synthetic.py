"""Synthetic VNIR scenes: determinism, block independence, physics-like spectra, the planted answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bandselect.errors import ConfigError
from bandselect.names import ATTR_DISCRIMINATIVE_BANDS, VAR_CUBE, VAR_MASK
from bandselect.synthetic import (
    MATERIALS,
    SceneGenerator,
    make_scene,
    material_spectra,
    vnir_wavelengths,
    write_campaign,
)


def test_default_grid_is_61_bands_every_8_nm() -> None:
    wavelengths = vnir_wavelengths()
    assert wavelengths.size == 61 and wavelengths[0] == 430 and wavelengths[-1] == 910
    np.testing.assert_allclose(np.diff(wavelengths), 8.0)


def test_material_spectra_look_like_their_materials() -> None:
    wavelengths = vnir_wavelengths()
    spectra = dict(zip(MATERIALS, material_spectra(wavelengths), strict=True))
    at = {nm: int(np.argmin(np.abs(wavelengths - nm))) for nm in (470, 550, 670, 800, 880)}
    vegetation = spectra["vegetation"]
    assert vegetation[at[800]] / vegetation[at[670]] > 8  # red edge
    assert (
        vegetation[at[550]] > vegetation[at[470]] and vegetation[at[550]] > vegetation[at[670]]
    )  # green peak
    steepest = wavelengths[int(np.argmax(np.diff(vegetation)))]
    assert 690 <= steepest <= 740
    assert spectra["water"][at[880]] < 0.02 < spectra["water"][at[470]]
    assert np.all(np.diff(spectra["soil"][at[550] :]) > 0)  # soil brightens towards the NIR
    assert np.all((material_spectra(wavelengths) > 0) & (material_spectra(wavelengths) <= 1))


def test_scene_is_seeded_and_blocks_concatenate_to_the_scene() -> None:
    scene = make_scene(50, 40, seed=7)
    assert scene.cube.shape == (50, 40, 61) and scene.cube.dtype == np.float32
    assert np.array_equal(make_scene(50, 40, seed=7).cube, scene.cube)
    assert not np.array_equal(make_scene(50, 40, seed=8).cube, scene.cube)
    generator = SceneGenerator(50, 40, seed=7)
    blocks = [generator.rows(y, min(50, y + 13)) for y in range(0, 50, 13)]
    assert np.array_equal(np.concatenate([b[0] for b in blocks]), scene.cube)
    assert np.array_equal(np.concatenate([b[1] for b in blocks]), scene.mask)


def test_anomalies_differ_only_in_the_discriminative_bands() -> None:
    kwargs = {"seed": 3, "anomaly_fraction": 0.02, "noise_level": 0.0}
    planted = make_scene(64, 64, anomaly_strength=0.3, **kwargs)
    clean = make_scene(64, 64, anomaly_strength=0.0, **kwargs)
    np.testing.assert_array_equal(planted.mask, clean.mask)
    assert 0.01 < planted.mask.mean() < 0.04
    difference = np.abs(planted.cube - clean.cube) > 1e-7
    assert not difference[~planted.mask].any()  # background untouched
    changed_bands = np.flatnonzero(difference[planted.mask].any(axis=0))
    np.testing.assert_array_equal(changed_bands, planted.discriminative_bands)
    ratio = (
        planted.cube[planted.mask][:, planted.discriminative_bands]
        / clean.cube[planted.mask][:, planted.discriminative_bands]
    )
    np.testing.assert_allclose(ratio, 0.7, rtol=1e-5)
    wavelengths = planted.wavelengths_nm[planted.discriminative_bands]
    np.testing.assert_array_equal(wavelengths, [550, 558, 782, 790])


def test_custom_anomaly_bands_and_validation() -> None:
    scene = make_scene(16, 16, seed=1, anomaly_bands=[3, 40, 3], n_bands=61)
    np.testing.assert_array_equal(scene.discriminative_bands, [3, 40])
    with pytest.raises(ConfigError, match="anomaly_bands"):
        make_scene(8, 8, anomaly_bands=[61])
    with pytest.raises(ConfigError, match="anomaly_fraction"):
        make_scene(8, 8, anomaly_fraction=0.9)
    with pytest.raises(ConfigError, match="seed"):
        make_scene(8, 8, seed=-1)


def test_scene_has_texture_illumination_and_noise() -> None:
    scene = make_scene(96, 96, seed=2, anomaly_fraction=0.0)
    assert not scene.mask.any()
    nir = scene.cube[..., 46]  # ~798 nm: bright on vegetation, dark on water
    assert nir.std() > 0.05  # patches of different materials
    # Neighbouring pixels are alike (smooth texture), far ones are not.
    near = np.corrcoef(nir[:, :-1].ravel(), nir[:, 1:].ravel())[0, 1]
    assert near > 0.8
    # Noise: the same scene without noise differs by about noise_level * sqrt(signal).
    quiet = make_scene(96, 96, seed=2, anomaly_fraction=0.0, noise_level=0.0)
    residual = scene.cube - quiet.cube
    assert 0.002 < residual.std() < 0.02
    # Illumination changes between acquisitions: same materials grid, different brightness.
    other = make_scene(96, 96, seed=5, anomaly_fraction=0.0)
    assert abs(float(other.cube.mean()) - float(scene.cube.mean())) > 1e-3


def test_to_dataset_and_write_campaign_match_make_scene(tmp_path: Path) -> None:
    scene = make_scene(20, 12, seed=(4, 1), anomaly_fraction=0.05)
    dataset = scene.to_dataset()
    assert dataset[VAR_MASK].values.sum() == scene.mask.sum()
    campaign = write_campaign(tmp_path / "s.zarr", 2, 20, 12, seed=4, anomaly_fraction=0.05, chunk_yx=8)
    ids = campaign.ids()
    assert len(ids) == 2
    second = campaign.open(ids[1])
    np.testing.assert_array_equal(second[VAR_CUBE].values, scene.cube)
    np.testing.assert_array_equal(second[VAR_MASK].values.astype(bool), scene.mask)
    assert list(second.attrs[ATTR_DISCRIMINATIVE_BANDS]) == scene.discriminative_bands.tolist()
    # Writing it again is a no-op.
    assert (
        write_campaign(tmp_path / "s.zarr", 2, 20, 12, seed=4, anomaly_fraction=0.05, chunk_yx=8).ids() == ids
    )


def test_bad_sizes_leave_no_store_behind(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        write_campaign(tmp_path / "c.zarr", 1, 0, 5)
    assert not (tmp_path / "c.zarr").exists()
