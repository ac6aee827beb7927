"""The real cubes in ``../shared/data`` for tests: one loader, skipping with a reason when one is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

#: ``../shared/data`` beside the checkout; ``BANDSELECT_SHARED_DATA`` overrides it.
SHARED_DATA_DIR = Path(
    os.environ.get("BANDSELECT_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)


def load_shared_cube(name: str) -> dict[str, np.ndarray]:
    """The arrays of ``<shared>/<name>/<name>.npz`` (``cube``, ``wavelengths_nm``, ``gt``, ...)."""
    path = SHARED_DATA_DIR / name / f"{name}.npz"
    if not path.is_file():
        pytest.skip(f"real cube {path} is absent (set BANDSELECT_SHARED_DATA or add ../shared)")
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}
