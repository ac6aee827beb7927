"""Statistics of a campaign on S3 (a local moto server) equal those of the same campaign on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest
from object_store import S3Server, s3_server

from bandselect.stats import compute_statistics, load_campaign_statistics, update_campaign_statistics
from bandselect.stats.incremental import statistics_dir
from bandselect.store import make_acquisition, open_campaign

pytestmark = pytest.mark.slow
WAVELENGTHS = np.linspace(450.0, 900.0, 7)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with pytest.MonkeyPatch.context() as patch, s3_server(tmp_path_factory.mktemp("moto"), patch) as server:
        yield server


def _scene(seed: int, scale: float = 1.0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    mask = (rng.random((33, 21)) < 0.15).astype(np.uint8)
    cube = scale * rng.normal(size=(33, 21, 7)) + 1.5 * mask[..., None] * (np.arange(7) == 3)
    return make_acquisition(cube.astype(np.float32), WAVELENGTHS, mask)


def _twins(s3: S3Server, tmp_path: Path, name: str, seeds: range):  # type: ignore[no-untyped-def]
    """The same scenes in a campaign on disk and one on the S3 server, chunked alike."""
    local = open_campaign(tmp_path / name, create=True)
    remote = open_campaign(s3.url(name), create=True)
    for seed in seeds:
        local.append(_scene(seed), chunk_yx=(10, 8))
        remote.append(_scene(seed), chunk_yx=(10, 8))
    return local, remote


def test_campaign_on_s3_gives_the_statistics_of_the_same_campaign_on_disk(
    s3: S3Server, tmp_path: Path
) -> None:
    local, remote = _twins(s3, tmp_path, "stats.zarr", range(3))
    ours, theirs = compute_statistics(remote, n_bins=128), compute_statistics(local, n_bins=128)
    np.testing.assert_array_equal(ours.counts, theirs.counts)
    np.testing.assert_array_equal(ours.hist_edges, theirs.hist_edges)
    np.testing.assert_array_equal(ours.histograms, theirs.histograms)
    np.testing.assert_array_equal(ours.class_comoments, theirs.class_comoments)  # same chunks, same order
    np.testing.assert_array_equal(ours.auc, theirs.auc)

    # The incremental sidecar lives under the store's URL and is used as on disk.
    first = update_campaign_statistics(remote, n_bins=128)
    assert first.computed_ids == tuple(remote.ids())
    fs, root = fsspec.core.url_to_fs(str(statistics_dir(remote)))
    fs.invalidate_cache()
    names = sorted(name.rsplit("/", 1)[-1] for name in fs.ls(root))
    assert names[0] == "manifest.json" and len(names) == 2 and names[1].startswith("statistics-")
    assert update_campaign_statistics(remote, n_bins=128).computed_ids == ()
    remote.append(_scene(9, scale=4.0), chunk_yx=(10, 8))
    local.append(_scene(9, scale=4.0), chunk_yx=(10, 8))
    grown = update_campaign_statistics(remote, n_bins=128)
    assert len(grown.computed_ids) == 1 and grown.histograms_rebuilt
    loaded = load_campaign_statistics(open_campaign(s3.url("stats.zarr")))
    assert loaded is not None and loaded.acquisition_ids == tuple(local.ids())
    full = compute_statistics(local, n_bins=128)
    np.testing.assert_array_equal(loaded.stats.histograms, full.histograms)
    np.testing.assert_allclose(loaded.stats.class_comoments, full.class_comoments, rtol=1e-10)
    assert len([name for name in fs.ls(root) if name.endswith(".npz")]) == 1  # the old file was removed


def test_statistics_without_a_class_are_kept_beside_the_statistics_on_s3(
    s3: S3Server, tmp_path: Path
) -> None:
    from bandselect.stats import statistics_without

    local, remote = _twins(s3, tmp_path, "without.zarr", range(2))
    stored_remote = update_campaign_statistics(remote, n_bins=64)
    ours = statistics_without(remote, stored_remote, 0)
    theirs = statistics_without(local, update_campaign_statistics(local, n_bins=64), 0)
    assert not np.array_equal(ours.hist_edges, stored_remote.stats.hist_edges)  # the kept range's bins
    np.testing.assert_array_equal(ours.hist_edges, theirs.hist_edges)
    np.testing.assert_array_equal(ours.histograms, theirs.histograms)
    fs, root = fsspec.core.url_to_fs(str(statistics_dir(remote)))
    fs.invalidate_cache()
    derived = [name for name in fs.find(root) if name.endswith("/without-0.npz")]
    assert len(derived) == 1 and ".derived/" in derived[0]
    # A new version of the statistics takes its derived files with it.
    remote.append(_scene(5), chunk_yx=(10, 8))
    update_campaign_statistics(remote, n_bins=64)
    fs.invalidate_cache()
    assert not [name for name in fs.find(root) if name.endswith("/without-0.npz")]


def test_statistics_saved_where_nothing_can_be_written(s3: S3Server) -> None:
    """A missing bucket is a StoreError naming the file (was a bare FileNotFoundError)."""
    from bandselect.errors import StoreError
    from bandselect.stats import BandStatistics, statistics_of

    cube = np.random.default_rng(0).normal(size=(6, 5, 3)).astype(np.float32)
    stats = statistics_of(cube, cube[..., 0] > 0, n_bins=8)
    with pytest.raises(StoreError, match=r"statistics file s3://no-such-bucket-bandselect/s\.npz"):
        stats.save("s3://no-such-bucket-bandselect/s.npz")
    saved = stats.save(s3.url("saved", "s.npz"))
    np.testing.assert_array_equal(BandStatistics.load(saved).histograms, stats.histograms)
