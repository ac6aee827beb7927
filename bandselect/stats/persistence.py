"""The ``.npz`` form of :class:`~bandselect.stats.BandStatistics`: encoded to bytes, decoded and checked.

Bytes rather than files, so the same form is written atomically to a local folder or by one PUT to an
object store (:mod:`bandselect.storage`).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from bandselect.errors import FileFormatError

FORMAT_VERSION = 1

#: Arrays every statistics file holds.
REQUIRED = ("classes", "counts", "class_means", "class_comoments", "class_minimum", "class_maximum")


def encode(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed ``.npz`` of ``arrays`` with the format version."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, format_version=np.asarray(FORMAT_VERSION), **arrays)
    return buffer.getvalue()


def decode(data: bytes, source: str) -> dict[str, Any]:
    """The constructor arguments of the statistics in ``data`` (read from ``source``, for messages).

    Raises
    ------
    FileFormatError
        Not an ``.npz``, another format version, or missing arrays.
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            content = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise FileFormatError(
            f"statistics file {source}",
            expected="a .npz written by BandStatistics.save",
            found=f"{type(exc).__name__}: {exc}",
            fix="recompute the statistics",
        ) from exc
    version = int(content.get("format_version", -1))
    if version != FORMAT_VERSION:
        raise FileFormatError(
            f"statistics file {source}",
            expected=f"format version {FORMAT_VERSION}",
            found=f"version {version}",
            fix="recompute the statistics",
        )
    missing = [key for key in REQUIRED if key not in content]
    if missing:
        raise FileFormatError(
            f"statistics file {source}",
            expected="all statistics arrays",
            found=f"missing {missing}",
            fix="recompute the statistics",
        )
    return {
        **{key: content[key] for key in REQUIRED},
        "hist_edges": content.get("hist_edges"),
        "histograms": content.get("histograms"),
        "n_clipped": content.get("n_clipped"),
        "n_nonfinite": int(content["n_nonfinite"]),
        "n_invalid": int(content["n_invalid"]),
        "laplacian_abs_sum": content.get("laplacian_abs_sum"),
        "laplacian_count": int(content.get("laplacian_count", 0)),
    }
