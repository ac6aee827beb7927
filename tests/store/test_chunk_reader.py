"""The store's chunk reader: a bounded LRU chunk cache; sources that pickle for worker processes."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from bandselect.errors import ConfigError
from bandselect.store import ChunkCache, StoreSource, Window
from bandselect.synthetic import write_campaign


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


def test_store_source_pickles_without_handles_and_with_an_empty_cache(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 2, 20, 24, n_bands=4, seed=0, chunk_yx=(8, 8))
    source = StoreSource(campaign, cache_bytes=2**16)
    window = Window(1, 3, 17, 5, 20)
    expected = source.read(window)
    assert len(source.cache) > 0
    copy = pickle.loads(pickle.dumps(source))
    assert copy._arrays is None and len(copy.cache) == 0 and copy.cache.max_bytes == 2**16
    assert copy.ids == source.ids and copy.shapes == source.shapes
    for got, want in zip(copy.read(window), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    # Chunk-aligned reads: the window covers rows 0:24 x columns 0:24 of chunks, 3 x 3 per variable.
    assert len(copy.cache) == 2 * 9 and copy.cache.misses == 2 * 9
