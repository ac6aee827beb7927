"""PatchDataModule: seeded random patches for gradient training, exact regions for evaluation.

A window source (:mod:`bandselect.store`: a campaign store read by its chunk reader, or in-memory
arrays) and two samplers over it (:mod:`bandselect.training.samplers`): training batches are random
patches (:class:`~bandselect.training.samplers.PatchStream`, batch ``b`` of an epoch drawn from a
generator seeded by ``(seed, epoch, b)``), optionally produced by persistent background ``DataLoader``
workers (their chunk caches survive across epochs); evaluation reads whole regions exactly.

The split is spatial: ``train_rows`` and ``val_rows`` are fractions of each acquisition's height (default
top half for training, bottom half for validation), so validation pixels never enter training patches.
Validation batches are the whole validation region of one acquisition (exact per-scene metrics).
:meth:`PatchDataModule.region` and :meth:`PatchDataModule.region_batches` read any row region exactly
(e.g. the training region for a statistical initialisation).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from bandselect.errors import ConfigError, LabelError
from bandselect.labels import check_ignore_label, check_label_roles, check_positive_label
from bandselect.store import DEFAULT_CACHE_BYTES, ArraySource, StoreSource, Window, WindowSource
from bandselect.training.samplers import (
    Batch,
    PatchStream,
    WindowBatches,
    check_patch_size,
    row_block_windows,
    row_range,
)
from bandselect.validation import check_int


def _check_rows(name: str, rows: tuple[float, float]) -> tuple[float, float]:
    if not (0.0 <= rows[0] < rows[1] <= 1.0):
        raise ConfigError(
            f"PatchDataModule {name}",
            expected="fractions 0 <= start < stop <= 1",
            found=repr(rows),
            fix="use (0.0, 0.5) and (0.5, 1.0) for a top/bottom split",
        )
    return float(rows[0]), float(rows[1])


class PatchDataModule:
    """Datamodule streaming random patches for training and whole regions for validation.

    Parameters
    ----------
    source
        A window source, e.g. an :class:`~bandselect.store.ArraySource` or
        :class:`~bandselect.store.StoreSource` (see :meth:`from_arrays`, :meth:`from_store`).
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
        chunks under one window; 1 (default): independent patches. See
        :meth:`~bandselect.training.samplers.PatchStream.windows`.
    prefetch_factor
        Batches prefetched per worker.
    positive_label
        The class of the label masks that counts as positive (default None: any label > 0).
    ignore_label
        The class whose pixels count nowhere (default None): every batch (patches, validation, regions)
        carries ``valid``, False there, and a ``mask`` False there (see
        :func:`bandselect.labels.batch_labels`).

    Raises
    ------
    ConfigError
        Options out of range.
    ShapeError
        A training region smaller than a patch.
    LabelError
        ``positive_label`` is a class no mask holds; ``ignore_label`` equals it, is the masks' only
        class, or is given without masks.

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
    >>> [tuple(b["cube"].shape) for b in dm.region_batches((0.0, 0.5), block_rows=4)]
    [(1, 4, 30, 4), (1, 4, 30, 4), (1, 2, 30, 4)]
    """

    def __init__(
        self,
        source: WindowSource,
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
        positive_label: int | None = None,
        ignore_label: int | None = None,
    ) -> None:
        owner = "PatchDataModule"
        self.patch_size = check_patch_size(owner, patch_size)
        self.batch_size = check_int(owner, "batch_size", batch_size, minimum=1)
        self.batches_per_epoch = check_int(owner, "batches_per_epoch", batches_per_epoch, minimum=1)
        patches_per_window = check_int(owner, "patches_per_window", patches_per_window, minimum=1)
        self.prefetch_factor = check_int(owner, "prefetch_factor", prefetch_factor, minimum=1)
        self.num_workers = check_int(owner, "num_workers", num_workers, minimum=0)
        self.train_rows = _check_rows("train_rows", train_rows)
        self.val_rows = None if val_rows is None else _check_rows("val_rows", val_rows)
        self.source = source
        self.seed = int(seed)
        self.positive_label, self.ignore_label = check_label_roles(positive_label, ignore_label)
        if (positive_label is not None or ignore_label is not None) and source.has_mask:
            classes = source.classes()
            check_positive_label(classes, positive_label)
            check_ignore_label(classes, ignore_label, positive_label=positive_label)
        self.epoch = 0
        window = (window_size, window_size) if isinstance(window_size, int) else window_size
        self.stream = PatchStream(
            source,
            patch_size=self.patch_size,
            batch_size=self.batch_size,
            batches_per_epoch=self.batches_per_epoch,
            rows=self.train_rows,
            seed=self.seed,
            patches_per_window=patches_per_window,
            window_size=None if window is None else (int(window[0]), int(window[1])),
            positive_label=positive_label,
            ignore_label=ignore_label,
        )
        self._read = self.stream.read_batch
        self._train_loader: DataLoader | None = None

    @classmethod
    def from_arrays(cls, cube: Any, mask: Any = None, *, wavelengths: Any, **options: Any) -> PatchDataModule:
        """Patches from in-memory ``(H, W, C)`` (or ``(B, H, W, C)``) arrays and ``(H, W)`` masks."""
        source = ArraySource.from_arrays(
            cube, mask, wavelengths=wavelengths, ignore_label=options.get("ignore_label")
        )
        return cls(source, **options)

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

        ``cache_bytes`` bounds each reading process's decoded-chunk cache (see
        :class:`~bandselect.store.StoreSource`).
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

    def val_dataloader(self) -> list[Batch] | None:
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
            y0, y1 = row_range(height, self.val_rows)
            if y1 > y0:
                batches.append(self._read([Window(index, y0, y1, 0, width)]))
        return batches

    def region(self, rows: tuple[float, float], source: int = 0) -> Batch:
        """The whole row region ``rows`` (fractions of the height) of acquisition ``source``, one batch."""
        height, width = self.source.shapes[source]
        y0, y1 = row_range(height, rows)
        return self._read([Window(source, y0, y1, 0, width)])

    #: The former name of :meth:`region`, kept for callers (two_phase.py).
    full_region = region

    def region_batches(self, rows: tuple[float, float], block_rows: int) -> WindowBatches:
        """The row region ``rows`` of every acquisition, tiled exactly in full-width blocks of rows.

        One batch per block (``block_rows`` rows; the last block of a region may be shorter), in order
        (acquisition by acquisition, top to bottom), read when accessed: a sequence that holds one block
        in memory at a time. For statistics over a region, e.g. the training rows: ``StatisticalTrainer``
        with a datamodule whose ``train_dataloader()`` returns this.
        """
        block_rows = check_int("PatchDataModule.region_batches", "block_rows", block_rows, minimum=1)
        return WindowBatches(row_block_windows(self.source.shapes, rows, block_rows), self._read)
