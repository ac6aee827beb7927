"""Campaign stores and composites on S3 (a local moto server): same content as on disk, atomic publishing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest
import xarray as xr
from object_store import S3Server, s3_server
from store_helpers import grid, small_cube

from bandselect import storage
from bandselect.errors import StoreError
from bandselect.names import ATTR_BAND_MAXIMUM, ATTR_BAND_MINIMUM, VAR_CUBE, VAR_MASK
from bandselect.selection import BandSelection
from bandselect.store import StoreSource, Window, create_campaign, ingest, make_acquisition, open_campaign
from bandselect.store.campaign import STAGING_DIR
from bandselect.store.layout import source_from_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with pytest.MonkeyPatch.context() as patch, s3_server(tmp_path_factory.mktemp("moto"), patch) as server:
        yield server


def acquisition(seed: int) -> xr.Dataset:
    cube = small_cube(12, 10, seed=seed)
    mask = (cube[..., 0] % 4 == 0).astype(np.uint8)
    return make_acquisition(cube, grid(), mask, attrs={"name": f"scene{seed}"})


def _objects(url: str) -> list[str]:
    fs, root = fsspec.core.url_to_fs(url)
    fs.invalidate_cache()
    return sorted(name.removeprefix(root + "/") for name in fs.find(root))


def test_campaign_on_s3_holds_what_a_folder_holds(s3: S3Server, tmp_path: Path) -> None:
    local = open_campaign(tmp_path / "local.zarr", create=True)
    remote = open_campaign(s3.url("same.zarr"), create=True)
    assert remote.remote and remote.path == s3.url("same.zarr")
    for seed in range(2):
        assert remote.append(acquisition(seed), chunk_yx=(5, 4)) == local.append(
            acquisition(seed), chunk_yx=(5, 4)
        )
    reopened = open_campaign(s3.url("same.zarr"))
    assert reopened.ids() == local.ids() and len(reopened.ids()) == 2
    np.testing.assert_array_equal(reopened.wavelengths, local.wavelengths)
    for acquisition_id in local.ids():
        ours, theirs = reopened.open(acquisition_id), local.open(acquisition_id)
        np.testing.assert_array_equal(ours[VAR_CUBE].values, theirs[VAR_CUBE].values)
        np.testing.assert_array_equal(ours[VAR_MASK].values, theirs[VAR_MASK].values)
        assert ours[VAR_CUBE].data.chunks == theirs[VAR_CUBE].data.chunks
        # The per-band range recorded at ingest is the cube's own.
        values = theirs[VAR_CUBE].values.reshape(-1, 5)
        assert ours.attrs[ATTR_BAND_MINIMUM] == values.min(0).astype(float).tolist()
        assert ours.attrs[ATTR_BAND_MAXIMUM] == values.max(0).astype(float).tolist()
    # Appending the same content again publishes nothing; the staging prefix is empty afterwards.
    assert reopened.append(acquisition(0), chunk_yx=(5, 4)) in local.ids()
    assert len(reopened.ids()) == 2
    assert not [name for name in _objects(s3.url("same.zarr")) if name.startswith(STAGING_DIR)]


def test_store_errors_on_s3(s3: S3Server) -> None:
    with pytest.raises(StoreError, match="nothing at that prefix"):
        open_campaign(s3.url("missing.zarr"))
    storage.write_bytes(s3.url("photos", "a.jpg"), b"x")
    for create in (True, False):  # not "ingest data first": the prefix holds something else
        with pytest.raises(StoreError, match="non-empty prefix"):
            open_campaign(s3.url("photos"), create=create)
    open_campaign(s3.url("taken.zarr"), create=True)
    with pytest.raises(StoreError, match="expected a new path"):
        create_campaign(s3.url("taken.zarr"), exist_ok=False)
    assert create_campaign(s3.url("taken.zarr")).ids() == []
    with pytest.raises(StoreError, match="nothing at that prefix"):  # a missing bucket lists nothing
        open_campaign("s3://no-such-bucket-bandselect/c.zarr")
    with pytest.raises(StoreError, match="bucket exists"):
        open_campaign("s3://no-such-bucket-bandselect/c.zarr", create=True)
    remote = open_campaign(s3.url("errors.zarr"), create=True)
    with pytest.raises(StoreError, match="no such acquisition"):
        remote.open("missing-0123456789abcdef")


def test_ingest_files_into_s3(s3: S3Server, tmp_path: Path) -> None:
    cube = small_cube(11, 6, seed=3)
    np.savez(
        tmp_path / "scene.npz", cube=cube, wavelengths_nm=grid(), mask=(cube[..., 1] % 2).astype(np.uint8)
    )
    (acquisition_id,) = ingest([tmp_path / "scene.npz"], s3.url("ingested.zarr"), chunk_yx=4)
    assert ingest([tmp_path / "scene.npz"], s3.url("ingested.zarr"), chunk_yx=4) == [acquisition_id]
    (local_id,) = ingest([tmp_path / "scene.npz"], tmp_path / "local.zarr", chunk_yx=4)
    assert acquisition_id == local_id
    from bandselect import cli

    assert cli.main(["ingest", str(tmp_path / "scene.npz"), "--store", s3.url("cli.zarr"), "--quiet"]) == 0
    assert open_campaign(s3.url("cli.zarr")).ids() == [acquisition_id]
    assert f"campaign {s3.url('cli.zarr')}: 1 acquisition" in cli.campaign_summary(s3.url("cli.zarr"))
    opened = open_campaign(s3.url("ingested.zarr")).open(acquisition_id)
    np.testing.assert_array_equal(opened[VAR_CUBE].values, cube.astype(np.float32))


def test_half_written_acquisition_is_never_visible(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """A publish that dies after copying the chunks but before the group's zarr.json is invisible, and
    appending the same content again completes it."""
    url = s3.url("crash.zarr")
    campaign = open_campaign(url, create=True)
    filesystem, _ = fsspec.core.url_to_fs(url)  # the (cached) instance the store uses
    original = filesystem.copy
    batches: list[list[str]] = []

    def copy_then_die(path1, path2, *args, **kwargs):  # type: ignore[no-untyped-def]
        batches.append(list(path2))
        if any(name.endswith(f"/{storage.MARKER}") and name.count("/") == 3 for name in path2):
            raise OSError("connection reset (simulated crash before the marker)")
        return original(path1, path2, *args, **kwargs)

    monkeypatch.setattr(filesystem, "copy", copy_then_die)
    staged = campaign.stage(source_from_dataset(acquisition(5), name="scene5"), chunk_yx=(5, 4))
    with pytest.raises(StoreError, match=r"zarr\.json last"):
        campaign.publish(staged)
    monkeypatch.undo()
    # The chunks were copied first, in their own batch; only the marker was missing when it died.
    assert len(batches) == 2 and all(
        not name.endswith("/zarr.json") or name.count("/") > 3 for name in batches[0]
    )
    body = [name for name in _objects(url) if name.startswith(staged.acquisition_id + "/")]
    assert body and f"{staged.acquisition_id}/{storage.MARKER}" not in body
    assert campaign.ids() == [] and open_campaign(url).ids() == []
    with pytest.raises(StoreError, match="no such acquisition"):
        campaign.open(staged.acquisition_id)
    with pytest.raises(StoreError, match="at least one acquisition"):
        StoreSource(url)
    # The next append of that content completes it.
    assert campaign.append(acquisition(5), chunk_yx=(5, 4)) == staged.acquisition_id
    assert campaign.ids() == [staged.acquisition_id]
    np.testing.assert_array_equal(
        campaign.open(staged.acquisition_id)[VAR_CUBE].values, acquisition(5)[VAR_CUBE].values
    )


def test_failed_staging_leaves_nothing(s3: S3Server) -> None:
    from bandselect.errors import FileFormatError
    from bandselect.store.layout import AcquisitionSource

    def truncated(block_rows: int) -> Iterator[tuple[np.ndarray, None, None]]:
        yield np.ones((4, 6, 5), np.float32), None, None  # announces 12 rows, delivers 4

    campaign = open_campaign(s3.url("truncated.zarr"), create=True)
    source = AcquisitionSource("cut", (12, 6, 5), np.dtype(np.float32), grid(), truncated)
    with pytest.raises(FileFormatError, match="truncated"):
        campaign.append_source(source, chunk_yx=4)
    assert campaign.ids() == [] and _objects(s3.url("truncated.zarr")) == ["zarr.json"]


def test_windows_read_from_s3_equal_local(s3: S3Server, tmp_path: Path) -> None:
    local = open_campaign(tmp_path / "w.zarr", create=True)
    remote = open_campaign(s3.url("windows.zarr"), create=True)
    for seed in (1, 2):
        local.append(acquisition(seed), chunk_yx=(5, 4))
        remote.append(acquisition(seed), chunk_yx=(5, 4))
    ours, theirs = StoreSource(remote.path, cache_bytes=2**16), StoreSource(local)
    assert ours.shapes == theirs.shapes and ours.classes() == theirs.classes()
    for window in (Window(0, 0, 12, 0, 10), Window(1, 3, 9, 2, 7)):
        (cube_a, labels_a), (cube_b, labels_b) = ours.read(window), theirs.read(window)
        np.testing.assert_array_equal(cube_a, cube_b)
        np.testing.assert_array_equal(labels_a, labels_b)


def test_composites_exported_to_s3(s3: S3Server, tmp_path: Path) -> None:
    from bandselect.export import export_composite, published_config_hash, published_ids, read_composite

    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    acquisition_id = campaign.append(acquisition(4), chunk_yx=(5, 4))
    selection = BandSelection.create([4, 2, 0], grid(), selector_type="test")
    output = s3.url("composites.zarr")
    first = export_composite(campaign, acquisition_id, output, selection, preview_dir=tmp_path / "previews")
    assert first.status == "published" and Path(first.preview or "").is_file()
    assert published_ids(output) == [acquisition_id]
    again = export_composite(campaign, acquisition_id, output, selection)
    assert again.status == "skipped"
    other = BandSelection.create([1, 2, 3], grid(), selector_type="test")
    replaced = export_composite(campaign, acquisition_id, output, other)
    assert (
        replaced.status == "replaced"
        and published_config_hash(output, acquisition_id) == replaced.config_hash
    )
    composite = read_composite(output, acquisition_id)
    np.testing.assert_array_equal(
        composite["composite"].values,
        campaign.open(acquisition_id)[VAR_CUBE].values[..., list(other.rgb_indices)],
    )
    assert not [name for name in _objects(output) if name.startswith(STAGING_DIR)]


def test_synthetic_campaign_and_training_from_s3(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``write_campaign`` and ``TrainingData.from_store`` take a URL as a URL (``Path`` made both a
    local folder named ``s3:``), and training streams the same patches from S3 as from a folder."""
    from bandselect.synthetic import write_campaign
    from bandselect.training import TrainingData, train_two_phase

    monkeypatch.chdir(tmp_path)  # where a URL taken for a relative path would land
    url = s3.url("synthetic.zarr")
    options = {"n_bands": 12, "seed": 3, "anomaly_fraction": 0.02, "chunk_yx": (16, 16)}
    remote = write_campaign(url, 2, 32, 40, **options)
    local = write_campaign(tmp_path / "local.zarr", 2, 32, 40, **options)
    assert not (tmp_path / "s3:").exists()
    assert open_campaign(url).ids() == remote.ids() == local.ids()
    data = TrainingData.from_store(url)
    assert data.store == url
    training = {"epochs": 2, "patch_size": 16, "batch_size": 2, "batches_per_epoch": 2, "device": "cpu"}
    ours = train_two_phase(None, data, training)  # the recipe's pipeline
    theirs = train_two_phase(None, TrainingData.from_store(tmp_path / "local.zarr"), training)
    assert ours.selection_after.indices == theirs.selection_after.indices
    assert [r.loss for r in ours.history] == [r.loss for r in theirs.history]


def test_without_credentials_a_typed_error(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's own errors (no credentials here) are StoreErrors naming the store and the fix, not an
    "unexpected NoCredentialsError"."""
    from object_store import _clear_filesystem_caches

    from bandselect.export import open_composites

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    _clear_filesystem_caches()
    try:
        with pytest.raises(StoreError, match="AWS_"):
            open_campaign(s3.url("any.zarr"))
        with pytest.raises(StoreError, match="AWS_"):
            open_composites(s3.url("any-composites.zarr"))
        with pytest.raises(StoreError, match="AWS_"):
            create_campaign(s3.url("any.zarr"), exist_ok=False)
    finally:
        _clear_filesystem_caches()  # the next test's filesystems have the credentials again


def test_products_of_an_s3_store_and_what_stays_local(s3: S3Server, tmp_path: Path) -> None:
    """GeoTIFFs are made from product stores on S3; folders that are local by design (GeoTIFFs, PNG
    previews, locks, source files) refuse a URL before anything is written, instead of becoming a local
    folder named ``s3:``."""
    import rasterio

    from bandselect.errors import ConfigError
    from bandselect.export import export_composite
    from bandselect.products import ProductPlan, export_products
    from bandselect.store.locking import exclusive_lock
    from bandselect.store.readers import discover

    campaign = open_campaign(tmp_path / "p.zarr", create=True)
    acquisition_id = campaign.append(acquisition(5), chunk_yx=(5, 4))
    selection = BandSelection.create([4, 2, 0], grid(), selector_type="test")
    plan = ProductPlan({"composite": s3.url("p-composites.zarr")}, geotiff="tiff", geotiff_dir=str(tmp_path))
    results = export_products(campaign, [acquisition_id], selection, plan)
    assert [r.status for r in results] == ["published", "published"]
    with rasterio.open(tmp_path / "composite" / f"{acquisition_id}.tif") as tif:
        np.testing.assert_array_equal(
            np.moveaxis(tif.read(), 0, -1),
            campaign.open(acquisition_id)[VAR_CUBE].values[..., list(selection.rgb_indices)],
        )

    with pytest.raises(ConfigError, match="GeoTIFFs are written to local files"):
        ProductPlan({"composite": s3.url("q.zarr")}, geotiff="cog", geotiff_dir=s3.url("tifs"))
    with pytest.raises(ConfigError, match="PNG previews"):
        export_composite(campaign, acquisition_id, s3.url("r.zarr"), selection, preview_dir=s3.url("png"))
    with pytest.raises(ConfigError, match="PNG previews"):
        export_products(
            campaign,
            [acquisition_id],
            selection,
            ProductPlan({"bands": s3.url("s.zarr")}),
            preview_dir=s3.url("png"),
        )
    assert not storage.exists(s3.url("r.zarr")) and not storage.exists(s3.url("s.zarr"))
    with pytest.raises(ConfigError, match="locks are flocks of local files"):
        with exclusive_lock(s3.url("p-composites.zarr")):
            pass
    with pytest.raises(ConfigError, match="read from this machine"):
        discover([s3.url("raw", "scene.npz")])
    from bandselect.store.archive import ingest_new_files

    with pytest.raises(ConfigError, match="read from this machine"):
        ingest_new_files(s3.url("archive"), s3.url("from-archive.zarr"))
    assert not storage.exists(s3.url("from-archive.zarr"))  # refused before the store was made
    assert not list(Path.cwd().glob("s3:*")) and not list(tmp_path.glob("s3:*"))


def test_labelled_scene_from_an_s3_store(s3: S3Server, tmp_path: Path) -> None:
    from bandselect.evaluation.scene import load_labelled_scene

    remote = open_campaign(s3.url("scene.zarr"), create=True)
    local = open_campaign(tmp_path / "scene.zarr", create=True)
    ids = [store.append(acquisition(6), chunk_yx=(5, 4)) for store in (remote, local)]
    assert ids[0] == ids[1]
    ours = load_labelled_scene(s3.url("scene.zarr"), acquisition=ids[0])
    theirs = load_labelled_scene(tmp_path / "scene.zarr", acquisition=ids[0])
    np.testing.assert_array_equal(ours.cube, theirs.cube)
    np.testing.assert_array_equal(ours.positive, theirs.positive)
    assert ours.name == theirs.name == f"scene/{ids[0]}"
