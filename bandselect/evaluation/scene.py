"""One labelled scene for a comparison: a cube, its binary positives and wavelengths, from a file or store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bandselect.errors import InputError, LabelError
from bandselect.labels import binary_labels

__all__ = ["LabelledScene", "load_labelled_scene"]


@dataclass(frozen=True)
class LabelledScene:
    """One scene with binary labels: ``cube`` ``(H, W, C)`` float32, ``positive`` ``(H, W)`` bool."""

    cube: np.ndarray
    positive: np.ndarray
    wavelengths_nm: np.ndarray
    name: str


def _binary_positive(labels: np.ndarray, label: int | None, source: str) -> np.ndarray:
    """The one label rule, with the comparison's stricter demands: without a label the mask must already
    be binary (merging several classes silently would compare on a task nobody asked for)."""
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
    path: str | os.PathLike[str], *, acquisition: str | None = None, label: int | None = None
) -> LabelledScene:
    """Read one labelled scene from a ``.npz``/ENVI/``.mat`` file or from a campaign store.

    Parameters
    ----------
    path
        A file readable by :func:`bandselect.store.open_source` (with a ``mask``/``gt`` label array) or a
        campaign store directory.
    acquisition
        Acquisition id in a store; may be omitted when the store holds exactly one.
    label
        Class to detect, against the rest; ``None`` when the labels are already binary.

    Returns
    -------
    LabelledScene
    """
    from bandselect.names import COORD_WAVELENGTH, VAR_CUBE, VAR_MASK
    from bandselect.store import open_campaign, open_source

    source_path = Path(path)
    if source_path.is_dir():
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
        wavelengths = np.asarray(dataset[COORD_WAVELENGTH].values, dtype=np.float64)
        name = f"{source_path.stem}/{acquisition}"
    else:
        source = open_source(source_path)
        if source.mask_dtype is None:
            raise LabelError(
                f"scene {source_path}",
                expected="a label array (mask or gt)",
                found="none",
                fix="use a labelled scene",
            )
        cubes, masks = [], []
        for block_cube, block_mask, block_valid in source.read_blocks(source.shape[0]):
            if block_valid is not None and not np.all(block_valid):
                raise InputError(
                    f"scene {source_path}",
                    expected="finite values everywhere",
                    found="invalid (non-finite) pixels",
                    fix="repair the scene or crop the invalid pixels away before comparing",
                )
            cubes.append(np.asarray(block_cube, dtype=np.float32))
            masks.append(np.asarray(block_mask))
        cube, labels = np.concatenate(cubes), np.concatenate(masks)
        wavelengths = np.asarray(source.wavelengths_nm, dtype=np.float64)
        name = source_path.stem
    positive = _binary_positive(labels, label, str(source_path))
    if label is not None:
        name = f"{name}, class {label} vs rest"
    return LabelledScene(cube=cube, positive=positive, wavelengths_nm=wavelengths, name=name)
