"""Real cubes from ../shared/data: ingest round trip bit-exact (after the float32 cast), also via ENVI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from spectral.io import envi

from bandselect.names import ATTR_SOURCE_BAND_ORDER, ATTR_SOURCE_DTYPE, VAR_CUBE, VAR_MASK
from bandselect.store import ingest, open_campaign

pytestmark = pytest.mark.realdata

CUBES = ("pavia_rosis_abu_beach4", "samson", "jasper_ridge", "muufl_gulfport_tgt")
Loader = Callable[[str], dict[str, np.ndarray]]


@pytest.mark.parametrize("name", CUBES)
def test_npz_round_trip_is_bit_exact(
    name: str, shared_data_dir: Path, load_shared: Loader, tmp_path: Path
) -> None:
    arrays = load_shared(name)
    cube, wavelengths, labels = arrays["cube"], arrays["wavelengths_nm"], arrays["gt"]
    # AVIRIS (jasper_ridge) lists the bands of its overlapping spectrometers out of order.
    order = np.argsort(wavelengths, kind="stable")
    [acquisition_id] = ingest([shared_data_dir / name / f"{name}.npz"], tmp_path / "c.zarr", sort_bands=True)
    dataset = open_campaign(tmp_path / "c.zarr").open(acquisition_id)
    stored = dataset[VAR_CUBE].values
    assert stored.dtype == np.float32
    assert np.array_equal(stored, cube.astype(np.float32)[..., order])  # bit-exact
    assert np.array_equal(dataset["wavelength"].values, wavelengths[order])
    assert np.array_equal(dataset[VAR_MASK].values, labels)
    assert dataset.attrs[ATTR_SOURCE_DTYPE] == str(cube.dtype)
    if not np.array_equal(order, np.arange(order.size)):
        assert list(dataset.attrs[ATTR_SOURCE_BAND_ORDER]) == order.tolist()
    # Re-ingest: same id, nothing added.
    again = ingest([shared_data_dir / name], tmp_path / "c.zarr", sort_bands=True)
    assert again == [acquisition_id]
    assert open_campaign(tmp_path / "c.zarr").ids() == [acquisition_id]


@pytest.mark.parametrize("interleave", ["bil", "bip", "bsq"])
@pytest.mark.parametrize("name", ["jasper_ridge", "samson"])
def test_real_cube_through_envi_in_micrometres(
    name: str, interleave: str, load_shared: Loader, tmp_path: Path
) -> None:
    arrays = load_shared(name)
    cube, wavelengths = arrays["cube"], arrays["wavelengths_nm"]
    order = np.argsort(wavelengths, kind="stable")
    header = tmp_path / f"{name}.hdr"
    envi.save_image(
        str(header),
        cube,
        interleave=interleave,
        ext=f".{interleave}",
        force=True,
        metadata={
            "wavelength": [f"{w / 1000:.9f}" for w in wavelengths],
            "wavelength units": "um",
            "sensor type": "test sensor",
        },
    )
    [acquisition_id] = ingest([header], tmp_path / "c.zarr", sort_bands=True, chunk_yx=32)
    dataset = open_campaign(tmp_path / "c.zarr").open(acquisition_id)
    assert np.array_equal(dataset[VAR_CUBE].values, cube.astype(np.float32)[..., order])
    np.testing.assert_allclose(dataset["wavelength"].values, wavelengths[order], rtol=0, atol=1e-6)
    assert dataset.attrs["sensor"] == "test sensor"
