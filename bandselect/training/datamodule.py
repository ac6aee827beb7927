"""Datamodules: batches of ``{"cube", "mask", "wavelengths"}`` for the trainers.

Batches are dicts keyed by the names of the pipeline's ``data`` ports: ``cube`` (B, H, W, C) float32,
``mask`` (B, H, W, 1) bool (only when the data has labels), ``wavelengths`` (C,) float32, all torch
tensors. Frames, or patches of frames, of different sizes are never stacked together: a batch holds
items of one size, so acquisitions of different H/W (and the smaller patches at the right and bottom
edges when ``patch_size`` does not divide the frame) give batches of their own. Patches tile each frame
exactly (no overlap, nothing dropped), so statistics over all batches are statistics over all pixels.

``train_dataloader()`` returns a re-iterable :class:`BatchIterable`; with ``shuffle=True`` every
iteration draws a new order from a generator seeded with ``seed`` (reproducible epoch by epoch).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bandselect.errors import (
    ConfigError,
    DTypeError,
    InputError,
    LabelError,
    NonFiniteError,
    ShapeError,
    StoreError,
    WavelengthError,
)
from bandselect.names import (
    ATTR_ACQUISITION_ID,
    COORD_WAVELENGTH,
    DIM_BAND,
    DIM_X,
    DIM_Y,
    PORT_CUBE,
    PORT_MASK,
    PORT_WAVELENGTHS,
    VAR_CUBE,
    VAR_MASK,
    VAR_VALID,
)
from bandselect.spectral import validate_wavelengths


@dataclass(frozen=True)
class _Item:
    """One frame or patch: rows ``y0:y1`` and columns ``x0:x1`` of source frame ``source``."""

    source: int
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0


def _tiles(source: int, height: int, width: int, patch: tuple[int, int] | None) -> list[_Item]:
    if patch is None:
        return [_Item(source, 0, height, 0, width)]
    ph, pw = patch
    return [
        _Item(source, y, min(y + ph, height), x, min(x + pw, width))
        for y in range(0, height, ph)
        for x in range(0, width, pw)
    ]


class BatchIterable:
    """A re-iterable sequence of dict batches; ``len()`` is the number of batches per iteration.

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
        items: Sequence[_Item],
        batch_size: int,
        load: Callable[[Sequence[_Item]], dict[str, torch.Tensor]],
        *,
        shuffle: bool,
        seed: int,
    ) -> None:
        self._items = list(items)
        self._batch_size = batch_size
        self._load = load
        self._shuffle = shuffle
        self._rng = np.random.default_rng(seed)

    def _groups(self) -> list[list[_Item]]:
        groups: dict[tuple[int, int], list[_Item]] = {}
        for item in self._items:
            groups.setdefault(item.shape, []).append(item)
        return list(groups.values())

    def _plan(self) -> list[list[_Item]]:
        # Items of one size, in their original order (or shuffled), cut into batches; groups in order of
        # first appearance (or batches shuffled across groups).
        batches: list[list[_Item]] = []
        for group in self._groups():
            items = [group[i] for i in self._rng.permutation(len(group))] if self._shuffle else group
            batches.extend(items[i : i + self._batch_size] for i in range(0, len(items), self._batch_size))
        if self._shuffle:
            batches = [batches[i] for i in self._rng.permutation(len(batches))]
        return batches

    def __len__(self) -> int:
        return sum(-(-len(group) // self._batch_size) for group in self._groups())

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for batch in self._plan():
            yield self._load(batch)


def _check_batch_size(batch_size: object) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ConfigError(
            "batch_size",
            expected="a positive int",
            found=repr(batch_size),
            fix="pass batch_size=1 or more",
        )
    return int(batch_size)


def _check_patch_size(patch_size: object) -> tuple[int, int] | None:
    if patch_size is None:
        return None
    if isinstance(patch_size, int | np.integer) and not isinstance(patch_size, bool):
        patch_size = (int(patch_size), int(patch_size))
    if (
        isinstance(patch_size, Sequence)
        and len(patch_size) == 2
        and all(isinstance(p, int | np.integer) and not isinstance(p, bool) and p >= 1 for p in patch_size)
    ):
        return int(patch_size[0]), int(patch_size[1])
    raise ConfigError(
        "patch_size",
        expected="None (whole frames), a positive int, or (height, width) positive ints",
        found=repr(patch_size),
        fix="pass e.g. patch_size=(64, 64)",
    )


def _set_batch_options(
    module: Any, batch_size: object, patch_size: object, shuffle: object, seed: object, positive_label: Any
) -> None:
    """Check and set the batching options both data modules share."""
    module.batch_size = _check_batch_size(batch_size)
    module.patch_size = _check_patch_size(patch_size)
    module.shuffle = bool(shuffle)
    module.seed = int(seed)
    module.positive_label = positive_label


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _float_cube(cube: np.ndarray, what: str) -> np.ndarray:
    if cube.dtype == np.bool_ or not np.issubdtype(cube.dtype, np.number) or np.iscomplexobj(cube):
        raise DTypeError(
            what,
            expected="a real numeric dtype (float32 preferred)",
            found=str(cube.dtype),
            fix="convert the cube to float32",
        )
    cube = cube.astype(np.float32, copy=False)
    finite = np.isfinite(cube)
    if not finite.all():
        bad = np.argwhere(~finite)
        raise NonFiniteError(
            what,
            expected="finite values",
            found=f"{len(bad)} NaN/Inf values, the first at index {tuple(int(i) for i in bad[0])}",
            fix="repair or mask the bad pixels before training (e.g. ingest with mask_nonfinite=True and "
            "select clean acquisitions)",
        )
    return cube


def _labels_to_bool(labels: np.ndarray, positive_label: int | None, what: str) -> np.ndarray:
    if labels.dtype == np.bool_:
        if positive_label is not None and positive_label not in (0, 1):
            raise LabelError(
                what,
                expected="integer labels when positive_label is not 0 or 1",
                found=f"a bool mask with positive_label={positive_label}",
                fix="pass positive_label=None for a bool mask",
            )
        return labels if positive_label in (None, 1) else ~labels
    if not np.issubdtype(labels.dtype, np.integer):
        if (
            np.issubdtype(labels.dtype, np.floating)
            and np.all(np.isfinite(labels))
            and np.all(labels == np.round(labels))
        ):
            labels = labels.astype(np.int64)
        else:
            raise DTypeError(
                what,
                expected="bool or integer labels (0 = negative)",
                found=str(labels.dtype),
                fix="pass the label mask as bool or integer class ids",
            )
    return labels > 0 if positive_label is None else labels == positive_label


class ArrayDataModule:
    """Batches over in-memory arrays.

    Parameters
    ----------
    cube
        ``(H, W, C)`` or ``(B, H, W, C)``, NumPy or torch, real numeric (converted to float32), finite.
    mask
        Labels for ``cube``: ``(H, W)``/``(H, W, 1)`` or ``(B, H, W)``/``(B, H, W, 1)``, bool or integer.
        Batches carry ``label > 0`` (or ``label == positive_label``) as a bool mask.
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
    ) -> None:
        _set_batch_options(self, batch_size, patch_size, shuffle, seed, positive_label)
        self.cube, self.mask = self._validate(cube, mask, "cube", "mask")
        n_bands = self.cube.shape[-1]
        self.wavelengths = torch.from_numpy(
            validate_wavelengths(wavelengths, n_bands=n_bands).astype(np.float32)
        )
        if positive_label is not None and self.mask is not None and not self.mask.any():
            raise LabelError(
                "mask",
                expected=f"pixels of class positive_label={positive_label}",
                found="none in the training mask",
                fix="check positive_label against the classes in the mask",
            )
        if val_cube is None and val_mask is not None:
            raise ConfigError(
                "val_mask",
                expected="val_cube as well",
                found="val_mask without val_cube",
                fix="pass val_cube=... with val_mask",
            )
        self.val_cube: np.ndarray | None = None
        self.val_mask: np.ndarray | None = None
        if val_cube is not None:
            self.val_cube, self.val_mask = self._validate(val_cube, val_mask, "val_cube", "val_mask")
            if self.val_cube.shape[-1] != n_bands:
                raise ShapeError(
                    "val_cube",
                    expected=f"{n_bands} bands like cube",
                    found=f"{self.val_cube.shape[-1]} bands",
                    fix="pass validation data of the same sensor bands",
                )

    def _validate(self, cube: Any, mask: Any, cube_name: str, mask_name: str) -> tuple[np.ndarray, Any]:
        array = _to_numpy(cube)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or min(array.shape) < 1:
            raise ShapeError(
                cube_name,
                expected="(H, W, C) or (B, H, W, C) with every size >= 1",
                found=str(tuple(array.shape)),
                fix="put the bands last, e.g. cube.transpose(1, 2, 0) for a (C, H, W) cube",
            )
        array = _float_cube(array, cube_name)
        if mask is None:
            return array, None
        labels = _to_numpy(mask)
        lead = array.shape[:3]
        if (
            labels.ndim >= 1
            and labels.ndim in (3, 4)
            and labels.shape[-1] == 1
            and labels.shape[:-1]
            in (
                lead,
                lead[1:],
            )
        ):
            labels = labels[..., 0]
        if labels.shape == lead[1:] and lead[0] == 1:
            labels = labels[None]
        if labels.shape != lead:
            raise ShapeError(
                mask_name,
                expected=f"{lead} or {(*lead, 1)} matching {cube_name}",
                found=str(tuple(labels.shape)),
                fix=f"pass one label per pixel of {cube_name}",
            )
        return array, _labels_to_bool(labels, self.positive_label, mask_name)

    def _loader(self, cube: np.ndarray, mask: np.ndarray | None, shuffle: bool) -> BatchIterable:
        items = [
            it
            for b in range(cube.shape[0])
            for it in _tiles(b, cube.shape[1], cube.shape[2], self.patch_size)
        ]

        def load(batch: Sequence[_Item]) -> dict[str, torch.Tensor]:
            out = {
                PORT_CUBE: torch.from_numpy(
                    np.stack([cube[i.source, i.y0 : i.y1, i.x0 : i.x1] for i in batch])
                ),
                PORT_WAVELENGTHS: self.wavelengths,
            }
            if mask is not None:
                out[PORT_MASK] = torch.from_numpy(
                    np.stack([mask[i.source, i.y0 : i.y1, i.x0 : i.x1] for i in batch])[..., None]
                )
            return out

        return BatchIterable(items, self.batch_size, load, shuffle=shuffle, seed=self.seed)

    def train_dataloader(self) -> BatchIterable:
        """Training batches (shuffled when ``shuffle=True``)."""
        return self._loader(self.cube, self.mask, self.shuffle)

    @property
    def has_validation(self) -> bool:
        """Whether validation data was given."""
        return self.val_cube is not None

    def val_dataloader(self) -> BatchIterable | None:
        """Validation batches in order, or None when no validation data was given."""
        if self.val_cube is None:
            return None
        return self._loader(self.val_cube, self.val_mask, False)


def _acquisition_label(ds: Any, index: int) -> str:
    return str(ds.attrs.get(ATTR_ACQUISITION_ID, index))


class CampaignDataModule:
    """Batches read lazily from the acquisitions of a campaign store.

    Each acquisition is an xarray Dataset (``cube`` (y, x, band) dask-backed, coordinate ``wavelength``,
    optional ``mask`` (y, x) labels). Only the frames or patches of the current batch are read.

    Parameters
    ----------
    store
        A campaign store path, an opened ``Campaign`` (``ids()``, ``open(id)``), or a sequence of xarray
        Datasets (ids: their ``acquisition_id`` attribute, else their position as a string).
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

    Raises
    ------
    StoreError
        Unknown acquisition ids, or an acquisition without ``cube``.
    WavelengthError
        Acquisitions with different wavelengths.
    LabelError
        Some acquisitions have a mask and others do not (with ``use_mask=None``), or ``use_mask=True``
        and one has none.
    InputError
        An acquisition has pixels flagged invalid (``valid`` False): the pipeline's data source has no
        validity port, so they would enter the statistics; use ``stats.compute_statistics`` (which
        honours ``valid``) and ``initialize_from_statistics``, or select clean acquisitions.

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
    ) -> None:
        _set_batch_options(self, batch_size, patch_size, shuffle, seed, positive_label)
        ids, opener = self._sources(store)
        val_ids = self._check_ids(list(val_acquisitions or []), ids, "val_acquisitions")
        train_ids = (
            [i for i in ids if i not in val_ids]
            if acquisitions is None
            else self._check_ids(list(acquisitions), ids, "acquisitions")
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
        self._datasets = {i: self._prepare(i, opener(i)) for i in [*train_ids, *val_ids]}
        reference_id = train_ids[0]
        reference = self._datasets[reference_id][COORD_WAVELENGTH].values
        for acquisition in [*train_ids, *val_ids]:
            wavelengths = self._datasets[acquisition][COORD_WAVELENGTH].values
            if wavelengths.shape != reference.shape or not np.allclose(
                wavelengths, reference, rtol=0, atol=1e-6
            ):
                raise WavelengthError(
                    f"wavelengths of acquisition {acquisition!r}",
                    expected=f"those of {reference_id!r} ({reference.size} bands)",
                    found=f"{wavelengths.size} bands, {wavelengths[:3].tolist()}...",
                    fix="put acquisitions of one sensor configuration in one datamodule",
                )
        self.wavelengths = torch.from_numpy(validate_wavelengths(reference).astype(np.float32))
        selected = [*train_ids, *val_ids]
        with_mask = [a for a in selected if VAR_MASK in self._datasets[a]]
        if use_mask is None:
            if with_mask and len(with_mask) != len(selected):
                missing = [a for a in selected if a not in with_mask]
                raise LabelError(
                    "acquisition masks",
                    expected="a mask in every selected acquisition or in none",
                    found=f"no mask in {missing}",
                    fix="select labelled acquisitions only, or pass use_mask=False to ignore the masks",
                )
            use_mask = bool(with_mask)
        elif use_mask and len(with_mask) != len(selected):
            missing = [a for a in selected if a not in with_mask]
            raise LabelError(
                "acquisition masks",
                expected="a mask in every selected acquisition (use_mask=True)",
                found=f"no mask in {missing}",
                fix="select labelled acquisitions only",
            )
        self.use_mask = bool(use_mask)

    @staticmethod
    def _sources(store: Any) -> tuple[list[str], Callable[[str], Any]]:
        if isinstance(store, str | os.PathLike):
            from bandselect.store import open_campaign

            store = open_campaign(store)
        if callable(getattr(store, "ids", None)) and callable(getattr(store, "open", None)):
            campaign = store
            return list(campaign.ids()), campaign.open
        if isinstance(store, Sequence) and all(hasattr(ds, "data_vars") for ds in store):
            by_id: dict[str, Any] = {}
            for index, ds in enumerate(store):
                label = _acquisition_label(ds, index)
                if label in by_id:
                    raise StoreError(
                        "datasets",
                        expected="distinct acquisition ids",
                        found=f"{label!r} twice",
                        fix="pass each acquisition once",
                    )
                by_id[label] = ds
            return list(by_id), by_id.__getitem__
        raise ConfigError(
            "CampaignDataModule store",
            expected="a campaign store path, a Campaign, or a list of xarray Datasets",
            found=type(store).__name__,
            fix="pass bandselect.store.open_campaign(path) or its path",
        )

    @staticmethod
    def _check_ids(wanted: list[str], known: list[str], what: str) -> list[str]:
        for acquisition in wanted:
            if acquisition not in known:
                close = difflib.get_close_matches(str(acquisition), known, n=3)
                raise StoreError(
                    f"unknown acquisition {acquisition!r} in {what}",
                    expected=f"ids among {known[:10]}{' ...' if len(known) > 10 else ''}",
                    found=repr(acquisition),
                    fix=(f"did you mean {' or '.join(map(repr, close))}? " if close else "")
                    + "list the ids with campaign.ids()",
                )
        return list(dict.fromkeys(wanted))

    @staticmethod
    def _prepare(acquisition: str, ds: Any) -> Any:
        if VAR_CUBE not in ds or set(ds[VAR_CUBE].dims) != {DIM_Y, DIM_X, DIM_BAND}:
            raise StoreError(
                f"acquisition {acquisition!r}",
                expected=f"a variable {VAR_CUBE!r} with dims ({DIM_Y}, {DIM_X}, {DIM_BAND})",
                found=f"variables {sorted(ds.data_vars)}"
                + (f", cube dims {ds[VAR_CUBE].dims}" if VAR_CUBE in ds else ""),
                fix="open acquisitions written by bandselect.store",
            )
        if COORD_WAVELENGTH not in ds.coords:
            raise WavelengthError(
                f"acquisition {acquisition!r}",
                expected=f"a {COORD_WAVELENGTH!r} coordinate on {DIM_BAND!r}",
                found=f"coordinates {sorted(ds.coords)}",
                fix="ingest the acquisition with its wavelengths",
            )
        if VAR_VALID in ds:
            n_invalid = int((~ds[VAR_VALID].astype(bool)).sum().values)
            if n_invalid:
                raise InputError(
                    f"acquisition {acquisition!r} has pixels flagged invalid ({VAR_VALID!r} False)",
                    expected="only valid pixels (the pipeline's data source has no validity port)",
                    found=f"{n_invalid} invalid pixels",
                    fix="initialise from bandselect.stats.compute_statistics (which honours 'valid') with "
                    "initialize_from_statistics, or leave this acquisition out",
                )
        return ds

    def _loader(self, ids: Sequence[str], shuffle: bool) -> BatchIterable:
        items: list[_Item] = []
        for index, acquisition in enumerate(ids):
            ds = self._datasets[acquisition]
            items.extend(_tiles(index, ds.sizes[DIM_Y], ds.sizes[DIM_X], self.patch_size))

        def load(batch: Sequence[_Item]) -> dict[str, torch.Tensor]:
            cubes, masks = [], []
            for item in batch:
                acquisition = ids[item.source]
                ds = self._datasets[acquisition]
                window = {DIM_Y: slice(item.y0, item.y1), DIM_X: slice(item.x0, item.x1)}
                where = (
                    f"cube of acquisition {acquisition!r} rows {item.y0}:{item.y1} cols {item.x0}:{item.x1}"
                )
                cubes.append(
                    _float_cube(
                        np.asarray(ds[VAR_CUBE].isel(window).transpose(DIM_Y, DIM_X, DIM_BAND).values), where
                    )
                )
                if self.use_mask:
                    labels = np.asarray(ds[VAR_MASK].isel(window).transpose(DIM_Y, DIM_X).values)
                    masks.append(
                        _labels_to_bool(labels, self.positive_label, f"mask of acquisition {acquisition!r}")
                    )
            out = {PORT_CUBE: torch.from_numpy(np.stack(cubes)), PORT_WAVELENGTHS: self.wavelengths}
            if self.use_mask:
                out[PORT_MASK] = torch.from_numpy(np.stack(masks)[..., None])
            return out

        return BatchIterable(items, self.batch_size, load, shuffle=shuffle, seed=self.seed)

    def train_dataloader(self) -> BatchIterable:
        """Training batches (shuffled when ``shuffle=True``)."""
        return self._loader(self.acquisitions, self.shuffle)

    @property
    def has_validation(self) -> bool:
        """Whether validation acquisitions were given."""
        return bool(self.val_acquisitions)

    def val_dataloader(self) -> BatchIterable | None:
        """Validation batches in order, or None without validation acquisitions."""
        if not self.val_acquisitions:
            return None
        return self._loader(self.val_acquisitions, False)
