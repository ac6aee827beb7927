"""Fixtures for the store tests: ENVI files written with SPy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from spectral.io import envi


@pytest.fixture
def write_envi(tmp_path: Path) -> Callable[..., Path]:
    """``write_envi(cube, name, interleave='bil', ext='.raw', metadata=...)`` -> header path."""

    def write(
        cube: np.ndarray,
        name: str = "scene",
        *,
        interleave: str = "bil",
        ext: str = ".raw",
        metadata: dict[str, object] | None = None,
        directory: Path | None = None,
    ) -> Path:
        header = (directory or tmp_path) / f"{name}.hdr"
        header.parent.mkdir(parents=True, exist_ok=True)
        envi.save_image(
            str(header), cube, interleave=interleave, ext=ext, metadata=metadata or {}, force=True
        )
        return header

    return write
