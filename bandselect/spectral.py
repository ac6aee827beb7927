"""Wavelength helpers shared by the store, the statistics users and the selectors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bandselect.errors import WavelengthError

DEFAULT_TOLERANCE_NM = 25.0
#: Two wavelength grids are the same grid when every band centre agrees to this (the one grid rule).
GRID_TOLERANCE_NM = 1e-6


def _as_array(wavelengths_nm: object) -> np.ndarray:
    if hasattr(wavelengths_nm, "detach"):  # torch tensor, without importing torch here
        wavelengths_nm = wavelengths_nm.detach().cpu().numpy()  # type: ignore[union-attr]
    return np.asarray(wavelengths_nm, dtype=np.float64)


def sensor_range(wavelengths_nm: object) -> str:
    """Human-readable sensor range, e.g. ``"430.0–910.0 nm (61 bands)"``."""
    wl = _as_array(wavelengths_nm)
    if wl.size == 0:
        return "no bands"
    return f"{wl.min():.1f}–{wl.max():.1f} nm ({wl.size} bands)"


#: What to do about wavelengths out of order, said where the caller cannot name a better remedy.
SORT_BANDS_FIX = "sort the bands by wavelength and drop duplicated bands before use"


def validate_wavelengths(
    wavelengths_nm: object, n_bands: int | None = None, *, order_fix: str = SORT_BANDS_FIX
) -> np.ndarray:
    """Check wavelengths and return them as a float64 array.

    Parameters
    ----------
    wavelengths_nm
        One wavelength per band, in nm.
    n_bands
        When given, the number of bands the wavelengths must describe.
    order_fix
        The error's fix when the values are out of order or repeated (instruments with overlapping
        spectrometers, e.g. AVIRIS, list bands so): callers name the remedy of their own API.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` float64, finite and strictly increasing.

    Raises
    ------
    WavelengthError
        Wrong rank or count, non-finite, non-monotonic or duplicate values.
    """
    wl = _as_array(wavelengths_nm)
    if wl.ndim != 1:
        raise WavelengthError(
            "wavelengths",
            expected="a 1-D array with one wavelength (nm) per band",
            found=f"an array of shape {wl.shape}",
            fix="pass the band-centre wavelengths as a flat list or array",
        )
    if n_bands is not None and wl.size != n_bands:
        raise WavelengthError(
            "wavelengths",
            expected=f"{n_bands} values (one per band)",
            found=f"{wl.size} values",
            fix="pass the wavelengths of exactly the bands in the cube",
        )
    if not np.all(np.isfinite(wl)):
        raise WavelengthError(
            "wavelengths",
            expected="finite values in nm",
            found=f"{int((~np.isfinite(wl)).sum())} NaN/Inf values",
            fix="repair the header or pass wavelengths explicitly",
        )
    steps = np.diff(wl)
    if np.any(steps <= 0):
        first = int(np.argmax(steps <= 0))
        kind = "duplicate" if steps[first] == 0 else "decreasing"
        raise WavelengthError(
            "wavelengths",
            expected="strictly increasing values",
            found=f"{kind} values at bands {first} and {first + 1} ({wl[first]} nm, {wl[first + 1]} nm)",
            fix=order_fix,
        )
    return wl


def nearest_band(wavelengths_nm: object, target_nm: float, tolerance_nm: float = DEFAULT_TOLERANCE_NM) -> int:
    """Index of the band nearest to ``target_nm`` (ties go to the lower index).

    Raises
    ------
    WavelengthError
        When no band lies within ``tolerance_nm`` of the target; the message names the sensor range.
    """
    wl = _as_array(wavelengths_nm)
    if wl.size == 0:
        raise WavelengthError(
            "wavelengths", expected="at least one band", found="none", fix="pass the cube's wavelengths"
        )
    distance = np.abs(wl - float(target_nm))
    index = int(np.argmin(distance))  # argmin returns the first (lowest) index on ties
    if distance[index] > tolerance_nm:
        raise WavelengthError(
            f"target wavelength {float(target_nm):.1f} nm",
            expected=f"a band within {tolerance_nm:g} nm of it",
            found=f"nearest band at {wl[index]:.1f} nm; the sensor covers {sensor_range(wl)}",
            fix="choose a target inside the sensor range or raise tolerance_nm",
        )
    return index


def window_indices(wavelengths_nm: object, window_nm: Sequence[float]) -> np.ndarray:
    """Indices of the bands with ``low <= wavelength <= high``.

    Raises
    ------
    WavelengthError
        A malformed window, or one that holds no band (the message names the sensor range).
    """
    wl = _as_array(wavelengths_nm)
    if len(window_nm) != 2 or not float(window_nm[0]) <= float(window_nm[1]):
        raise WavelengthError(
            "wavelength window",
            expected="a pair (low_nm, high_nm) with low <= high",
            found=repr(tuple(window_nm)),
            fix="write each window as [low, high] in nm",
        )
    low, high = float(window_nm[0]), float(window_nm[1])
    indices = np.flatnonzero((wl >= low) & (wl <= high)).astype(np.int64)
    if indices.size == 0:
        raise WavelengthError(
            f"window {low:g}–{high:g} nm",
            expected="at least one band inside the window",
            found=f"no band; the sensor covers {sensor_range(wl)}",
            fix="move or widen the window to overlap the sensor range",
        )
    return indices


def same_grid(reference_nm: object, wavelengths_nm: object) -> bool:
    """Whether two grids are the same: same band count, centres within :data:`GRID_TOLERANCE_NM`."""
    a, b = _as_array(reference_nm), _as_array(wavelengths_nm)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=0.0, atol=GRID_TOLERANCE_NM))


def check_same_grid(
    reference_nm: object | None,
    wavelengths_nm: object,
    what: str,
    *,
    reference: str,
    fix: str = "all acquisitions of a campaign share one wavelength grid: use another store for this sensor",
) -> None:
    """Raise :class:`WavelengthError` unless both grids are the same (see :func:`same_grid`).

    ``reference_nm=None`` (nothing to compare with yet) passes. ``reference`` names where the reference
    grid comes from, e.g. ``"campaign pavia.zarr"``.
    """
    if reference_nm is None:
        return
    if not same_grid(reference_nm, wavelengths_nm):
        a, b = _as_array(reference_nm), _as_array(wavelengths_nm)
        raise WavelengthError(
            what,
            expected=f"the wavelength grid of {reference}: {sensor_range(a)}",
            found=f"{sensor_range(b)}" + ("" if a.shape != b.shape else " with different band centres"),
            fix=fix,
        )
