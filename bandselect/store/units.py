"""Wavelength units and plausibility: every reader's band centres end up in nm, or in a clear error.

Units come from the source (ENVI ``wavelength units``, GDAL ``wavelength_units``, an array named
``wavelengths_nm``, the ``wavelengths=`` option, which is always nm) *and* are checked against the values'
magnitudes: after conversion every band centre must lie in :data:`PHYSICAL_RANGE_NM` (200–25,000 nm, the
ultraviolet to the thermal infrared: the range of imaging spectroscopy). Stated units whose values fall
outside it are a conflict (``wavelength units = Micrometers`` with nm-sized values, µm values named
``wavelengths_nm``), reported with the units the values would fit. Without stated units the values decide,
and the two candidate ranges (0.2–25 µm, 200–25,000 nm) do not overlap, so the inference is never a guess
between two plausible readings; it is still recorded as a warning.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from bandselect.errors import WavelengthError

__all__ = ["PHYSICAL_RANGE_NM", "ConvertedWavelengths", "convert_wavelengths", "to_nanometres"]

#: Band centres of imaging spectrometers, in nm: ultraviolet (200) to thermal infrared (25,000).
PHYSICAL_RANGE_NM: tuple[float, float] = (200.0, 25_000.0)

_UNIT_NAMES: dict[str, str] = {
    **dict.fromkeys(("nm", "nanometer", "nanometers", "nanometre", "nanometres"), "nm"),
    **dict.fromkeys(
        ("um", "µm", "μm", "micrometer", "micrometers", "micrometre", "micrometres", "micron", "microns"),
        "um",
    ),
    **dict.fromkeys(("mm", "millimeter", "millimeters", "millimetre", "millimetres"), "mm"),
    **dict.fromkeys(("cm", "centimeter", "centimeters", "centimetre", "centimetres"), "cm"),
    **dict.fromkeys(("m", "meter", "meters", "metre", "metres"), "m"),
    **dict.fromkeys(("a", "å", "angstrom", "angstroms"), "angstrom"),
}
_NM_PER_UNIT = {"nm": 1.0, "um": 1e3, "mm": 1e6, "cm": 1e7, "m": 1e9, "angstrom": 0.1}
_UNIT_LABEL = {"nm": "nm", "um": "µm", "mm": "mm", "cm": "cm", "m": "m", "angstrom": "Å"}
#: ENVI's other "wavelength units": not lengths, so the values are not band centres we can convert.
_NOT_LENGTHS = {
    "index": "band numbers, not wavelengths",
    "wavenumber": "wavenumbers (cm⁻¹), not wavelengths",
    "ghz": "frequencies (GHz), not wavelengths",
    "mhz": "frequencies (MHz), not wavelengths",
}


@dataclass(frozen=True)
class ConvertedWavelengths:
    """Band centres in nm, the units as the source stated (or the values implied) them, and the warning
    to record when the units were inferred."""

    nm: np.ndarray
    stated: str
    note: str | None = None


def _unit_key(units: str | None) -> str | None:
    text = (units or "").strip().lower()
    if text in ("", "unknown", "none"):
        return None
    return _UNIT_NAMES.get(text, text)


def _in_range(values_nm: np.ndarray) -> bool:
    low, high = PHYSICAL_RANGE_NM
    return bool(values_nm.size) and float(values_nm.min()) >= low and float(values_nm.max()) <= high


def _fitting_units(values: np.ndarray) -> list[str]:
    """The units (nm or µm) in which ``values`` lie in the physical range."""
    return [unit for unit in ("nm", "um") if _in_range(values * _NM_PER_UNIT[unit])]


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1e5 else f"{value:,.6g}"


def _span(values: np.ndarray) -> str:
    return f"{_number(float(values.min()))}–{_number(float(values.max()))}"


def _scaled(values: np.ndarray, unit: str) -> np.ndarray:
    if unit == "nm":
        return values
    # Rounded to 1e-6 nm so that 0.43 µm is 430.0 nm and not 430.00000000000006.
    return np.round(values * _NM_PER_UNIT[unit], 6)


def convert_wavelengths(
    values: object, units: str | None, what: str, *, units_from: str
) -> ConvertedWavelengths:
    """Convert band centres to nm and check that they are physical.

    Parameters
    ----------
    values
        The band centres as the source gives them.
    units
        The units the source states (``None``: none stated; the values' magnitude decides).
    what
        What the values are (for messages), e.g. ``"wavelengths of scene.hdr"``.
    units_from
        Where the source states its units, named in the fix (e.g. ``"the header's 'wavelength units'"``).

    Raises
    ------
    WavelengthError
        Negative values, units that are not a length (ENVI ``Index``, ``Wavenumber``, ``GHz``), unknown
        units, values outside 200–25,000 nm after conversion (with the units they would fit), or no units
        and values that fit neither nm nor µm.
    """
    raw = np.asarray(values, dtype=np.float64).ravel()
    key = _unit_key(units)
    if raw.size == 0 or not np.all(np.isfinite(raw)):
        # Empty or NaN/Inf: the grid validation names those problems precisely.
        unit = key if key in _NM_PER_UNIT else "nm"
        return ConvertedWavelengths(_scaled(raw, unit), units or "nm")
    if float(raw.min()) < 0:
        first = int(np.argmax(raw < 0))
        raise WavelengthError(
            what,
            expected="positive band centres",
            found=f"negative values (the first at band {first}: {raw[first]:g})",
            fix="repair the wavelengths in the source, or pass them in nm with --wavelengths",
        )
    if key is None:
        fits = _fitting_units(raw)
        if len(fits) != 1:
            raise WavelengthError(
                what,
                expected=f"band centres in nm ({_span(np.asarray(PHYSICAL_RANGE_NM))}) or µm (0.2–25)",
                found=f"values {_span(raw)} and no units",
                fix=f"state the units ({units_from}) or pass the wavelengths in nm with --wavelengths",
            )
        label = _UNIT_LABEL[fits[0]]
        note = f"{what}: no wavelength units given; values up to {float(raw.max()):g} read as {label}"
        return ConvertedWavelengths(_scaled(raw, fits[0]), f"{fits[0]} (inferred)", note)
    if key in _NOT_LENGTHS:
        raise WavelengthError(
            what,
            expected="wavelengths (nm, µm, ...)",
            found=f"units {units!r}: {_NOT_LENGTHS[key]}",
            fix="pass the band centres in nm with --wavelengths (e.g. from the instrument's calibration)",
        )
    if key not in _NM_PER_UNIT:
        raise WavelengthError(
            f"wavelength units of {what}",
            expected="nanometers or micrometers (or mm, cm, m, Å)",
            found=repr(units),
            fix="convert the wavelengths to nm and pass them with wavelengths= (CLI --wavelengths)",
        )
    nm = _scaled(raw, key)
    if not _in_range(nm):
        fits = [unit for unit in _fitting_units(raw) if unit != key]
        hint = (
            f"the values look like {_UNIT_LABEL[fits[0]]}: correct the units ({units_from})"
            if fits
            else f"repair the values or the units ({units_from})"
        )
        raise WavelengthError(
            what,
            expected=f"band centres within {_span(np.asarray(PHYSICAL_RANGE_NM))} nm after unit conversion "
            "(imaging spectroscopy, UV to thermal infrared)",
            found=f"{_span(nm)} nm (values {_span(raw)} read as {_UNIT_LABEL[key]}, from {units!r})",
            fix=hint,
        )
    return ConvertedWavelengths(nm, str(units))


def to_nanometres(values: np.ndarray, units: str | None, what: str) -> tuple[np.ndarray, str]:
    """Convert wavelengths to nm; return them and the units as the source stated (or inferred) them.

    Inferred units are reported with a :class:`UserWarning`. See :func:`convert_wavelengths`.
    """
    converted = convert_wavelengths(values, units, what, units_from="the source's wavelength units")
    if converted.note is not None:
        warnings.warn(converted.note, UserWarning, stacklevel=2)
    return converted.nm, converted.stated
