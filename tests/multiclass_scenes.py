"""A synthetic labelled scene with K classes and a planted band per class pair (helpers for the tests)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

#: Class ids of the scene: any set of ids, none of them 0 (0 marks unlabelled pixels).
CLASS_IDS = (3, 7, 12, 40)
UNLABELLED = 0


@dataclass(frozen=True)
class PlantedScene:
    """``cube`` (H, W, C) float32, ``labels`` (H, W) int64 with 0 = unlabelled, the planted bands."""

    cube: np.ndarray
    labels: np.ndarray
    wavelengths_nm: np.ndarray
    planted: tuple[int, ...]  # one band per class pair, in itertools.combinations order
    pairs: tuple[tuple[int, int], ...]


def planted_pair_scene(
    *,
    class_ids: tuple[int, ...] = CLASS_IDS,
    planted: tuple[int, ...] = (2, 5, 9, 13, 17, 21),
    n_bands: int = 24,
    size: int = 40,
    shift: float = 2.5,
    unlabelled_fraction: float = 0.2,
    seed: int = 0,
) -> PlantedScene:
    """Noise bands; band ``planted[p]`` moves class ``i`` up and class ``j`` down for pair ``p = (i, j)``.

    Each planted band separates its pair by ``2 · shift`` standard deviations and nothing else, so the
    ``len(pairs)`` planted bands are the one subset that separates every pair: the answer a multi-class
    selector must find. A fraction of the pixels is unlabelled (label 0).
    """
    pairs = tuple(itertools.combinations(range(len(class_ids)), 2))
    if len(planted) != len(pairs):
        raise ValueError(f"one planted band per class pair: {len(pairs)} pairs, {len(planted)} bands")
    rng = np.random.default_rng(seed)
    labels = np.asarray(class_ids, np.int64)[rng.integers(0, len(class_ids), size=(size, size))]
    labels[rng.random((size, size)) < unlabelled_fraction] = UNLABELLED
    cube = rng.normal(size=(size, size, n_bands))
    for band, (i, j) in zip(planted, pairs, strict=True):
        cube[labels == class_ids[i], band] += shift
        cube[labels == class_ids[j], band] -= shift
    wavelengths = np.linspace(450.0, 450.0 + 20.0 * (n_bands - 1), n_bands)
    return PlantedScene(cube.astype(np.float32), labels, wavelengths, tuple(planted), pairs)
