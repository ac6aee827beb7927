"""Datamodules for statistics: every pixel exactly once, as batches of ``{"cube", "mask", "labels",
"wavelengths"}``.

With ``ignore_label``, or over acquisitions with a validity flag (a ``valid`` variable: no-data pixels,
NaN/Inf ingested with ``mask_nonfinite``), the batches also carry ``valid``
(:data:`~bandselect.names.PORT_VALID`), False on the ignored and invalid pixels (their ``mask`` is
False): :class:`~bandselect.training.StatisticalTrainer` leaves them out of every statistic, as
``fit(..., ignore_label=...)`` and ``compute_statistics`` do.

Each is a window source (:mod:`bandselect.store`) tiled exactly by
:func:`~bandselect.training.samplers.tile_windows` and batched by
:class:`~bandselect.training.samplers.BatchIterable`: ``cube`` (B, H, W, C) float32, ``mask``
(B, H, W, 1) bool and ``labels`` (B, H, W, 1) int64, the class ids under the same rule (both only
when the data has labels), ``wavelengths`` (C,) float32, all torch tensors. Frames, or patches
of frames, of different sizes are never stacked together: a batch holds items of one size, so
acquisitions of different H/W (and the smaller patches at the right and bottom edges when ``patch_size``
does not divide the frame) give batches of their own. Patches tile each frame exactly (no overlap,
nothing dropped), so statistics over all batches are statistics over all pixels.

``train_dataloader()`` returns a re-iterable :class:`~bandselect.training.samplers.BatchIterable`; with
``shuffle=True`` every iteration draws a new order from a generator seeded with ``seed`` (reproducible
epoch by epoch).

- :class:`ArrayDataModule`: in-memory arrays (an :class:`~bandselect.store.ArraySource`).
- :class:`CampaignDataModule`: acquisitions of a campaign store (a :class:`~bandselect.store.StoreSource`,
  chunk-aligned reads), or xarray Datasets (a :class:`~bandselect.store.DatasetSource`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

from bandselect.errors import ConfigError, LabelError, ShapeError, StoreError
from bandselect.labels import batch_labels, check_ignore_label, check_label_roles, check_positive_label
from bandselect.store import (
    ArraySource,
    Campaign,
    DatasetSource,
    StoreSource,
    WindowSource,
    check_acquisition_ids,
    dataset_ids,
    open_campaign,
    stack_frames,
)
from bandselect.training.samplers import BatchIterable, BatchReader, check_patch_size, tile_windows
from bandselect.validation import check_int


def _to_numpy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value


class _TilingOptions:
    """The batching options both datamodules share, checked once."""

    def __init__(
        self,
        owner: str,
        batch_size: int,
        patch_size: int | tuple[int, int] | None,
        shuffle: bool,
        seed: int,
        positive_label: int | None,
        ignore_label: int | None = None,
    ) -> None:
        self.batch_size = check_int(owner, "batch_size", batch_size, minimum=1)
        self.patch_size = (
            None if patch_size is None else check_patch_size(owner, patch_size, whole_frames=True)
        )
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.positive_label, self.ignore_label = check_label_roles(
            positive_label, ignore_label, what=f"{owner} labels"
        )

    def _check_labels(self, source: WindowSource, labelled: bool, what: str) -> None:
        """The label roles against the classes of ``source`` (read once), or an ignore_label without masks."""
        if self.ignore_label is not None and not labelled:
            raise LabelError(
                f"{what}: ignore_label",
                expected="label masks (ignore_label names the class left out of every statistic)",
                found=f"ignore_label={self.ignore_label} for data without masks",
                fix="give the data its masks, or drop ignore_label",
            )
        if not labelled or (self.positive_label is None and self.ignore_label is None):
            return
        classes = source.classes()
        check_positive_label(classes, self.positive_label, what=what)
        check_ignore_label(classes, self.ignore_label, positive_label=self.positive_label, what=what)

    def _tiled(
        self, source: WindowSource, acquisitions: Sequence[int], shuffle: bool, with_mask: bool
    ) -> BatchIterable:
        reader = BatchReader(
            source, positive_label=self.positive_label, with_mask=with_mask, ignore_label=self.ignore_label
        )
        windows = tile_windows(source.shapes, self.patch_size, acquisitions)
        return BatchIterable(windows, self.batch_size, reader, shuffle=shuffle, seed=self.seed)


class ArrayDataModule(_TilingOptions):
    """Batches over in-memory arrays.

    Parameters
    ----------
    cube
        ``(H, W, C)`` or ``(B, H, W, C)``, NumPy or torch, real numeric (converted to float32), finite.
    mask
        Labels for ``cube``: ``(H, W)``/``(H, W, 1)`` or ``(B, H, W)``/``(B, H, W, 1)``, bool or integer.
        Batches carry ``label > 0`` (or ``label == positive_label``) as a bool ``mask``, and the class
        ids (``labels``, int64; 0/1 with ``positive_label``) for multi-class statistics.
    wavelengths
        ``(C,)`` band wavelengths in nm (required, keyword).
    batch_size
        Frames (or patches) per batch.
    val_cube, val_mask
        Validation data, validated like ``cube``/``mask``, with the same bands.
    patch_size
        None: whole frames. An int or ``(h, w)``: non-overlapping patches tiling each frame.
    shuffle, seed
        Shuffle the training batches (a new order per iteration, reproducible from ``seed``).
    positive_label
        For integer masks, the class that counts as positive (default: any label > 0).
    ignore_label
        The class whose pixels count nowhere (default None; often 0 "unlabelled" or 255 "no data"):
        batches carry ``valid`` (False there) and a ``mask`` False there. It need not occur, but another
        class must. A bool mask is the classes 0/1: ``ignore_label`` 0 or 1 leaves that class out (one
        class remains: only unsupervised nodes can use it), any other value is an error.

    Attributes
    ----------
    cube, mask
        The training frames ``(B, H, W, C)`` float32 and their positive mask ``(B, H, W)`` bool (or None;
        False on ignored pixels).
    valid
        ``(B, H, W)`` bool, False on the ``ignore_label`` pixels (None without ``ignore_label``).
    train_source, val_source
        The :class:`~bandselect.store.ArraySource` of the training and validation frames (or None).

    Examples
    --------
    >>> import numpy as np
    >>> cube = np.random.default_rng(0).random((2, 6, 6, 4), dtype=np.float32)
    >>> dm = ArrayDataModule(cube, mask=cube[..., 0] > 0.5, wavelengths=[450, 550, 650, 750], batch_size=2)
    >>> batch = next(iter(dm.train_dataloader()))
    >>> tuple(batch["cube"].shape), tuple(batch["mask"].shape), batch["wavelengths"].dtype
    ((2, 6, 6, 4), (2, 6, 6, 1), torch.float32)
    """

    def __init__(
        self,
        cube: Any,
        mask: Any = None,
        *,
        wavelengths: Any,
        batch_size: int = 1,
        val_cube: Any = None,
        val_mask: Any = None,
        patch_size: int | tuple[int, int] | None = None,
        shuffle: bool = False,
        seed: int = 0,
        positive_label: int | None = None,
        ignore_label: int | None = None,
    ) -> None:
        super().__init__(
            "ArrayDataModule", batch_size, patch_size, shuffle, seed, positive_label, ignore_label
        )
        self.cube, labels = stack_frames(_to_numpy(cube), _to_numpy(mask))
        self.train_source = ArraySource(
            list(self.cube),
            None if labels is None else list(labels),
            wavelengths=wavelengths,
            ignore_label=self.ignore_label,
        )
        self.wavelengths = torch.from_numpy(self.train_source.wavelengths.astype(np.float32))
        self.mask, self.valid = (None, None) if labels is None else self._labels(labels)
        self._check_labels(self.train_source, self.train_source.has_mask, "mask")
        if val_cube is None and val_mask is not None:
            raise ConfigError(
                "val_mask",
                expected="val_cube as well",
                found="val_mask without val_cube",
                fix="pass val_cube=... with val_mask",
            )
        self.val_source: ArraySource | None = None
        self.val_cube: np.ndarray | None = None
        self.val_mask: np.ndarray | None = None
        if val_cube is not None:
            self.val_cube, val_labels = stack_frames(
                _to_numpy(val_cube), _to_numpy(val_mask), cube_name="val_cube", mask_name="val_mask"
            )
            n_bands = self.cube.shape[-1]
            if self.val_cube.shape[-1] != n_bands:
                raise ShapeError(
                    "val_cube",
                    expected=f"{n_bands} bands like cube",
                    found=f"{self.val_cube.shape[-1]} bands",
                    fix="pass validation data of the same sensor bands",
                )
            self.val_source = ArraySource(
                list(self.val_cube),
                None if val_labels is None else list(val_labels),
                wavelengths=self.train_source.wavelengths,
                cube_name="val_cube",
                mask_name="val_mask",
                ignore_label=self.ignore_label,
            )
            self.val_mask = None if val_labels is None else self._labels(val_labels, "val_mask")[0]
            if self.ignore_label is not None and val_labels is None:
                self._check_labels(self.val_source, False, "val_mask")

    def _labels(self, labels: np.ndarray, what: str = "mask") -> tuple[np.ndarray, np.ndarray | None]:
        return batch_labels(labels, self.positive_label, self.ignore_label, what=what)

    def train_dataloader(self) -> BatchIterable:
        """Training batches (shuffled when ``shuffle=True``)."""
        source = self.train_source
        return self._tiled(source, range(len(source.shapes)), self.shuffle, source.has_mask)

    @property
    def has_validation(self) -> bool:
        """Whether validation data was given."""
        return self.val_source is not None

    def val_dataloader(self) -> BatchIterable | None:
        """Validation batches in order, or None when no validation data was given."""
        if self.val_source is None:
            return None
        return self._tiled(
            self.val_source, range(len(self.val_source.shapes)), False, self.val_source.has_mask
        )


class CampaignDataModule(_TilingOptions):
    """Batches read lazily from the acquisitions of a campaign store.

    A store (path or :class:`~bandselect.store.Campaign`) is read through the store's chunk reader
    (:class:`~bandselect.store.StoreSource`): only the chunks under the frames or patches of the current
    batch are read. Acquisitions given as xarray Datasets (``cube`` (y, x, band), in memory or
    dask-backed, coordinate ``wavelength``, optional ``mask`` (y, x) labels) are read with ``isel``
    (:class:`~bandselect.store.DatasetSource`).

    Parameters
    ----------
    store
        A campaign store path, an opened ``Campaign``, or a sequence of xarray Datasets (ids: their
        ``acquisition_id`` attribute, else their position as a string).
    acquisitions
        Ids of the training acquisitions (default: every acquisition not in ``val_acquisitions``).
    val_acquisitions
        Ids of the validation acquisitions (default: none).
    batch_size
        Frames (or patches) per batch; acquisitions of different sizes never share a batch.
    patch_size
        None: whole frames. An int or ``(h, w)``: non-overlapping patches tiling each frame.
    shuffle, seed
        Shuffle the training batches (a new order per iteration, reproducible from ``seed``).
    positive_label
        The class that counts as positive in the ``mask`` labels (default: any label > 0).
    use_mask
        Whether batches carry the mask. None: when every selected acquisition has one (a mix is an
        error, since statistics would silently cover only part of the data).
    ignore_label
        The class whose pixels count nowhere (default None): batches carry ``valid``, False there (see
        :class:`ArrayDataModule`). Needs the masks. Acquisitions with a ``valid`` variable give
        batches with ``valid`` in any case, False on their invalid pixels.

    Attributes
    ----------
    source
        The window source over the training then the validation acquisitions.

    Raises
    ------
    StoreError
        Unknown acquisition ids, or an acquisition without ``cube``.
    WavelengthError
        Acquisitions with different wavelengths.
    LabelError
        Some acquisitions have a mask and others do not (with ``use_mask=None``), ``use_mask=True``
        and one has none, ``positive_label`` is a class no mask holds, ``ignore_label`` equals it, is
        the only class of the masks, or is given without masks.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> cube = np.random.default_rng(0).random((6, 8, 3), dtype=np.float32)
    >>> labels = (cube[..., 0] > 0.5).astype(int)
    >>> ds = xr.Dataset({"cube": (("y", "x", "band"), cube), "mask": (("y", "x"), labels)},
    ...                 coords={"wavelength": ("band", [500.0, 600.0, 700.0])}).chunk({"y": 3})
    >>> dm = CampaignDataModule([ds], patch_size=(3, 4), batch_size=4)
    >>> [tuple(b["cube"].shape) for b in dm.train_dataloader()]
    [(4, 3, 4, 3)]
    """

    def __init__(
        self,
        store: Any,
        acquisitions: Sequence[str] | None = None,
        val_acquisitions: Sequence[str] | None = None,
        *,
        batch_size: int = 1,
        patch_size: int | tuple[int, int] | None = None,
        shuffle: bool = False,
        seed: int = 0,
        positive_label: int | None = None,
        use_mask: bool | None = None,
        ignore_label: int | None = None,
    ) -> None:
        super().__init__(
            "CampaignDataModule", batch_size, patch_size, shuffle, seed, positive_label, ignore_label
        )
        known, open_source = self._store(store)
        val_ids = check_acquisition_ids(list(val_acquisitions or []), known, "val_acquisitions")
        train_ids = (
            [i for i in known if i not in val_ids]
            if acquisitions is None
            else check_acquisition_ids(list(acquisitions), known, "acquisitions")
        )
        if not train_ids:
            raise StoreError(
                "training acquisitions",
                expected="at least one acquisition",
                found="none selected",
                fix="pass acquisitions=[...] or a store with acquisitions",
            )
        self.acquisitions = train_ids
        self.val_acquisitions = val_ids
        self.source = open_source([*train_ids, *val_ids])
        self.wavelengths = torch.from_numpy(self.source.wavelengths.astype(np.float32))
        missing = [
            a for a, labelled in zip(self.source.ids, self.source.labelled, strict=True) if not labelled
        ]
        if use_mask is None:
            if missing and len(missing) != len(self.source.ids):
                raise LabelError(
                    "acquisition masks",
                    expected="a mask in every selected acquisition or in none",
                    found=f"no mask in {missing}",
                    fix="select labelled acquisitions only, or pass use_mask=False to ignore the masks",
                )
            use_mask = not missing
        elif use_mask and missing:
            raise LabelError(
                "acquisition masks",
                expected="a mask in every selected acquisition (use_mask=True)",
                found=f"no mask in {missing}",
                fix="select labelled acquisitions only",
            )
        self.use_mask = bool(use_mask)
        self._check_labels(self.source, self.use_mask, "acquisition masks")

    @staticmethod
    def _store(store: Any) -> tuple[list[str], Callable[[list[str]], WindowSource]]:
        """The ids of ``store`` and a function making the window source of some of them."""
        if isinstance(store, str | os.PathLike):
            store = open_campaign(store)
        if isinstance(store, Campaign):
            campaign = store
            return campaign.ids(), lambda ids: StoreSource(campaign, ids)
        if isinstance(store, Sequence) and all(isinstance(ds, xr.Dataset) for ds in store):
            by_id = dict(zip(dataset_ids(store), store, strict=True))
            return list(by_id), lambda ids: DatasetSource([by_id[i] for i in ids], ids)
        raise ConfigError(
            "CampaignDataModule store",
            expected="a campaign store path, a Campaign, or a list of xarray Datasets",
            found=type(store).__name__,
            fix="pass bandselect.store.open_campaign(path) or its path",
        )

    def train_dataloader(self) -> BatchIterable:
        """Training batches (shuffled when ``shuffle=True``)."""
        return self._tiled(self.source, range(len(self.acquisitions)), self.shuffle, self.use_mask)

    @property
    def has_validation(self) -> bool:
        """Whether validation acquisitions were given."""
        return bool(self.val_acquisitions)

    def val_dataloader(self) -> BatchIterable | None:
        """Validation batches in order, or None without validation acquisitions."""
        if not self.val_acquisitions:
            return None
        first = len(self.acquisitions)
        return self._tiled(
            self.source, range(first, first + len(self.val_acquisitions)), False, self.use_mask
        )
