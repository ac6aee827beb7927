"""PatchDataModule streaming: the chunk cache is bounded and returns the patches of uncached reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from bandselect.errors import ConfigError
from bandselect.training.loader import ChunkCache, PatchDataModule

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


def test_chunk_cache_is_bounded_and_lru() -> None:
    cache = ChunkCache(max_bytes=3 * 80)
    for key in range(5):
        cache.put(key, np.full(10, key, np.float64))  # 80 bytes each
        assert cache.nbytes <= cache.max_bytes
    assert len(cache) == 3 and cache.lookup(0) is None and cache.lookup(1) is None
    assert cache.lookup(2) is not None  # 2 is now the most recently used: 3 is evicted next
    cache.put(5, np.zeros(10))
    assert cache.lookup(3) is None and cache.lookup(2) is not None
    cache.put("big", np.zeros(100))  # larger than the whole cache: not kept, nothing evicted
    assert cache.lookup("big") is None and len(cache) == 3
    with pytest.raises(ConfigError, match="cache_bytes"):
        ChunkCache(-1)


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
