"""Rendering of cubes to images: robust contrast stretch, band composites and atomic PNG writes.

Rendering lives here (and in :mod:`bandselect.reports`), never in selection code. Nothing in this
module imports pyplot: PNGs are encoded with :func:`matplotlib.image.imsave`, which needs no GUI
backend and is safe to call from worker threads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import image as mpl_image

from bandselect.atomic import atomic_path
from bandselect.errors import DTypeError, InputError, ShapeError

__all__ = [
    "atomic_path",
    "composite",
    "mask_invalid",
    "save_png",
    "to_uint8_image",
    "to_uint8_rgb",
]


def to_uint8_rgb(rgb: np.ndarray, percentiles: Sequence[float] = (1, 99)) -> np.ndarray:
    """Robust per-channel contrast stretch of a float image to 8-bit RGB.

    Each channel is mapped linearly so that its ``percentiles[0]`` percentile becomes 0 and its
    ``percentiles[1]`` percentile becomes 255, then clipped. Percentiles ignore non-finite values.

    Parameters
    ----------
    rgb
        ``(H, W, 3)`` array of any real dtype.
    percentiles
        ``(low, high)`` with ``0 <= low < high <= 100``.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8. A constant channel (``high`` percentile equal to ``low``) and a channel
        without finite values become 0; non-finite pixels become 0. The output never holds NaN.

    Raises
    ------
    ShapeError
        ``rgb`` is not ``(H, W, 3)``.
    InputError
        Malformed ``percentiles``.
    """
    array = np.asarray(rgb)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ShapeError(
            "rgb image",
            expected="an (H, W, 3) array",
            found=f"shape {array.shape}",
            fix="build it with bandselect.render.composite(cube, indices)",
        )
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise DTypeError(
            "rgb image", expected="a real numeric dtype", found=str(array.dtype), fix="cast to float32"
        )
    bounds = [float(p) for p in percentiles]
    if len(bounds) != 2 or not 0.0 <= bounds[0] < bounds[1] <= 100.0:
        raise InputError(
            "percentiles",
            expected="(low, high) with 0 <= low < high <= 100",
            found=repr(tuple(percentiles)),
            fix="pass e.g. percentiles=(1, 99)",
        )
    values = array.astype(np.float64, copy=False)
    finite = np.isfinite(values)
    out = np.zeros(array.shape, dtype=np.uint8)
    for channel in range(3):
        channel_values = values[..., channel]
        channel_finite = finite[..., channel]
        if not channel_finite.any():
            continue
        low, high = np.percentile(channel_values[channel_finite], bounds)
        if not high > low:  # constant channel: nothing to stretch, render as black
            continue
        scaled = (channel_values - low) / (high - low)
        scaled = np.where(channel_finite, np.clip(scaled, 0.0, 1.0), 0.0)
        out[..., channel] = np.rint(scaled * 255.0).astype(np.uint8)
    return out


def to_uint8_image(rgb: np.ndarray, percentiles: Sequence[float] = (1, 99)) -> np.ndarray:
    """:func:`to_uint8_rgb` of an image whose pixels are all finite; else ``(H, W, 4)`` with an alpha
    channel, 0 on the pixels with a non-finite value (no data, e.g. an acquisition's invalid pixels set
    to NaN by :func:`mask_invalid`): transparent, not black. What a preview PNG or figure shows."""
    rgb8 = to_uint8_rgb(rgb, percentiles)
    finite = np.isfinite(np.asarray(rgb)).all(axis=-1)
    return rgb8 if finite.all() else np.dstack([rgb8, np.where(finite, 255, 0).astype(np.uint8)])


def mask_invalid(rgb: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """``rgb`` ``(H, W, 3)`` as float32 with NaN where ``valid`` ``(H, W)`` is False (None: unchanged),
    so that the contrast stretch leaves no-data pixels out and they render as no data."""
    image = np.asarray(rgb, dtype=np.float32)
    if valid is None:
        return image
    flags = np.asarray(valid, dtype=bool)
    if flags.shape != image.shape[:2]:
        raise ShapeError(
            "valid",
            expected=f"one flag per pixel, shape {image.shape[:2]}",
            found=f"shape {flags.shape}",
            fix="pass the acquisition's valid variable at the image's resolution",
        )
    if flags.all():
        return image
    return np.where(flags[..., None], image, np.float32(np.nan))


def composite(cube: np.ndarray, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """Three bands of a cube as an ``(H, W, 3)`` float image (red, green, blue in ``indices`` order).

    Parameters
    ----------
    cube
        ``(H, W, C)`` array.
    indices
        Three band indices ``(red, green, blue)``, each in ``[0, C)``.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` float32 copy; pass it to :func:`to_uint8_rgb` for display.

    Raises
    ------
    ShapeError
        ``cube`` is not 3-D or ``indices`` does not hold three values.
    InputError
        An index outside ``[0, C)`` or not an integer.
    """
    array = np.asarray(cube)
    if array.ndim != 3:
        raise ShapeError(
            "cube", expected="an (H, W, C) array", found=f"shape {array.shape}", fix="pass one acquisition"
        )
    index_array = np.asarray(indices)
    if index_array.shape != (3,):
        raise ShapeError(
            "composite band indices",
            expected="three indices (red, green, blue)",
            found=f"shape {index_array.shape}",
            fix="pass e.g. indices=(r, g, b) from a selector's selected_indices",
        )
    if not np.issubdtype(index_array.dtype, np.integer):
        raise InputError(
            "composite band indices",
            expected="integers",
            found=f"dtype {index_array.dtype} ({index_array.tolist()})",
            fix="convert wavelengths to indices with bandselect.spectral.nearest_band",
        )
    n_bands = array.shape[2]
    if np.any(index_array < 0) or np.any(index_array >= n_bands):
        raise InputError(
            "composite band indices",
            expected=f"values in [0, {n_bands})",
            found=index_array.tolist(),
            fix="pass indices of bands that exist in the cube",
        )
    return np.ascontiguousarray(array[:, :, index_array], dtype=np.float32)


def save_png(array: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write an 8-bit image as PNG, atomically (temporary file, then :func:`os.replace`).

    Parameters
    ----------
    array
        uint8 ``(H, W)`` (grey), ``(H, W, 3)`` (RGB) or ``(H, W, 4)`` (RGBA). Float images must be
        converted first, e.g. with :func:`to_uint8_rgb`, so the contrast choice is explicit.
    path
        Destination ``.png`` file; parent folders are created.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    DTypeError
        ``array`` is not uint8.
    ShapeError
        ``array`` is not one of the shapes above, or is empty.
    """
    image = np.asarray(array)
    if image.dtype != np.uint8:
        raise DTypeError(
            "PNG image",
            expected="uint8",
            found=str(image.dtype),
            fix="convert with bandselect.render.to_uint8_rgb(rgb) first",
        )
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))) or image.size == 0:
        raise ShapeError(
            "PNG image",
            expected="a non-empty (H, W), (H, W, 3) or (H, W, 4) array",
            found=f"shape {image.shape}",
            fix="pass one grey, RGB or RGBA image",
        )
    with atomic_path(path) as temporary:
        # A grey image goes out as three equal channels: imsave would map 2-D data through a colour
        # map, which is not exact for every value.
        pixels = np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image
        mpl_image.imsave(temporary, pixels, format="png")
    return Path(path)
