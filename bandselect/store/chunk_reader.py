"""The store's chunk reader: windows of a campaign store read from the zarr chunks under them.

:class:`StoreSource` is the :class:`~bandselect.store.windows.WindowSource` of a campaign store. A window
is assembled from whole chunks, each read with a chunk-aligned zarr slice and kept in a bounded
per-process LRU cache of decoded chunks (:class:`ChunkCache`), so windows that share a chunk decode it
once. The source pickles without open handles (and with an empty cache), so ``DataLoader`` worker
processes reopen the store themselves.

Examples
--------
>>> import pathlib, tempfile
>>> import numpy as np
>>> from bandselect.store import Window
>>> from bandselect.synthetic import write_campaign
>>> folder = tempfile.TemporaryDirectory()
>>> path = pathlib.Path(folder.name) / "campaign"
>>> _ = write_campaign(path, 2, 20, 30, n_bands=5, chunk_yx=(8, 8))
>>> source = StoreSource(path, cache_bytes=2**20)
>>> cube, labels = source.read(Window(1, 4, 12, 6, 10))  # rows 4:12, columns 6:10: 4 chunks of 8 x 8
>>> source.shapes, cube.shape, cube.dtype == np.float32, labels.shape, len(source.cache)
([(20, 30), (20, 30)], (8, 4, 5), True, (8, 4), 8)
>>> folder.cleanup()
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from bandselect import storage
from bandselect.errors import ConfigError, StoreError
from bandselect.names import VAR_CUBE, VAR_MASK, VAR_VALID
from bandselect.spectral import check_same_grid, validate_wavelengths
from bandselect.store.campaign import Campaign, open_campaign
from bandselect.store.integrity import CheckedArray
from bandselect.store.windows import (
    GRID_FIX,
    Window,
    check_acquisition_ids,
    check_window,
    present_classes,
)

#: Default bound of a :class:`StoreSource`'s decoded-chunk cache, per process (each worker has its own).
DEFAULT_CACHE_BYTES = 256 * 2**20


class ChunkCache:
    """A least-recently-used cache of decoded chunks, bounded by the bytes of the arrays it holds.

    Parameters
    ----------
    max_bytes
        Upper bound of the summed ``nbytes`` of the cached arrays (0: cache nothing).

    Examples
    --------
    >>> import numpy as np
    >>> cache = ChunkCache(max_bytes=16)
    >>> cache.lookup("a") is None
    True
    >>> cache.put("a", np.zeros(2))
    >>> cache.lookup("a").shape
    (2,)
    >>> cache.put("b", np.ones(2))  # both would hold 32 bytes > 16: "a" is evicted
    >>> cache.lookup("a") is None, cache.hits, cache.misses, len(cache), cache.nbytes
    (True, 1, 2, 1, 16)
    """

    def __init__(self, max_bytes: int) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ConfigError(
                "cache_bytes", expected="int >= 0", found=repr(max_bytes), fix="use e.g. 256 * 2**20"
            )
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Any, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def hit_rate(self) -> float:
        """Hits over lookups (0 before the first lookup)."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    def lookup(self, key: Any) -> np.ndarray | None:
        """The array cached under ``key`` (now the most recently used), or None; counts a hit or miss."""
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return item

    def put(self, key: Any, item: np.ndarray) -> None:
        """Cache ``item`` under ``key``, evicting the least recently used arrays beyond ``max_bytes``."""
        if item.nbytes > self.max_bytes:
            return
        previous = self._items.pop(key, None)
        if previous is not None:
            self.nbytes -= previous.nbytes
        self._items[key] = item
        self.nbytes += item.nbytes
        while self.nbytes > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self.nbytes -= evicted.nbytes


class _Arrays(NamedTuple):
    """The arrays of one acquisition (the store layout's variables), read through the integrity checks."""

    cube: CheckedArray
    mask: CheckedArray | None
    valid: CheckedArray | None


class StoreSource:
    """Acquisitions of a campaign store, read window by window from the zarr chunks under each window.

    Each window is assembled from whole chunks, each read with a chunk-aligned zarr slice (no Dask graph
    per window: Dask made 32x32 patches ~6x slower than memory, and its thread pool is not safe to
    inherit in forked ``DataLoader`` workers) and kept in a bounded LRU cache of decoded chunks, so
    windows that share a chunk decode it once.

    Parameters
    ----------
    store
        The campaign store: a path, an object-store URL or an opened :class:`~bandselect.store.Campaign`.
    ids
        Acquisition ids (default: all, sorted).
    cache_bytes
        Bound of the decoded-chunk cache (:class:`ChunkCache`) of each process reading this source: each
        ``DataLoader`` worker holds up to this much (default :data:`DEFAULT_CACHE_BYTES`, 256 MiB).
        0 disables the cache (each window is one zarr slice).

    Raises
    ------
    StoreError
        No acquisition, unknown ids, or an acquisition outside the layout.
    WavelengthError
        Acquisitions with different wavelength grids.
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | Campaign,
        ids: Sequence[str] | None = None,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        campaign = store if isinstance(store, Campaign) else open_campaign(store)
        known = campaign.ids()
        self.path = str(campaign.path)
        self.ids = known if ids is None else check_acquisition_ids(list(ids), known, "ids")
        if not self.ids:
            raise StoreError(
                f"campaign {self.path}", expected="at least one acquisition", found="none", fix="ingest data"
            )
        self.cache = ChunkCache(cache_bytes)
        # Every group's layout is checked first (a typed error naming the group, not a zarr traceback);
        # the chunks are then read through the integrity checks (bandselect.store.integrity).
        self._layouts = [campaign.layout(i) for i in self.ids]
        self._arrays: list[_Arrays] | None = [self._open_acquisition(i) for i in range(len(self.ids))]
        self.shapes = [(layout.shape[0], layout.shape[1]) for layout in self._layouts]
        self.labelled = [layout.has_mask for layout in self._layouts]
        self.has_mask = all(self.labelled)
        self.wavelengths = validate_wavelengths(
            self._layouts[0].wavelengths_nm, n_bands=self._layouts[0].shape[2]
        )
        for acquisition, layout in zip(self.ids[1:], self._layouts[1:], strict=True):
            check_same_grid(
                self.wavelengths,
                layout.wavelengths_nm,
                f"wavelengths of acquisition {acquisition!r}",
                reference=f"acquisition {self.ids[0]!r} of campaign {self.path}",
                fix=GRID_FIX,
            )

    def _open_acquisition(self, index: int) -> _Arrays:
        # An acquisition is the child group named by its id (bandselect.store.campaign), in a folder or
        # under an object-store URL (zarr opens both; credentials from the environment).
        layout = self._layouts[index]
        group = storage.join(self.path, layout.acquisition_id)

        def checked(name: str) -> CheckedArray:
            return CheckedArray(
                group,
                name,
                layout.acquisition_id,
                all_chunks_written=layout.all_chunks_written,
                source_file=layout.source_file,
            )

        return _Arrays(
            checked(VAR_CUBE),
            checked(VAR_MASK) if layout.has_mask else None,
            checked(VAR_VALID) if layout.has_valid else None,
        )

    def __getstate__(self) -> dict[str, Any]:
        # Worker processes reopen the store themselves: never ship open handles across processes, and
        # each starts with its own empty cache (at most cache_bytes per process).
        return {**self.__dict__, "_arrays": None, "cache": ChunkCache(self.cache.max_bytes)}

    def _open(self) -> list[_Arrays]:
        if self._arrays is None:
            self._arrays = [self._open_acquisition(i) for i in range(len(self.ids))]
        return self._arrays

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray | None]:
        """Read only the chunks under ``window``: the cube ``(h, w, C)`` and labels ``(h, w)`` (or None)."""
        check_window(window, self.ids, self.shapes)
        arrays = self._open()[window.acquisition]
        cube = self._read_array(window, VAR_CUBE, arrays.cube).astype(np.float32, copy=False)
        labels = None if arrays.mask is None else self._read_array(window, VAR_MASK, arrays.mask)
        return cube, labels

    def _read_array(self, window: Window, name: str, array: CheckedArray) -> np.ndarray:
        rows, cols = slice(window.y0, window.y1), slice(window.x0, window.x1)
        ch, cw = array.chunks[:2]
        iy0, iy1 = window.y0 // ch, (window.y1 - 1) // ch + 1
        ix0, ix1 = window.x0 // cw, (window.x1 - 1) // cw + 1
        chunk_bytes = ch * cw * int(np.prod(array.chunks[2:], dtype=np.int64)) * array.dtype.itemsize
        if (iy1 - iy0) * (ix1 - ix0) * chunk_bytes > self.cache.max_bytes:
            # A window larger than the cache (a validation region) would only evict every cached chunk
            # to keep its own chunks, which no later window reuses: read it with one slice.
            return np.asarray(array[rows, cols])
        chunks: dict[tuple[int, int], np.ndarray] = {}
        missing: list[tuple[int, int]] = []
        for iy in range(iy0, iy1):
            for ix in range(ix0, ix1):
                chunk = self.cache.lookup((window.acquisition, name, iy, ix))
                if chunk is None:
                    missing.append((iy, ix))
                else:
                    chunks[iy, ix] = chunk
        if missing:
            # One chunk-aligned slice over the missing chunks: zarr decodes exactly those chunks (and any
            # cached ones inside their bounding box), concurrently, instead of one call per chunk.
            by0, by1 = min(i for i, _ in missing), max(i for i, _ in missing) + 1
            bx0, bx1 = min(j for _, j in missing), max(j for _, j in missing) + 1
            block = np.asarray(array[by0 * ch : by1 * ch, bx0 * cw : bx1 * cw])
            for iy, ix in missing:
                oy, ox = (iy - by0) * ch, (ix - bx0) * cw
                # A copy, so the cache holds one chunk's bytes and not a view pinning the whole block.
                chunk = block[oy : oy + ch, ox : ox + cw].copy()
                chunks[iy, ix] = chunk
                self.cache.put((window.acquisition, name, iy, ix), chunk)
        out = np.empty((window.y1 - window.y0, window.x1 - window.x0, *array.shape[2:]), array.dtype)
        for (iy, ix), chunk in chunks.items():
            y0, x0 = iy * ch, ix * cw
            sy0, sy1 = max(window.y0, y0), min(window.y1, y0 + chunk.shape[0])
            sx0, sx1 = max(window.x0, x0), min(window.x1, x0 + chunk.shape[1])
            out[sy0 - window.y0 : sy1 - window.y0, sx0 - window.x0 : sx1 - window.x0] = chunk[
                sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0
            ]
        return out

    def classes(self) -> list[int]:
        """The label values present in the masks, read one chunk row at a time."""
        present: set[int] = set()
        for acquisition, arrays in zip(self.ids, self._open(), strict=True):
            if arrays.mask is not None:
                step = arrays.mask.chunks[0]
                for y in range(0, arrays.mask.shape[0], step):
                    block = np.asarray(arrays.mask[y : y + step])
                    present |= present_classes(block, f"mask of acquisition {acquisition!r}")
        return sorted(present)

    def invalid_pixels(self) -> list[int]:
        """Per acquisition, the pixels its ``valid`` array flags False (0 without one)."""
        return [
            0 if a.valid is None else int((~np.asarray(a.valid[:], dtype=np.bool_)).sum())
            for a in self._open()
        ]

    @property
    def flagged(self) -> list[bool]:
        """Per acquisition, whether it has a ``valid`` array (its invalid pixels are stored as 0)."""
        return [layout.has_valid for layout in self._layouts]

    def read_valid(self, window: Window) -> np.ndarray | None:
        """The ``valid`` flags ``(h, w)`` of a window (through the chunk cache), None without them."""
        check_window(window, self.ids, self.shapes)
        arrays = self._open()[window.acquisition]
        if arrays.valid is None:
            return None
        return self._read_array(window, VAR_VALID, arrays.valid).astype(bool, copy=False)
