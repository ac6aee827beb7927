"""Streaming random patches from a campaign store (or in-memory arrays) for gradient training.

Nothing is loaded whole: a patch is assembled from the zarr chunks under it, each read with an aligned
zarr slice (exactly one chunk) and kept in a bounded per-process LRU cache of decoded chunks
(:class:`ChunkCache`, ``cache_bytes`` per worker, default 256 MiB), so patches that share a chunk decode it
once. Batches come from a torch ``IterableDataset`` and can be produced by persistent background
``DataLoader`` workers (their caches survive across epochs); batch ``b`` of an epoch is drawn from a
generator seeded by ``(seed, epoch, b)``, so an epoch's patches are the same however often it is replayed
and whatever the number of workers (a resumed run sees the same data as an uninterrupted one).

Optionally (``patches_per_window > 1``) patches are drawn in groups that share a small random window, so a
group touches a few chunks instead of a few chunks per patch (see :meth:`PatchStream.windows` for the
sampling distribution).

The split is spatial: ``train_rows`` and ``val_rows`` are fractions of each acquisition's height (default
top half for training, bottom half for validation), so validation pixels never enter training patches.
Validation batches are the whole validation region of one acquisition (exact per-scene metrics).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from bandselect.errors import ConfigError, LabelError, ShapeError, StoreError
from bandselect.names import (
    COORD_WAVELENGTH,
    DIM_BAND,
    DIM_X,
    DIM_Y,
    PORT_CUBE,
    PORT_MASK,
    PORT_WAVELENGTHS,
    VAR_CUBE,
    VAR_MASK,
)
from bandselect.spectral import validate_wavelengths


@dataclass(frozen=True)
class Window:
    """Rows ``y0:y1`` and columns ``x0:x1`` of acquisition number ``source``."""

    source: int
    y0: int
    y1: int
    x0: int
    x1: int


class ArraySource:
    """In-memory acquisitions: a list of ``(H, W, C)`` cubes and optional ``(H, W)`` masks.

    Examples
    --------
    >>> import numpy as np
    >>> source = ArraySource([np.zeros((4, 5, 3), np.float32)], None, wavelengths=[1.0, 2.0, 3.0])
    >>> source.shapes, source.read(Window(0, 0, 2, 1, 3))[0].shape
    ([(4, 5)], (2, 2, 3))
    """

    def __init__(self, cubes: Sequence[Any], masks: Sequence[Any] | None, *, wavelengths: Any) -> None:
        self.cubes = [np.ascontiguousarray(np.asarray(c, dtype=np.float32)) for c in cubes]
        if not self.cubes:
            raise ShapeError(
                "ArraySource cubes", expected="at least one cube", found="none", fix="pass [cube]"
            )
        for cube in self.cubes:
            if cube.ndim != 3:
                raise ShapeError(
                    "ArraySource cube", expected="(H, W, C)", found=cube.shape, fix="put the bands last"
                )
        self.masks = None if masks is None else [np.asarray(m) > 0 for m in masks]
        if self.masks is not None and [m.shape for m in self.masks] != self.shapes:
            raise ShapeError(
                "ArraySource masks",
                expected=f"one (H, W) mask per cube, shapes {self.shapes}",
                found=[m.shape for m in self.masks],
                fix="pass masks of the cubes' spatial shapes",
            )
        self.wavelengths = validate_wavelengths(wavelengths, n_bands=self.cubes[0].shape[-1])

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """``(H, W)`` of each acquisition."""
        return [c.shape[:2] for c in self.cubes]

    @property
    def has_mask(self) -> bool:
        """Whether every acquisition has a mask."""
        return self.masks is not None

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray | None]:
        """The cube ``(h, w, C)`` and mask ``(h, w)`` (or None) of a window."""
        rows, cols = slice(window.y0, window.y1), slice(window.x0, window.x1)
        mask = None if self.masks is None else self.masks[window.source][rows, cols]
        return self.cubes[window.source][rows, cols], mask


DEFAULT_CACHE_BYTES = 256 * 2**20
"""Default bound of a :class:`StoreSource`'s decoded-chunk cache, per process (each worker has its own)."""


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


class StoreSource:
    """Acquisitions of a campaign store, opened lazily (per worker process) and read window by window.

    Parameters
    ----------
    path
        The campaign store.
    ids
        Acquisition ids (default: all, sorted).
    cache_bytes
        Bound of the decoded-chunk cache (:class:`ChunkCache`) of each process reading this source: each
        ``DataLoader`` worker holds up to this much (default :data:`DEFAULT_CACHE_BYTES`, 256 MiB).
        0 disables the cache (each window is one zarr slice).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        ids: Sequence[str] | None = None,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        from bandselect.store import open_campaign

        campaign = open_campaign(path)
        self.path = str(path)
        self.ids = list(campaign.ids() if ids is None else ids)
        if not self.ids:
            raise StoreError(
                f"campaign {path}", expected="at least one acquisition", found="none", fix="ingest data first"
            )
        self._datasets: list[Any] | None = None
        self.cache = ChunkCache(cache_bytes)
        datasets = [campaign.open(i) for i in self.ids]
        for ds in datasets:
            if ds[VAR_CUBE].dims != (DIM_Y, DIM_X, DIM_BAND):
                raise StoreError(
                    f"campaign {path}",
                    expected=f"cube dims {(DIM_Y, DIM_X, DIM_BAND)} (the store layout)",
                    found=ds[VAR_CUBE].dims,
                    fix="stream from a store written by bandselect.store",
                )
        self.shapes = [(ds.sizes[DIM_Y], ds.sizes[DIM_X]) for ds in datasets]
        self.has_mask = all(VAR_MASK in ds for ds in datasets)
        self.wavelengths = validate_wavelengths(datasets[0][COORD_WAVELENGTH].values)
        for acquisition, ds in zip(self.ids, datasets, strict=True):
            if not np.array_equal(ds[COORD_WAVELENGTH].values, self.wavelengths):
                raise StoreError(
                    f"acquisition {acquisition!r}",
                    expected="the wavelengths of the first acquisition",
                    found="a different grid",
                    fix="stream acquisitions of one sensor configuration",
                )

    def __getstate__(self) -> dict[str, Any]:
        # Worker processes reopen the store themselves: never ship open handles across processes, and
        # each starts with its own empty cache (at most cache_bytes per process).
        return {**self.__dict__, "_datasets": None, "cache": ChunkCache(self.cache.max_bytes)}

    def _open(self) -> list[Any]:
        if self._datasets is None:
            import zarr

            # Plain zarr slicing of the layout's (y, x, band) arrays: a patch reads just the chunks under
            # it, with no Dask graph per patch (Dask made 32x32 patches ~6x slower than memory) and no
            # Dask thread pool, which is not safe to inherit in forked DataLoader workers.
            root = zarr.open_group(self.path, mode="r")
            self._datasets = [
                (root[i][VAR_CUBE], root[i][VAR_MASK] if self.has_mask else None) for i in self.ids
            ]
        return self._datasets

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray | None]:
        """Read only the chunks under ``window``: the cube ``(h, w, C)`` and mask ``(h, w)`` (or None)."""
        cube_array, mask_array = self._open()[window.source]
        cube = self._read_array(window, "cube", cube_array).astype(np.float32, copy=False)
        mask = None if mask_array is None else self._read_array(window, "mask", mask_array) > 0
        return cube, mask

    def _read_array(self, window: Window, name: str, array: Any) -> np.ndarray:
        rows, cols = slice(window.y0, window.y1), slice(window.x0, window.x1)
        ch, cw = array.chunks[:2]
        iy0, iy1 = window.y0 // ch, (window.y1 - 1) // ch + 1
        ix0, ix1 = window.x0 // cw, (window.x1 - 1) // cw + 1
        chunk_bytes = ch * cw * int(np.prod(array.chunks[2:], dtype=np.int64)) * array.dtype.itemsize
        if (iy1 - iy0) * (ix1 - ix0) * chunk_bytes > self.cache.max_bytes:
            # A window larger than the cache (a validation region) would only evict every cached chunk
            # to keep its own chunks, which no later patch reuses: read it with one slice.
            return np.asarray(array[rows, cols])
        chunks = {
            (iy, ix): self.cache.lookup((window.source, name, iy, ix))
            for iy in range(iy0, iy1)
            for ix in range(ix0, ix1)
        }
        missing = [index for index, chunk in chunks.items() if chunk is None]
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
                self.cache.put((window.source, name, iy, ix), chunk)
        out = np.empty((window.y1 - window.y0, window.x1 - window.x0, *array.shape[2:]), array.dtype)
        for (iy, ix), chunk in chunks.items():
            assert chunk is not None  # every missing chunk was read above
            y0, x0 = iy * ch, ix * cw
            sy0, sy1 = max(window.y0, y0), min(window.y1, y0 + chunk.shape[0])
            sx0, sx1 = max(window.x0, x0), min(window.x1, x0 + chunk.shape[1])
            out[sy0 - window.y0 : sy1 - window.y0, sx0 - window.x0 : sx1 - window.x0] = chunk[
                sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0
            ]
        return out


def _row_range(height: int, fraction: tuple[float, float]) -> tuple[int, int]:
    return round(height * fraction[0]), round(height * fraction[1])


def _collate(source: ArraySource | StoreSource, windows: Sequence[Window]) -> dict[str, torch.Tensor]:
    cubes, masks = [], []
    for window in windows:
        cube, mask = source.read(window)
        cubes.append(cube)
        masks.append(mask)
    batch = {
        PORT_CUBE: torch.from_numpy(np.stack(cubes)),
        PORT_WAVELENGTHS: torch.from_numpy(source.wavelengths.astype(np.float32)),
    }
    if source.has_mask:
        batch[PORT_MASK] = torch.from_numpy(np.stack(masks)[..., None])
    return batch


def _window_origin(rng: np.random.Generator, lo: int, hi: int, window: int, patch: int) -> tuple[int, int]:
    """A window's range of patch starts ``[first, last]`` along one axis; see :meth:`PatchStream.windows`."""
    # Window origins o run from lo - slack to hi (windows may stick out of the region); origin o holds
    # the w(o) valid starts [max(o, lo), min(o + slack, hi)]. Drawing o with probability w(o) / sum(w)
    # and then a start uniformly among its w(o) makes every start in [lo, hi] equally likely.
    slack = window - patch
    origins = np.arange(lo - slack, hi + 1)
    counts = np.minimum(origins + slack, hi) - np.maximum(origins, lo) + 1
    origin = int(origins[rng.choice(len(origins), p=counts / counts.sum())])
    return max(origin, lo), min(origin + slack, hi)


class PatchStream(IterableDataset):
    """Random training patches as dict batches; an ``IterableDataset`` for ``DataLoader(batch_size=None)``.

    Each batch holds ``batch_size`` patches of ``patch_size`` from one random acquisition, at uniform
    random positions inside the training rows (see :meth:`windows`). Workers split the epoch's
    ``batches_per_epoch`` batches. The epoch lives in shared memory, so persistent workers see
    :attr:`epoch` changes made in the training process.
    """

    def __init__(
        self,
        source: ArraySource | StoreSource,
        *,
        patch_size: tuple[int, int],
        batch_size: int,
        batches_per_epoch: int,
        rows: tuple[float, float],
        seed: int,
        epoch: int = 0,
        patches_per_window: int = 1,
        window_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.patch_size = patch_size
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.rows = rows
        self.seed = seed
        self.patches_per_window = patches_per_window
        self.window_size = window_size or (2 * patch_size[0], 2 * patch_size[1])
        # A shared-memory scalar: a tensor in shared memory stays shared with forked and spawned
        # DataLoader workers, which is how set_epoch reaches persistent workers.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.epoch = epoch
        if any(w < p for w, p in zip(self.window_size, patch_size, strict=True)):
            raise ConfigError(
                "PatchDataModule window_size",
                expected=f"at least the patch size {patch_size}",
                found=repr(self.window_size),
                fix="use window_size=None (twice the patch size)",
            )
        for index, (height, width) in enumerate(source.shapes):
            y0, y1 = _row_range(height, rows)
            if y1 - y0 < patch_size[0] or width < patch_size[1]:
                raise ShapeError(
                    f"acquisition {index}: training region smaller than a patch",
                    expected=f"at least {patch_size} pixels in rows {y0}:{y1}",
                    found=f"{y1 - y0} × {width}",
                    fix="use a smaller patch_size or a larger training region (train_rows)",
                )

    @property
    def epoch(self) -> int:
        """The epoch whose patches are drawn (shared with the workers)."""
        return int(self._epoch.item())

    @epoch.setter
    def epoch(self, value: int) -> None:
        self._epoch.fill_(int(value))

    def windows(self, batch_index: int) -> list[Window]:
        """The patches of batch ``batch_index`` of the current epoch (deterministic).

        With ``patches_per_window == 1`` every patch start is drawn independently and uniformly. With
        ``k = patches_per_window > 1`` the batch is made of groups of ``k`` patches (the last group may
        be smaller); a group draws a random ``window_size`` window, then its ``k`` starts independently
        and uniformly among the starts whose patch lies inside the window and the training region. The
        window is drawn with probability proportional to its number of such starts, so each single
        patch start is still exactly uniform over the region (no bias at chunk or region borders); what
        changes is the joint distribution: patches of one group lie within ``window_size`` of each
        other (they overlap, and share the few zarr chunks under the window), so a batch is less
        diverse than ``batch_size`` independent patches.
        """
        rng = np.random.default_rng([self.seed, self.epoch, batch_index])
        source = int(rng.integers(len(self.source.shapes)))
        height, width = self.source.shapes[source]
        y_lo, y_hi = _row_range(height, self.rows)
        ph, pw = self.patch_size
        if self.patches_per_window == 1:
            ys = rng.integers(y_lo, y_hi - ph + 1, size=self.batch_size)
            xs = rng.integers(0, width - pw + 1, size=self.batch_size)
        else:
            ys_list, xs_list = [], []
            for start in range(0, self.batch_size, self.patches_per_window):
                k = min(self.patches_per_window, self.batch_size - start)
                y_first, y_last = _window_origin(rng, y_lo, y_hi - ph, self.window_size[0], ph)
                x_first, x_last = _window_origin(rng, 0, width - pw, self.window_size[1], pw)
                ys_list.append(rng.integers(y_first, y_last + 1, size=k))
                xs_list.append(rng.integers(x_first, x_last + 1, size=k))
            ys, xs = np.concatenate(ys_list), np.concatenate(xs_list)
        return [Window(source, int(y), int(y) + ph, int(x), int(x) + pw) for y, x in zip(ys, xs, strict=True)]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, n_workers = (0, 1) if info is None else (info.id, info.num_workers)
        # Batch b is drawn from a generator seeded by (seed, epoch, b): the same batches whatever the
        # number of workers; worker w produces batches w, w + n, ...
        for batch_index in range(worker, self.batches_per_epoch, n_workers):
            yield _collate(self.source, self.windows(batch_index))

    def __len__(self) -> int:
        return self.batches_per_epoch


class PatchDataModule:
    """Datamodule streaming random patches for training and whole regions for validation.

    Parameters
    ----------
    source
        An :class:`ArraySource` or :class:`StoreSource` (see :meth:`from_arrays`, :meth:`from_store`).
    patch_size
        ``(h, w)`` (or an int) of the training patches.
    batch_size
        Patches per batch.
    batches_per_epoch
        Training batches per epoch.
    train_rows, val_rows
        Fractions ``(start, stop)`` of each acquisition's height used for training and validation
        (a spatial split; default top half / bottom half). ``val_rows=None``: no validation.
    num_workers
        Background ``DataLoader`` workers (0: read in the training process). They are persistent (kept
        across epochs with their chunk caches) and prefetch ``prefetch_factor`` batches each.
    seed
        Seed of the patch positions (combined with the epoch, see :meth:`set_epoch`).
    patches_per_window, window_size
        Draw the patches of a batch in groups of ``patches_per_window`` sharing a random window of
        ``window_size`` (int or ``(h, w)``; default twice the patch size), so that a group reads the few
        chunks under one window; 1 (default): independent patches. See :meth:`PatchStream.windows`.
    prefetch_factor
        Batches prefetched per worker.

    Examples
    --------
    >>> import numpy as np
    >>> cube = np.random.default_rng(0).random((20, 30, 4), dtype=np.float32)
    >>> dm = PatchDataModule.from_arrays(cube, cube[..., 0] > 0.9, wavelengths=[400, 500, 600, 700],
    ...                                  patch_size=8, batch_size=2, batches_per_epoch=3)
    >>> [tuple(b["cube"].shape) for b in dm.train_dataloader()]
    [(2, 8, 8, 4), (2, 8, 8, 4), (2, 8, 8, 4)]
    >>> [tuple(b["mask"].shape) for b in dm.val_dataloader()]
    [(1, 10, 30, 1)]
    """

    def __init__(
        self,
        source: ArraySource | StoreSource,
        *,
        patch_size: int | tuple[int, int] = 32,
        batch_size: int = 4,
        batches_per_epoch: int = 8,
        train_rows: tuple[float, float] = (0.0, 0.5),
        val_rows: tuple[float, float] | None = (0.5, 1.0),
        num_workers: int = 0,
        seed: int = 0,
        patches_per_window: int = 1,
        window_size: int | tuple[int, int] | None = None,
        prefetch_factor: int = 4,
    ) -> None:
        patch = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
        if len(patch) != 2 or any(isinstance(p, bool) or not isinstance(p, int) or p < 1 for p in patch):
            raise ConfigError(
                "PatchDataModule patch_size",
                expected="a positive int or (h, w)",
                found=repr(patch_size),
                fix="pass e.g. patch_size=32",
            )
        checked = (
            ("batch_size", batch_size),
            ("batches_per_epoch", batches_per_epoch),
            ("patches_per_window", patches_per_window),
            ("prefetch_factor", prefetch_factor),
        )
        for name, value in checked:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"PatchDataModule {name}", expected="int >= 1", found=repr(value), fix="use 1"
                )
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ConfigError(
                "PatchDataModule num_workers", expected="int >= 0", found=repr(num_workers), fix="use 0"
            )
        for name, rows in (("train_rows", train_rows), ("val_rows", val_rows)):
            if rows is not None and not (0.0 <= rows[0] < rows[1] <= 1.0):
                raise ConfigError(
                    f"PatchDataModule {name}",
                    expected="fractions 0 <= start < stop <= 1",
                    found=repr(rows),
                    fix="use (0.0, 0.5) and (0.5, 1.0) for a top/bottom split",
                )
        self.source = source
        self.patch_size: tuple[int, int] = (int(patch[0]), int(patch[1]))
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.train_rows = (float(train_rows[0]), float(train_rows[1]))
        self.val_rows = None if val_rows is None else (float(val_rows[0]), float(val_rows[1]))
        self.num_workers = num_workers
        self.seed = int(seed)
        self.prefetch_factor = prefetch_factor
        self.epoch = 0
        window = (window_size, window_size) if isinstance(window_size, int) else window_size
        self.stream = PatchStream(
            source,
            patch_size=self.patch_size,
            batch_size=batch_size,
            batches_per_epoch=batches_per_epoch,
            rows=self.train_rows,
            seed=self.seed,
            patches_per_window=patches_per_window,
            window_size=None if window is None else (int(window[0]), int(window[1])),
        )
        self._train_loader: DataLoader | None = None

    @classmethod
    def from_arrays(cls, cube: Any, mask: Any = None, *, wavelengths: Any, **options: Any) -> PatchDataModule:
        """Patches from in-memory ``(H, W, C)`` (or ``(B, H, W, C)``) arrays and ``(H, W)`` masks."""
        cubes = np.asarray(cube, dtype=np.float32)
        cubes = cubes[None] if cubes.ndim == 3 else cubes
        masks = None
        if mask is not None:
            labels = np.asarray(mask)
            labels = labels[..., 0] if labels.ndim == cubes.ndim else labels
            masks = list(labels[None] if labels.ndim == 2 else labels)
        return cls(ArraySource(list(cubes), masks, wavelengths=wavelengths), **options)

    @classmethod
    def from_store(
        cls,
        path: str | os.PathLike[str],
        ids: Sequence[str] | None = None,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        **options: Any,
    ) -> PatchDataModule:
        """Patches streamed from the acquisitions ``ids`` (default: all) of the campaign store ``path``.

        ``cache_bytes`` bounds each reading process's decoded-chunk cache (see :class:`StoreSource`).
        """
        return cls(StoreSource(path, ids, cache_bytes=cache_bytes), **options)

    @property
    def wavelengths(self) -> np.ndarray:
        """The bands' wavelengths in nm."""
        return self.source.wavelengths

    def set_epoch(self, epoch: int) -> None:
        """Draw the patches of ``epoch`` next (the gradient trainer calls this at each epoch start)."""
        self.epoch = int(epoch)
        self.stream.epoch = self.epoch

    def train_dataloader(self) -> DataLoader:
        """The current epoch's random training patches (read by ``num_workers`` background workers).

        The same ``DataLoader`` every call: its persistent workers keep their chunk caches and open
        store across epochs, and read the epoch set by :meth:`set_epoch` when a new iteration starts.
        """
        if self._train_loader is None:
            self._train_loader = DataLoader(
                self.stream,
                batch_size=None,
                num_workers=self.num_workers,
                persistent_workers=self.num_workers > 0,
                prefetch_factor=self.prefetch_factor if self.num_workers else None,
            )
        return self._train_loader

    def val_dataloader(self) -> list[dict[str, torch.Tensor]] | None:
        """One batch per acquisition: its whole validation region (None without ``val_rows``)."""
        if self.val_rows is None:
            return None
        if not self.source.has_mask:
            raise LabelError(
                "PatchDataModule validation",
                expected="masks to evaluate metrics against",
                found="acquisitions without a mask",
                fix="pass val_rows=None, or give the data its labels",
            )
        batches = []
        for index, (height, width) in enumerate(self.source.shapes):
            y0, y1 = _row_range(height, self.val_rows)
            if y1 > y0:
                batches.append(_collate(self.source, [Window(index, y0, y1, 0, width)]))
        return batches

    def full_region(self, rows: tuple[float, float], source: int = 0) -> dict[str, torch.Tensor]:
        """The whole region ``rows`` of acquisition ``source`` as one batch (for evaluation)."""
        height, width = self.source.shapes[source]
        y0, y1 = _row_range(height, rows)
        return _collate(self.source, [Window(source, y0, y1, 0, width)])
