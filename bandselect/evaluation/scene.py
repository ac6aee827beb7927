"""One labelled scene for a comparison: a cube, its labels and wavelengths, from a file or store.

A binary scene has its positives (one class against the rest, or a binary mask); a multi-class scene
keeps the class ids as they are (any set of them). An ``ignore_label`` marks pixels that count in
nothing (unlabelled ground truth), and so do a store's invalid pixels (its ``valid`` variable) and a
file's no-data pixels; their values are set to 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from bandselect.errors import InputError, LabelError, NonFiniteError
from bandselect.labels import binary_labels, check_classes, check_label_roles, integer_labels

__all__ = ["LabelledScene", "load_labelled_scene"]


@dataclass(frozen=True)
class LabelledScene:
    """One labelled scene: ``cube`` ``(H, W, C)`` float32, ``positive`` ``(H, W)`` bool.

    ``positive`` is the binary task's positives (counted pixels only); ``valid`` ``(H, W)`` bool the
    pixels that count (None: every pixel), False on ``ignore_label`` pixels and pixels without data;
    ``nodata`` ``(H, W)`` bool the pixels without data (a store's invalid pixels, a file's no-data or
    NaN pixels; None: none), 0 in ``cube``. For a multi-class scene (``labels`` not None) ``positive``
    marks the counted pixels and ``labels`` holds the ``(H, W)`` int64 class ids (pixels without data
    relabelled ``ignore_label``; without one given, a label no class uses, the largest class id + 1,
    which becomes the scene's ``ignore_label``).
    """

    cube: np.ndarray
    positive: np.ndarray
    wavelengths_nm: np.ndarray
    name: str
    labels: np.ndarray | None = None
    ignore_label: int | None = None
    valid: np.ndarray | None = None
    nodata: np.ndarray | None = None

    @property
    def multiclass(self) -> bool:
        """Whether the scene keeps its class ids (a multi-class comparison)."""
        return self.labels is not None


def _binary_positive(labels: np.ndarray, label: int | None, source: str) -> np.ndarray:
    """The one label rule, with the comparison's stricter demands: without a label the mask must already
    be binary (merging several classes silently would compare on a task nobody asked for). ``labels``
    are the counted pixels' labels."""
    values = np.unique(labels)
    if label is None:
        if not set(values.tolist()) <= {0, 1}:
            raise LabelError(
                f"labels of {source}",
                expected="a binary mask (0 negative, 1 positive) when no label is given",
                found=f"classes {values.tolist()[:10]}",
                fix="set scene.label to the class to detect (that class against the rest)",
            )
    elif int(label) == 0 or int(label) not in values.tolist():
        raise LabelError(
            f"labels of {source}",
            expected=f"class {label} present (and not the background 0)",
            found=f"classes {values.tolist()[:10]}",
            fix=f"choose scene.label among {[v for v in values.tolist() if v != 0][:10]}",
        )
    return binary_labels(labels, label, what=f"labels of {source}")


def load_labelled_scene(
    path: str | os.PathLike[str],
    *,
    acquisition: str | None = None,
    label: int | None = None,
    multiclass: bool = False,
    ignore_label: int | None = None,
    sort_bands: bool = False,
) -> LabelledScene:
    """Read one labelled scene from a ``.npz``/ENVI/``.mat`` file or from a campaign store.

    Parameters
    ----------
    path
        A file readable by :func:`bandselect.store.open_source` (with a ``mask``/``gt`` label array) or a
        campaign store (a directory or an object-store URL).
    acquisition
        Acquisition id in a store; may be omitted when the store holds exactly one.
    label
        Class to detect, against the rest; ``None`` when the labels are already binary.
    multiclass
        Keep the class ids (no ``label``): a multi-class scene.
    ignore_label
        The label of unlabelled pixels (e.g. 0), left out of every statistic and measure (binary and
        multi-class scenes; for a binary scene it is neither the positive class nor the rest).
    sort_bands
        A file whose bands are out of wavelength order (overlapping spectrometers, e.g. AVIRIS): read
        them sorted (as ``ingest(..., sort_bands=True)`` stores them); a store is sorted already.

    Returns
    -------
    LabelledScene

    Raises
    ------
    LabelError
        Binary: no ``label`` for a multi-class mask, or a class absent. Multi-class: a ``label`` given,
        or fewer than two classes after ignoring.
    NonFiniteError
        NaN/Inf in pixels that count.
    """
    from bandselect import storage
    from bandselect.names import COORD_WAVELENGTH, VAR_CUBE, VAR_MASK, VAR_VALID
    from bandselect.store import open_campaign, open_source

    remote = storage.is_remote(path)  # a campaign store on an object store (scene files are local)
    source_path = storage.location(path)
    if remote or Path(source_path).is_dir():
        campaign = open_campaign(source_path)
        ids = campaign.ids()
        if acquisition is None:
            if len(ids) != 1:
                raise InputError(
                    f"campaign store {source_path}",
                    expected="scene.acquisition naming one acquisition (the store holds several)",
                    found=f"{len(ids)} acquisitions: {ids[:5]}",
                    fix="set scene.acquisition to one of them",
                )
            acquisition = ids[0]
        dataset = campaign.open(acquisition)
        if VAR_MASK not in dataset:
            raise LabelError(
                f"acquisition {acquisition}",
                expected="a label mask",
                found="none",
                fix="ingest a labelled cube",
            )
        cube = np.asarray(dataset[VAR_CUBE].values, dtype=np.float32)
        labels = np.asarray(dataset[VAR_MASK].values)
        flags = np.asarray(dataset[VAR_VALID].values, bool) if VAR_VALID in dataset else None
        wavelengths = np.asarray(dataset[COORD_WAVELENGTH].values, dtype=np.float64)
        name = f"{PurePosixPath(str(source_path)).stem}/{acquisition}"
    else:
        source_path = Path(source_path)
        source = open_source(source_path, sort_bands=sort_bands)
        if source.mask_dtype is None:
            raise LabelError(
                f"scene {source_path}",
                expected="a label array (mask or gt)",
                found="none",
                fix="use a labelled scene",
            )
        cubes, masks, valids = [], [], []
        for block_cube, block_mask, block_valid in source.read_blocks(source.shape[0]):
            cubes.append(np.asarray(block_cube, dtype=np.float32))
            masks.append(np.asarray(block_mask))
            valids.append(np.ones(cubes[-1].shape[:2], bool) if block_valid is None else block_valid)
        cube, labels, flags = np.concatenate(cubes), np.concatenate(masks), np.concatenate(valids)
        wavelengths = np.asarray(source.wavelengths_nm, dtype=np.float64)
        name = source_path.stem
    source = str(source_path)
    _, ignore = check_label_roles(label, ignore_label, what=f"labels of {source}")
    ids = integer_labels(labels, what=f"labels of {source}").astype(np.int64)
    nodata = _no_data(cube, ids, ignore, flags, source)
    if multiclass:
        if nodata is not None:
            if ignore is None:
                # The pixels without data need a label that counts nowhere: one no class uses (the
                # largest class id + 1), which the scene carries as its ignore_label.
                ignore = int(ids[~nodata].max(initial=0)) + 1
            ids = np.where(nodata, ignore, ids)
        return _multiclass_scene(cube, ids, wavelengths, name, label, ignore, source, nodata)
    counted = np.ones(ids.shape, bool) if nodata is None else ~nodata
    if ignore is not None:
        counted &= ids != ignore
    positive = np.zeros(ids.shape, bool)
    positive[counted] = _binary_positive(ids[counted], label, source)
    n_positive = int(positive.sum())
    if n_positive == 0 or n_positive == int(counted.sum()):
        left_out = [] if ignore is None else [f"ignore_label={ignore}"]
        if nodata is not None:
            left_out.append(f"{int(nodata.sum())} pixels without data")
        raise LabelError(
            f"labels of {source}",
            expected="positive and negative pixels among the pixels that count",
            found=f"{n_positive} positive and {int(counted.sum()) - n_positive} negative pixels"
            + (f" after leaving out {' and '.join(left_out)}" if left_out else ""),
            fix="check scene.label and scene.ignore_label (the class to detect, and the label that counts "
            "nowhere)",
        )
    if label is not None:
        name = f"{name}, class {label} vs rest"
    return LabelledScene(
        cube=cube,
        positive=positive,
        wavelengths_nm=wavelengths,
        name=name,
        valid=None if counted.all() else counted,
        nodata=nodata,
    )


def _no_data(
    cube: np.ndarray, ids: np.ndarray, ignore: int | None, flags: np.ndarray | None, source: str
) -> np.ndarray | None:
    """The pixels without data (None: none): flagged invalid, or non-finite in a pixel of the
    ``ignore`` label (a non-finite value elsewhere is a :class:`NonFiniteError`). They are set to 0 in
    ``cube`` (as a store holds them); the ignored pixels that hold data keep it (the previews show it)."""
    nodata = np.zeros(ids.shape, bool) if flags is None else ~np.asarray(flags, bool)
    bad = ~np.isfinite(cube).all(axis=-1) & ~nodata
    if bad.any():
        wrong = bad if ignore is None else bad & (ids != ignore)
        if wrong.any():
            raise NonFiniteError(
                f"scene {source}",
                expected="finite values in every pixel that counts",
                found=f"{int(wrong.sum())} pixels with NaN/Inf outside the ignored and invalid pixels",
                fix="ingest the scene with mask_nonfinite (CLI --mask-nonfinite) and compare the store, "
                "or give those pixels scene.ignore_label",
            )
        nodata |= bad
    if not nodata.any():
        return None
    cube[nodata] = 0.0
    return nodata


def _multiclass_scene(
    cube: np.ndarray,
    ids: np.ndarray,
    wavelengths: np.ndarray,
    name: str,
    label: int | None,
    ignore: int | None,
    source: str,
    nodata: np.ndarray | None,
) -> LabelledScene:
    if label is not None:
        raise LabelError(
            f"labels of {source}",
            expected="no scene.label for a multi-class comparison (every class is compared)",
            found=f"label={label}",
            fix="drop scene.label, or set scene.multiclass to false for one class against the rest",
        )
    counted = np.ones(ids.shape, bool) if ignore is None else ids != ignore
    classes, counts = np.unique(ids[counted], return_counts=True)
    check_classes(classes, counts, ignore_label=ignore, what=f"labels of {source}")
    return LabelledScene(
        cube=cube,
        positive=counted,
        wavelengths_nm=wavelengths,
        name=f"{name}, {classes.size} classes",
        labels=ids,
        ignore_label=ignore,
        nodata=nodata,
    )
