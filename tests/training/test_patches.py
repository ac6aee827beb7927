"""PatchDataModule streaming: cached reads return the patches of uncached reads; workers follow the epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from bandselect.errors import ConfigError, LabelError
from bandselect.store import make_acquisition, open_campaign
from bandselect.training import PatchDataModule

OPTIONS = {"patch_size": 8, "batch_size": 6, "batches_per_epoch": 5, "val_rows": (0.5, 1.0), "seed": 3}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bandselect.store import open_campaign

    path = tmp_path_factory.mktemp("loader") / "campaign"
    campaign = open_campaign(path, create=True)
    for seed in range(2):
        rng = np.random.default_rng(seed)
        cube = rng.random((40, 36, 5), dtype=np.float32)
        mask = (rng.random((40, 36)) > 0.8).astype(np.uint8)
        ds = xr.Dataset(
            {"cube": (("y", "x", "band"), cube), "mask": (("y", "x"), mask)},
            coords={"wavelength": ("band", np.linspace(450.0, 850.0, 5))},
        )
        campaign.append(ds, name=f"scene{seed}", chunk_yx=(16, 16))
    return path


def _epochs(dm: PatchDataModule, epochs: int = 2) -> list[dict[str, np.ndarray]]:
    batches = []
    for epoch in range(epochs):
        dm.set_epoch(epoch)
        batches += [{k: v.numpy() for k, v in b.items()} for b in dm.train_dataloader()]
    return batches


def _assert_same(a: list[dict[str, np.ndarray]], b: list[dict[str, np.ndarray]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])


@pytest.mark.parametrize("patches_per_window", [1, 3])
def test_cached_reads_equal_uncached_reads_and_memory(store: Path, patches_per_window: int) -> None:
    options = {**OPTIONS, "patches_per_window": patches_per_window}
    uncached = PatchDataModule.from_store(store, cache_bytes=0, **options)
    expected = _epochs(uncached)
    chunk_bytes = 16 * 16 * 5 * 4
    small = PatchDataModule.from_store(store, cache_bytes=3 * chunk_bytes, **options)
    _assert_same(_epochs(small), expected)
    cache = small.source.cache
    assert 0 < cache.nbytes <= 3 * chunk_bytes and cache.hits > 0 and cache.misses > 0
    large = PatchDataModule.from_store(store, **options)
    _assert_same(_epochs(large), expected)
    assert large.source.cache.hit_rate > cache.hit_rate
    # The same seed gives the same patches from in-memory arrays.
    ds = [xr.open_zarr(store, group=i, consolidated=False) for i in uncached.source.ids]
    memory = PatchDataModule.from_arrays(
        np.stack([d["cube"].values for d in ds]),
        np.stack([d["mask"].values for d in ds]),
        wavelengths=uncached.wavelengths,
        **options,
    )
    _assert_same(_epochs(memory), expected)
    # Validation regions (their cube chunks outgrow this cache: read in one slice) read the same.
    for got, want in zip(small.val_dataloader(), uncached.val_dataloader(), strict=True):
        for key in want:
            np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())
    assert cache.nbytes <= 3 * chunk_bytes


def test_persistent_workers_follow_set_epoch(store: Path) -> None:
    expected = _epochs(PatchDataModule.from_store(store, **OPTIONS), epochs=3)
    workers = PatchDataModule.from_store(store, num_workers=2, **OPTIONS)
    loader = workers.train_dataloader()
    got = _epochs(workers, epochs=3)
    assert workers.train_dataloader() is loader and loader.persistent_workers
    by_batch = {b["cube"].tobytes() for b in got}
    assert by_batch == {b["cube"].tobytes() for b in expected} and len(got) == len(expected)
    # Resuming at epoch 2 in a fresh datamodule gives that epoch's patches.
    resumed = PatchDataModule.from_store(store, num_workers=1, **OPTIONS)
    resumed.set_epoch(2)
    _assert_same([{k: v.numpy() for k, v in b.items()} for b in resumed.train_dataloader()], expected[-5:])


def test_window_sampling_is_uniform_per_patch_and_local_per_group() -> None:
    cube = np.zeros((40, 50, 2), np.float32)
    options = {"patch_size": 4, "batch_size": 8, "batches_per_epoch": 4000, "val_rows": None}
    dm = PatchDataModule.from_arrays(
        cube, wavelengths=[1.0, 2.0], train_rows=(0.0, 0.5), patches_per_window=4, window_size=10, **options
    )
    ys, xs = [], []
    for b in range(dm.batches_per_epoch):
        windows = dm.stream.windows(b)
        for group in (windows[:4], windows[4:]):
            assert max(w.y1 for w in group) - min(w.y0 for w in group) <= 10
            assert max(w.x1 for w in group) - min(w.x0 for w in group) <= 10
        ys += [w.y0 for w in windows]
        xs += [w.x0 for w in windows]
    # Starts 0..16 (rows 0:20) and 0..46: every start equally likely (chi-square, generous bound).
    for starts, n in ((ys, 17), (xs, 47)):
        counts = np.bincount(starts, minlength=n)
        assert len(counts) == n
        expected = len(starts) / n
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < n + 6 * np.sqrt(2 * n), chi2
    with pytest.raises(ConfigError, match="window_size"):
        PatchDataModule.from_arrays(cube, wavelengths=[1.0, 2.0], window_size=3, **options)


def _three_classes(height: int = 24, width: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((height, width, 3), dtype=np.float32), rng.integers(0, 3, (height, width)).astype(
        np.int16
    )


def test_positive_label_is_honoured_in_patches_validation_and_regions(tmp_path: Path) -> None:
    cube, labels = _three_classes()
    options = {"patch_size": 6, "batch_size": 4, "batches_per_epoch": 3, "seed": 1}
    default = PatchDataModule.from_arrays(cube, labels, wavelengths=[1.0, 2.0, 3.0], **options)
    only_two = PatchDataModule.from_arrays(
        cube, labels, wavelengths=[1.0, 2.0, 3.0], positive_label=2, **options
    )
    for dm, rule in ((default, labels > 0), (only_two, labels == 2)):
        for b, batch in enumerate(dm.train_dataloader()):
            for window, mask in zip(dm.stream.windows(b), batch["mask"].numpy()[..., 0], strict=True):
                np.testing.assert_array_equal(mask, rule[window.y0 : window.y1, window.x0 : window.x1])
        (val,) = dm.val_dataloader()
        np.testing.assert_array_equal(val["mask"].numpy()[0, ..., 0], rule[12:])
        np.testing.assert_array_equal(dm.region((0.0, 0.5))["mask"].numpy()[0, ..., 0], rule[:12])
    with pytest.raises(LabelError, match=r"positive_label=7.*classes \[0, 1, 2\]"):
        PatchDataModule.from_arrays(cube, labels, wavelengths=[1.0, 2.0, 3.0], positive_label=7, **options)
    # The same rule for a store: class 2 of the stored integer masks.
    campaign = open_campaign(tmp_path / "c", create=True)
    campaign.append(make_acquisition(cube, [1.0, 2.0, 3.0], labels, attrs={"name": "scene"}), chunk_yx=(8, 8))
    stored = PatchDataModule.from_store(tmp_path / "c", positive_label=2, **options)
    for got, want in zip(stored.train_dataloader(), only_two.train_dataloader(), strict=True):
        np.testing.assert_array_equal(got["mask"].numpy(), want["mask"].numpy())
        np.testing.assert_array_equal(got["cube"].numpy(), want["cube"].numpy())
    with pytest.raises(LabelError, match="positive_label=7"):
        PatchDataModule.from_store(tmp_path / "c", positive_label=7, **options)


def test_region_batches_tile_the_rows_of_every_acquisition_exactly() -> None:
    cubes = np.stack([_three_classes(seed=s)[0] for s in range(2)])
    masks = np.stack([_three_classes(seed=s)[1] for s in range(2)])
    dm = PatchDataModule.from_arrays(cubes, masks, wavelengths=[1.0, 2.0, 3.0], patch_size=5)
    batches = dm.region_batches(dm.train_rows, block_rows=5)
    assert len(batches) == 2 * 3  # rows 0:12 of each acquisition: blocks of 5, 5, 2
    assert [tuple(b["cube"].shape) for b in batches] == [(1, 5, 20, 3), (1, 5, 20, 3), (1, 2, 20, 3)] * 2
    for source in range(2):
        rows = np.concatenate([b["cube"].numpy()[0] for b in list(batches)[3 * source : 3 * source + 3]])
        np.testing.assert_array_equal(rows, cubes[source, :12])
        region = dm.region(dm.train_rows, source)
        np.testing.assert_array_equal(region["cube"].numpy()[0], cubes[source, :12])
        np.testing.assert_array_equal(region["mask"].numpy()[0, ..., 0], masks[source, :12] > 0)
        assert dm.full_region(dm.val_rows, source)["cube"].shape == (1, 12, 20, 3)
    with pytest.raises(ConfigError, match="block_rows"):
        dm.region_batches(dm.train_rows, block_rows=0)
