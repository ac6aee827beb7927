"""Composite export: atomic, idempotent publishing with provenance; previews; bad outputs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpl_image

from bandselect.errors import ShapeError, StoreError
from bandselect.export import (
    ATTR_CONFIG_HASH,
    ATTR_EXPORTED_AT,
    ATTR_SELECTED_WAVELENGTHS,
    ATTR_SELECTION,
    ATTR_SOURCE_ACQUISITION,
    VAR_COMPOSITE,
    composite_config_hash,
    export_composite,
    published_config_hash,
    published_ids,
    read_composite,
)
from bandselect.render import to_uint8_rgb
from bandselect.selection import BandSelection
from bandselect.store import open_campaign
from bandselect.store.campaign import STAGING_DIR
from bandselect.store.writer import host_tag
from bandselect.synthetic import write_campaign


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("export") / "campaign.zarr"
    return write_campaign(path, 2, 24, 30, n_bands=12, chunk_yx=16, anomaly_fraction=0.02)


def _tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def test_publish_skip_replace_with_provenance(campaign, tmp_path: Path) -> None:
    output = tmp_path / "composites.zarr"
    wavelengths = campaign.wavelengths
    spec = BandSelection.create([9, 5, 1], wavelengths, selector_type="fixed")
    before = _tree_digest(Path(campaign.path))
    first_id = campaign.ids()[0]
    result = export_composite(campaign, first_id, output, spec, preview_dir=tmp_path / "png")
    assert result.status == "published"
    composite = read_composite(output, first_id)
    cube = campaign.open(first_id)["cube"].values
    np.testing.assert_array_equal(composite[VAR_COMPOSITE].values, cube[:, :, [9, 5, 1]])
    assert composite.attrs[ATTR_SOURCE_ACQUISITION] == first_id
    assert composite.attrs[ATTR_CONFIG_HASH] == composite_config_hash(spec)
    assert composite.attrs[ATTR_SELECTED_WAVELENGTHS] == [float(wavelengths[i]) for i in (9, 5, 1)]
    assert BandSelection.from_dict(composite.attrs[ATTR_SELECTION]) == spec  # the whole selection travels
    stamp = composite.attrs[ATTR_EXPORTED_AT]
    image = mpl_image.imread(result.preview)  # PNG as floats in [0, 1]
    expected = to_uint8_rgb(cube[:, :, [9, 5, 1]], (1.0, 99.0))  # the default stretch, full size
    np.testing.assert_array_equal(np.round(image[..., :3] * 255).astype(np.uint8), expected)

    again = export_composite(campaign, first_id, output, spec, preview_dir=tmp_path / "png")
    assert again.status == "skipped"
    assert read_composite(output, first_id).attrs[ATTR_EXPORTED_AT] == stamp

    other = BandSelection.create([10, 5, 1], wavelengths, selector_type="fixed")
    assert composite_config_hash(other) != composite_config_hash(spec)
    assert export_composite(campaign, first_id, output, other).status == "replaced"
    assert published_config_hash(output, first_id) == composite_config_hash(other)
    assert published_ids(output) == [first_id]
    assert _tree_digest(Path(campaign.path)) == before  # the source store is only read


def test_crash_leftover_is_ignored_and_cleaned(campaign, tmp_path: Path) -> None:
    output = tmp_path / "composites.zarr"
    spec = BandSelection.create([9, 5, 1], campaign.wavelengths, selector_type="fixed")
    export_composite(campaign, campaign.ids()[0], output, spec)
    # A staging directory of a process that no longer exists (pid 2**22 + 1 is beyond pid_max here).
    leftover = output / STAGING_DIR / f"{host_tag()}-{2**22 + 1}-deadbeef0000"
    (leftover / VAR_COMPOSITE).mkdir(parents=True)
    assert published_ids(output) == [campaign.ids()[0]]
    export_composite(campaign, campaign.ids()[1], output, spec)
    assert not leftover.exists()
    assert published_ids(output) == campaign.ids()


def test_bad_output_and_bad_bands(campaign, tmp_path: Path) -> None:
    spec = BandSelection.create([9, 5, 1], campaign.wavelengths, selector_type="fixed")
    with pytest.raises(StoreError, match="composites store"):
        export_composite(campaign, campaign.ids()[0], campaign.path, spec)  # a campaign store
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("x")
    with pytest.raises(StoreError, match="not a zarr group"):
        export_composite(campaign, campaign.ids()[0], tmp_path / "junk", spec)
    with pytest.raises(ShapeError, match="at least three selected bands"):
        export_composite(
            campaign,
            campaign.ids()[0],
            tmp_path / "two.zarr",
            BandSelection.create([1, 2], campaign.wavelengths, selector_type="x"),
        )
    assert not (tmp_path / "two.zarr").exists()  # refused before anything is written
    with pytest.raises(ShapeError, match=r"indices in \[0, 12\)"):
        BandSelection.create([1, 2, 99], campaign.wavelengths, selector_type="x")
    with pytest.raises(StoreError, match="acquisition id"):
        export_composite(campaign, "../escape", tmp_path / "out.zarr", spec)


def test_source_store_opened_read_only(campaign, tmp_path: Path) -> None:
    mtimes = {p: p.stat().st_mtime_ns for p in Path(campaign.path).rglob("*")}
    spec = BandSelection.create([3, 2, 1], campaign.wavelengths, selector_type="fixed")
    for acquisition_id in open_campaign(campaign.path).ids():
        export_composite(campaign, acquisition_id, tmp_path / "o.zarr", spec, preview_dir=tmp_path)
    assert {p: p.stat().st_mtime_ns for p in Path(campaign.path).rglob("*")} == mtimes
    assert os.listdir(tmp_path / "o.zarr" / STAGING_DIR) == []


def test_no_data_pixels_travel_with_the_composite_and_are_transparent_in_its_preview(tmp_path: Path) -> None:
    """An acquisition with invalid pixels (NaN ingested with mask_nonfinite): its composite carries
    ``valid``, the preview's stretch leaves those pixels out and they are transparent, and the flow
    figure draws them hatched ("no data") instead of black."""
    from bandselect.reports.figures import composite_preview
    from bandselect.reports.plots import plot_rgb_previews
    from bandselect.store import ingest

    rng = np.random.default_rng(2)
    cube = rng.uniform(0.2, 0.8, size=(20, 24, 6)).astype(np.float32)
    cube[:4] = np.nan  # no-data rows
    archive = tmp_path / "scene.npz"
    np.savez(archive, cube=cube, wavelengths_nm=np.linspace(450, 900, 6))
    store = tmp_path / "store.zarr"
    (acquisition,) = ingest(archive, store, mask_nonfinite=True)
    spec = BandSelection.create([4, 2, 0], np.linspace(450, 900, 6), selector_type="fixed")
    output = tmp_path / "composites.zarr"
    result = export_composite(open_campaign(store), acquisition, output, spec, preview_dir=tmp_path / "png")
    valid = np.ones((20, 24), bool)
    valid[:4] = False
    np.testing.assert_array_equal(read_composite(output, acquisition)["valid"].values, valid)
    image = mpl_image.imread(result.preview)
    assert image.shape == (20, 24, 4)
    np.testing.assert_array_equal(image[..., 3] > 0, valid)  # transparent exactly where there is no data
    expected = to_uint8_rgb(cube[4:, :, [4, 2, 0]], (1.0, 99.0))  # stretched on the valid pixels only
    np.testing.assert_array_equal(np.round(image[4:, :, :3] * 255).astype(np.uint8), expected)
    preview = composite_preview(output, acquisition)
    assert np.isnan(preview[:4]).all() and np.isfinite(preview[4:]).all()
    figure = plot_rgb_previews({"a": preview}, {"a": "R 833 nm"})
    assert figure.axes[0].get_xlabel().endswith("hatched: no data")
    assert plot_rgb_previews({"a": preview[4:]}, {"a": "R 833 nm"}).axes[0].get_xlabel() == "R 833 nm"
