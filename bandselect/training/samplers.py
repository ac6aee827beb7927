"""Samplers over a window source: exact tiling for statistics, seeded random patches for training.

Both cut acquisitions into :class:`~bandselect.store.Window` s of a
:class:`~bandselect.store.WindowSource` and turn them into the trainers' dict batches with
:class:`BatchReader`, the one place the label rule (:func:`bandselect.labels.binary_labels`) is applied.
Batches are keyed by the pipeline's ``data`` ports: ``cube`` (B, h, w, C) float32, ``mask`` (B, h, w, 1)
bool and ``labels`` (B, h, w, 1) int64, the class ids under the same rule (both when the data has
labels), ``wavelengths`` (C,) float32. With an ``ignore_label``, or from a source
with a validity flag (an acquisition's ``valid`` variable: no-data pixels of its file, NaN/Inf ingested
with ``mask_nonfinite``), they also carry ``valid`` (:data:`~bandselect.names.PORT_VALID`,
(B, h, w, 1) bool): False on the ignored and the invalid pixels, whose ``mask`` is False too; the
trainers leave them out of every statistic (see :func:`bandselect.labels.batch_labels`). Otherwise
batches are exactly the keys above.

- Exact tiling, :func:`tile_windows`: whole frames (``patch_size=None``), or non-overlapping patches
  that tile each frame exactly (the smaller patches at the right and bottom edges included), so
  statistics over all batches are statistics over all pixels: nothing dropped, nothing counted twice.
  :class:`BatchIterable` batches windows of one shape only (frames of different sizes, edge patches),
  in order or in a seeded shuffle (a new order per iteration). :func:`row_block_windows` tiles a row
  region of every acquisition in blocks of rows.
- Seeded random patches, :class:`PatchStream`: batch ``b`` of epoch ``e`` is drawn from a generator
  seeded by ``(seed, e, b)``, so an epoch's patches are the same however often it is replayed and
  whatever the number of ``DataLoader`` workers (a resumed run sees the same data as an uninterrupted
  one); the epoch lives in shared memory, so persistent workers follow :attr:`PatchStream.epoch`.

Examples
--------
>>> import numpy as np
>>> from bandselect.store import ArraySource
>>> source = ArraySource([np.ones((5, 7, 2), np.float32)], wavelengths=[500.0, 600.0])
>>> windows = tile_windows(source.shapes, (2, 3))
>>> len(windows), sum(w.shape[0] * w.shape[1] for w in windows)
(9, 35)
>>> loader = BatchIterable(windows, 4, BatchReader(source), shuffle=False, seed=0)
>>> [tuple(batch["cube"].shape) for batch in loader]
[(4, 2, 3, 2), (2, 2, 1, 2), (2, 1, 3, 2), (1, 1, 1, 2)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import overload

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from bandselect.errors import ConfigError, LabelError, ShapeError
from bandselect.labels import apply_label_rule, batch_labels, check_label_roles
from bandselect.names import PORT_CUBE, PORT_LABELS, PORT_MASK, PORT_VALID, PORT_WAVELENGTHS
from bandselect.store import Window, WindowSource

Batch = dict[str, torch.Tensor]


def row_range(height: int, rows: tuple[float, float]) -> tuple[int, int]:
    """Rows ``y0:y1`` of a frame of ``height`` rows covered by the fractions ``rows = (start, stop)``."""
    return round(height * rows[0]), round(height * rows[1])


def check_patch_size(owner: str, patch_size: object, *, whole_frames: bool = False) -> tuple[int, int]:
    """``(h, w)`` from a positive int or a pair of positive ints.

    ``whole_frames`` says, in the message, that the caller also accepts None (whole frames).

    Raises
    ------
    ConfigError
        Anything else.
    """
    if isinstance(patch_size, int | np.integer) and not isinstance(patch_size, bool):
        patch_size = (int(patch_size), int(patch_size))
    if (
        isinstance(patch_size, Sequence)
        and len(patch_size) == 2
        and all(isinstance(p, int | np.integer) and not isinstance(p, bool) and p >= 1 for p in patch_size)
    ):
        return int(patch_size[0]), int(patch_size[1])
    raise ConfigError(
        f"The 'patch_size' parameter of {owner}",
        expected=("None (whole frames), " if whole_frames else "")
        + "a positive int, or (height, width) positive ints",
        found=repr(patch_size),
        fix="pass e.g. patch_size=(64, 64)",
    )


def tile_windows(
    shapes: Sequence[tuple[int, int]],
    patch_size: tuple[int, int] | None,
    acquisitions: Sequence[int] | None = None,
) -> list[Window]:
    """Windows tiling each frame exactly: the whole frame, or non-overlapping ``patch_size`` patches.

    Parameters
    ----------
    shapes
        ``(H, W)`` of every acquisition of the source.
    patch_size
        None: one window per frame. ``(h, w)``: row-major patches; those at the bottom and right edges
        are smaller when ``h``/``w`` do not divide the frame.
    acquisitions
        Indices of the acquisitions to tile, in this order (default: all).
    """
    windows: list[Window] = []
    for index in range(len(shapes)) if acquisitions is None else acquisitions:
        height, width = shapes[index]
        if patch_size is None:
            windows.append(Window(index, 0, height, 0, width))
            continue
        ph, pw = patch_size
        windows.extend(
            Window(index, y, min(y + ph, height), x, min(x + pw, width))
            for y in range(0, height, ph)
            for x in range(0, width, pw)
        )
    return windows


def row_block_windows(
    shapes: Sequence[tuple[int, int]], rows: tuple[float, float], block_rows: int
) -> list[Window]:
    """Full-width blocks of ``block_rows`` rows tiling the rows ``rows`` (fractions) of every frame."""
    windows: list[Window] = []
    for index, (height, width) in enumerate(shapes):
        y0, y1 = row_range(height, rows)
        windows.extend(Window(index, y, min(y + block_rows, y1), 0, width) for y in range(y0, y1, block_rows))
    return windows


class BatchReader:
    """Reads windows of a source into one dict batch, applying the label rule once per window.

    Parameters
    ----------
    source
        The window source.
    positive_label
        The class that counts as positive (default None: any label > 0); see
        :func:`bandselect.labels.binary_labels`.
    with_mask
        Whether batches carry ``mask`` (default: when every acquisition has labels).
    ignore_label
        The class whose pixels count nowhere (default None): batches then carry ``valid``, False on
        them, and their ``mask`` is False. Needs the masks (``with_mask``).

    Batches also carry ``valid`` when an acquisition of ``source`` has a validity flag
    (``source.flagged``): False on its invalid pixels too, whose ``mask`` is then False.

    Raises
    ------
    LabelError
        ``ignore_label`` equal to ``positive_label`` or without masks; (when called) a window of an
        acquisition without labels while ``with_mask``; a bool mask with a ``positive_label`` or
        ``ignore_label`` other than 0/1.
    """

    def __init__(
        self,
        source: WindowSource,
        *,
        positive_label: int | None = None,
        with_mask: bool | None = None,
        ignore_label: int | None = None,
    ) -> None:
        self.source = source
        self.positive_label, self.ignore_label = check_label_roles(
            positive_label, ignore_label, what="batch labels"
        )
        self.with_mask = source.has_mask if with_mask is None else bool(with_mask)
        self.flagged = list(source.flagged)
        self.with_valid = self.ignore_label is not None or any(self.flagged)
        if self.ignore_label is not None and not self.with_mask:
            raise LabelError(
                "batch labels: ignore_label",
                expected="batches with label masks (ignore_label names a class of them)",
                found=f"ignore_label={self.ignore_label} for batches without masks",
                fix="give the data its masks, or drop ignore_label",
            )
        self.wavelengths = torch.from_numpy(source.wavelengths.astype(np.float32))

    def __call__(self, windows: Sequence[Window]) -> Batch:
        cubes, masks, classes, valids = [], [], [], []
        for window in windows:
            cube, labels = self.source.read(window)
            cubes.append(cube)
            stored = self.source.read_valid(window) if self.flagged[window.acquisition] else None
            valid = None
            if self.with_mask:
                acquisition = self.source.ids[window.acquisition]
                if labels is None:
                    raise LabelError(
                        f"acquisition {acquisition!r}",
                        expected="a label mask (the batches carry masks)",
                        found="none",
                        fix="select labelled acquisitions, or read without masks",
                    )
                mask, valid = batch_labels(
                    labels,
                    self.positive_label,
                    self.ignore_label,
                    what=f"mask of acquisition {acquisition!r}",
                )
                if stored is not None:
                    mask = mask & stored  # an invalid pixel is no positive either
                masks.append(mask)
                # The class ids under the same rule (positive_label: that class against the rest), for
                # the multi-class statistics; ignored and invalid pixels keep theirs, ``valid`` says so.
                ids, _ = apply_label_rule(labels, positive_label=self.positive_label)
                classes.append(ids.astype(np.int64, copy=False))
            if self.with_valid:
                if stored is not None:
                    valid = stored if valid is None else valid & stored
                valids.append(np.ones(window.shape, bool) if valid is None else valid)
        batch = {PORT_CUBE: torch.from_numpy(np.stack(cubes)), PORT_WAVELENGTHS: self.wavelengths}
        if self.with_mask:
            batch[PORT_MASK] = torch.from_numpy(np.stack(masks)[..., None])
            batch[PORT_LABELS] = torch.from_numpy(np.stack(classes)[..., None])
        if self.with_valid:
            batch[PORT_VALID] = torch.from_numpy(np.stack(valids)[..., None])
        return batch


def collate(
    source: WindowSource,
    windows: Sequence[Window],
    *,
    positive_label: int | None = None,
    with_mask: bool | None = None,
    ignore_label: int | None = None,
) -> Batch:
    """Read ``windows`` of ``source`` into one batch (see :class:`BatchReader`)."""
    reader = BatchReader(
        source, positive_label=positive_label, with_mask=with_mask, ignore_label=ignore_label
    )
    return reader(windows)


class BatchIterable:
    """A re-iterable sequence of dict batches; ``len()`` is the number of batches per iteration.

    Windows of one shape are batched together, in their order (groups in order of first appearance),
    or, with ``shuffle``, in a new order per iteration drawn from a generator seeded with ``seed``
    (batches shuffled across groups too).

    Examples
    --------
    >>> import numpy as np
    >>> from bandselect.training import ArrayDataModule
    >>> loader = ArrayDataModule(np.ones((4, 4, 3), np.float32), wavelengths=[1.0, 2.0, 3.0],
    ...                          patch_size=2, batch_size=2).train_dataloader()
    >>> len(loader), [tuple(b["cube"].shape) for b in loader]
    (2, [(2, 2, 2, 3), (2, 2, 2, 3)])
    """

    def __init__(
        self,
        items: Sequence[Window],
        batch_size: int,
        load: Callable[[Sequence[Window]], Batch],
        *,
        shuffle: bool,
        seed: int,
    ) -> None:
        self._items = list(items)
        self._batch_size = batch_size
        self._load = load
        self._shuffle = shuffle
        self._rng = np.random.default_rng(seed)

    def _groups(self) -> list[list[Window]]:
        groups: dict[tuple[int, int], list[Window]] = {}
        for item in self._items:
            groups.setdefault(item.shape, []).append(item)
        return list(groups.values())

    def _plan(self) -> list[list[Window]]:
        batches: list[list[Window]] = []
        for group in self._groups():
            items = [group[i] for i in self._rng.permutation(len(group))] if self._shuffle else group
            batches.extend(items[i : i + self._batch_size] for i in range(0, len(items), self._batch_size))
        if self._shuffle:
            batches = [batches[i] for i in self._rng.permutation(len(batches))]
        return batches

    def __len__(self) -> int:
        return sum(-(-len(group) // self._batch_size) for group in self._groups())

    def __iter__(self) -> Iterator[Batch]:
        for batch in self._plan():
            yield self._load(batch)


class WindowBatches(Sequence[Batch]):
    """One batch per window, in the windows' order, read when accessed: a lazy, re-iterable sequence.

    Examples
    --------
    >>> import numpy as np
    >>> from bandselect.store import ArraySource
    >>> source = ArraySource([np.ones((5, 4, 2), np.float32)], wavelengths=[500.0, 600.0])
    >>> batches = WindowBatches(row_block_windows(source.shapes, (0.0, 1.0), 2), BatchReader(source))
    >>> len(batches), [tuple(b["cube"].shape) for b in batches], tuple(batches[-1]["cube"].shape)
    (3, [(1, 2, 4, 2), (1, 2, 4, 2), (1, 1, 4, 2)], (1, 1, 4, 2))
    """

    def __init__(self, windows: Sequence[Window], load: Callable[[Sequence[Window]], Batch]) -> None:
        self._windows = list(windows)
        self._load = load

    def __len__(self) -> int:
        return len(self._windows)

    @overload
    def __getitem__(self, index: int) -> Batch: ...

    @overload
    def __getitem__(self, index: slice) -> list[Batch]: ...

    def __getitem__(self, index: int | slice) -> Batch | list[Batch]:
        if isinstance(index, slice):
            return [self._load([window]) for window in self._windows[index]]
        return self._load([self._windows[index]])

    def __iter__(self) -> Iterator[Batch]:
        for window in self._windows:
            yield self._load([window])


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
        source: WindowSource,
        *,
        patch_size: tuple[int, int],
        batch_size: int,
        batches_per_epoch: int,
        rows: tuple[float, float],
        seed: int,
        epoch: int = 0,
        patches_per_window: int = 1,
        window_size: tuple[int, int] | None = None,
        positive_label: int | None = None,
        ignore_label: int | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.read_batch = BatchReader(source, positive_label=positive_label, ignore_label=ignore_label)
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
        for acquisition, (height, width) in zip(source.ids, source.shapes, strict=True):
            y0, y1 = row_range(height, rows)
            if y1 - y0 < patch_size[0] or width < patch_size[1]:
                raise ShapeError(
                    f"acquisition {acquisition!r}: training region smaller than a patch",
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
        acquisition = int(rng.integers(len(self.source.shapes)))
        height, width = self.source.shapes[acquisition]
        y_lo, y_hi = row_range(height, self.rows)
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
        return [
            Window(acquisition, int(y), int(y) + ph, int(x), int(x) + pw) for y, x in zip(ys, xs, strict=True)
        ]

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        worker, n_workers = (0, 1) if info is None else (info.id, info.num_workers)
        # Batch b is drawn from a generator seeded by (seed, epoch, b): the same batches whatever the
        # number of workers; worker w produces batches w, w + n, ...
        for batch_index in range(worker, self.batches_per_epoch, n_workers):
            yield self.read_batch(self.windows(batch_index))

    def __len__(self) -> int:
        return self.batches_per_epoch
