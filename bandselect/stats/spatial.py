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


def laplacian_abs_sums_interior(padded: Any) -> tuple[np.ndarray, int]:
    """Sums over the interior pixels of ``(..., H + 2, W + 2, C)`` images whose border is a halo.

    Returns
    -------
    tuple
        ``(C,)`` float64 sum of ``|∇²x|`` over the ``H × W`` interior pixels of every image, and that pixel
        count.
    """
    images = _as_images(padded).astype(np.float64, copy=False)
    if images.shape[1] < 3 or images.shape[2] < 3:
        raise ShapeError(
            "halo-padded images",
            expected="H + 2 >= 3 and W + 2 >= 3",
            found=f"shape {images.shape[1:]}",
            fix="pad each side by one pixel",
        )
    if not np.all(np.isfinite(images)):
        raise NonFiniteError(
            "cube for spatial contrast",
            expected="finite values",
            found="NaN/Inf values",
            fix="mask or repair non-finite pixels before selection",
        )
    centre = images[:, 1:-1, 1:-1]
    laplacian = images[:, :-2, 1:-1] + images[:, 2:, 1:-1] + images[:, 1:-1, :-2] + images[:, 1:-1, 2:]
    laplacian -= 4.0 * centre
    return np.abs(laplacian).sum(axis=(0, 1, 2)), int(centre.shape[0] * centre.shape[1] * centre.shape[2])


def laplacian_abs_sums(cube: Any) -> tuple[np.ndarray, int]:
    """Sums of ``|∇²x|`` per band over whole ``(..., H, W, C)`` images, edges replicated.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((3, 3, 2)); image[1, 1, 0] = 1.0  # one bright pixel in band 0
    >>> total, count = laplacian_abs_sums(image)
    >>> total.tolist(), count  # |−4| at the pixel, 1 at each of its four neighbours
    ([8.0, 0.0], 9)
    """
    images = _as_images(cube)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    return laplacian_abs_sums_interior(padded)
