"""Fixtures for the task tests: a small labelled synthetic campaign and an archive of source files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bandselect.store import Campaign
from bandselect.synthetic import make_scene, write_campaign

#: The bands the synthetic campaign's anomalies differ in (write_campaign's planted answer).
N_BANDS = 24


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Campaign:
    """Two labelled 40 × 48 acquisitions, 24 bands."""
    path = tmp_path_factory.mktemp("tasks") / "campaign.zarr"
    return write_campaign(path, 2, 40, 48, n_bands=N_BANDS, chunk_yx=16, anomaly_fraction=0.03, seed=3)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """A folder with two .npz scenes and one truncated file."""
    folder = tmp_path / "archive"
    folder.mkdir()
    for seed in (1, 2):
        scene = make_scene(20, 24, n_bands=N_BANDS, seed=seed, anomaly_fraction=0.03)
        np.savez(
            folder / f"scene{seed}.npz",
            cube=scene.cube,
            wavelengths_nm=scene.wavelengths_nm,
            mask=scene.mask.astype(np.uint8),
        )
    data = (folder / "scene1.npz").read_bytes()
    (folder / "broken.npz").write_bytes(data[: len(data) // 3])
    return folder
