"""Plain helpers for the store tests (imported by the test modules of this folder)."""

from __future__ import annotations

import numpy as np


def small_cube(
    height: int = 9, width: int = 7, n_bands: int = 5, dtype: str = "uint16", seed: int = 0
) -> np.ndarray:
    """A cube whose every value differs, so any transposition or offset error shows."""
    rng = np.random.default_rng(seed)
    values = rng.permutation(height * width * n_bands).reshape(height, width, n_bands) + 1
    return values.astype(dtype)


def grid(n_bands: int = 5) -> np.ndarray:
    """Evenly spaced wavelengths in nm."""
    return 450.0 + 10.0 * np.arange(n_bands)
