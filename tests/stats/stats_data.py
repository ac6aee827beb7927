"""Data of the statistics tests: real scenes from ../shared/data and planted synthetic data."""

from __future__ import annotations

import numpy as np
from shared_cubes import SHARED_DATA_DIR, load_shared_cube

DATA_DIR = SHARED_DATA_DIR


def load_scene(name: str) -> dict[str, np.ndarray]:
    """Arrays of ``../shared/data/<name>/<name>.npz``; skips the test with a reason when absent."""
    return load_shared_cube(name)


def planted(n: int = 6000, n_bands: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Band 3 informative, band 7 a noisier copy of it, band 9 informative and independent of 3."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    x = rng.normal(size=(n, n_bands))
    x[:, 3] = 2.0 * y + rng.normal(size=n)
    x[:, 7] = x[:, 3] + 0.6 * rng.normal(size=n)
    x[:, 9] = 1.8 * y + rng.normal(size=n)
    return x.astype(np.float32), y


def jointly_separating(n: int = 8000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Bands 2 and 5 useless alone (huge shared variation) but their difference separates the classes.

    Band 8 carries a modest univariate signal, so univariate relevance prefers it.
    """
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5
    x = rng.normal(size=(n, 10))
    shared = 10.0 * rng.normal(size=n)
    shift = np.where(y, 0.5, -0.5)
    x[:, 2] = shared + shift + 0.1 * rng.normal(size=n)
    x[:, 5] = shared - shift + 0.1 * rng.normal(size=n)
    x[:, 8] = 0.6 * y + rng.normal(size=n)
    return x, y
