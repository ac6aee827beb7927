"""Spatial contrast as a mergeable statistic: per-band sums of the absolute 5-point Laplacian.

:class:`~bandselect.selectors.HighContrastBandSelector` scores a band by ``variance + alpha · mean
|Laplacian|``. The variance is a moment; the mean absolute Laplacian is ``Σ |∇²x| / count``, where both
sums add over any split of the images, so it merges like every other statistic. The Laplacian of a pixel
needs its four neighbours: images are padded by replicating their edge (as the seed's per-batch score
does), and a chunk of a larger image is given a one-pixel halo of its real neighbours first (see
:func:`bandselect.stats.compute_statistics`), so a chunked image sums to exactly the whole-image value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bandselect.errors import NonFiniteError, ShapeError

__all__ = ["laplacian_abs_sums", "laplacian_abs_sums_interior"]


def _as_images(cube: Any) -> np.ndarray:
    if hasattr(cube, "detach"):  # torch tensor, without importing torch here
        cube = cube.detach().cpu().numpy()
    images = np.asarray(cube)
    if images.ndim < 3:
        raise ShapeError(
            "cube for spatial contrast",
            expected="images (..., H, W, C): at least three dimensions",
            found=f"shape {images.shape}",
            fix="pass whole images or tiles, not a list of pixels",
        )
    if not np.issubdtype(images.dtype, np.number) or images.dtype == np.bool_:
        raise ShapeError(
            "cube for spatial contrast",
            expected="a real numeric cube",
            found=str(images.dtype),
            fix="convert the cube to float32",
        )
    return images.reshape(-1, *images.shape[-3:])


def _as_keep(keep: Any, images: np.ndarray) -> np.ndarray | None:
    if keep is None:
        return None
    if hasattr(keep, "detach"):
        keep = keep.detach().cpu().numpy()
    flags = np.asarray(keep)
    n_pixels = images.shape[0] * images.shape[1] * images.shape[2]
    if flags.ndim < 2 or flags.shape[-2:] != images.shape[1:3] or flags.size != n_pixels:
        raise ShapeError(
            "keep mask for spatial contrast",
            expected=f"one flag per pixel: (..., {images.shape[1]}, {images.shape[2]})",
            found=f"shape {flags.shape}",
            fix="pass the valid mask of the same images (..., H, W)",
        )
    # Any 0/1-like mask, as the statistics' ``valid`` mask is read.
    return flags.reshape(images.shape[:-1]).astype(bool, copy=False)


def laplacian_abs_sums_interior(padded: Any, keep: Any = None) -> tuple[np.ndarray, int]:
    """Sums over the interior pixels of ``(..., H + 2, W + 2, C)`` images whose border is a halo.

    Parameters
    ----------
    padded
        The images with a one-pixel halo.
    keep
        ``(..., H + 2, W + 2)`` bool, halo included: the pixels that count (valid, not ignored). None:
        all. Only kept centres are summed, and a neighbour that is not kept is taken to equal the centre
        (it adds nothing), the rule the replicated image border already follows, so values of pixels
        that do not count (junk, NaN) never reach a sum.

    Returns
    -------
    tuple
        ``(C,)`` float64 sum of ``|∇²x|`` over the kept interior pixels of every image, and their count.
    """
    images = _as_images(padded).astype(np.float64, copy=False)
    if images.shape[1] < 3 or images.shape[2] < 3:
        raise ShapeError(
            "halo-padded images",
            expected="H + 2 >= 3 and W + 2 >= 3",
            found=f"shape {images.shape[1:]}",
            fix="pad each side by one pixel",
        )
    flags = _as_keep(keep, images)
    if flags is not None:
        images = np.where(flags[..., None], images, 0.0)  # values that do not count never enter
    if not np.all(np.isfinite(images)):
        raise NonFiniteError(
            "cube for spatial contrast",
            expected="finite values",
            found="NaN/Inf values",
            fix="mask or repair non-finite pixels before selection",
        )
    centre = images[:, 1:-1, 1:-1]
    # ∇²x = Σ over the four neighbours of (neighbour − centre); a neighbour that does not count adds 0.
    laplacian = np.zeros_like(centre)
    for rows, cols in ((slice(None, -2), slice(1, -1)), (slice(2, None), slice(1, -1)),
                       (slice(1, -1), slice(None, -2)), (slice(1, -1), slice(2, None))):  # fmt: skip
        step = images[:, rows, cols] - centre
        if flags is not None:
            step *= flags[:, rows, cols, None]
        laplacian += step
    if flags is None:
        return np.abs(laplacian).sum(axis=(0, 1, 2)), int(centre.shape[0] * centre.shape[1] * centre.shape[2])
    counted = flags[:, 1:-1, 1:-1]
    total = np.abs(laplacian * counted[..., None]).sum(axis=(0, 1, 2))
    return total, int(np.count_nonzero(counted))


def laplacian_abs_sums(cube: Any, keep: Any = None) -> tuple[np.ndarray, int]:
    """Sums of ``|∇²x|`` per band over whole ``(..., H, W, C)`` images, edges replicated.

    ``keep`` ``(..., H, W)`` bool: the pixels that count (valid, not ignored; None: all), as in
    :func:`laplacian_abs_sums_interior`.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((3, 3, 2)); image[1, 1, 0] = 1.0  # one bright pixel in band 0
    >>> total, count = laplacian_abs_sums(image)
    >>> total.tolist(), count  # |−4| at the pixel, 1 at each of its four neighbours
    ([8.0, 0.0], 9)
    >>> keep = np.ones((3, 3), bool); keep[1, 1] = False  # the bright pixel does not count
    >>> total, count = laplacian_abs_sums(image, keep)
    >>> total.tolist(), count
    ([0.0, 0.0], 8)
    """
    images = _as_images(cube)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    flags = _as_keep(keep, images)
    if flags is not None:
        flags = np.pad(flags, ((0, 0), (1, 1), (1, 1)), mode="edge")
    return laplacian_abs_sums_interior(padded, flags)
