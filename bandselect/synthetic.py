"""Synthetic VNIR campaigns with a planted answer.

A scene mixes smooth material spectra (vegetation with its red edge near 715 nm, soil, water, asphalt,
an orange paint) with spatially smooth, patchy abundances; a smooth illumination field and a per-scene
gain and spectral tilt stand for sun and cloud changes; sensor noise grows with the signal. Anomalies are
small disks whose spectrum equals the local background *except in a few known bands*, where it is
attenuated: those bands (``discriminative_bands``) are the ground truth a band selector should find.

Everything is a function of absolute pixel coordinates and the seed (the noise has one generator per
row), so any block of rows is generated on its own and blocks of any size concatenate to the same scene:
:func:`write_campaign` writes multi-GB campaigns block by block, never holding a cube in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from bandselect.errors import ConfigError
from bandselect.names import (
    ATTR_ACQUISITION_TIME,
    ATTR_DISCRIMINATIVE_BANDS,
    ATTR_SENSOR,
    ATTR_SOURCE_FILE,
    ATTR_SOURCE_FORMAT,
    ATTR_SOURCE_SHA256,
)
from bandselect.spectral import nearest_band
from bandselect.store.campaign import Campaign, open_campaign
from bandselect.store.layout import DEFAULT_CHUNK_YX, AcquisitionSource, Block, make_acquisition

DEFAULT_N_BANDS = 61
DEFAULT_RANGE_NM = (430.0, 910.0)
#: Bands (nearest to these wavelengths) in which anomalies differ from the background by default.
DEFAULT_ANOMALY_CENTRES_NM = (550.0, 558.0, 782.0, 790.0)
MATERIALS = ("vegetation", "soil", "water", "asphalt", "paint")
SENSOR_NAME = "synthetic VNIR snapshot camera (bandselect.synthetic)"
# Abundance-field biases: vegetation and soil dominate, paint is rare (small painted patches).
_MATERIAL_BIAS = np.array([0.55, 0.35, -0.25, -0.15, -0.9])
_WAVES_PER_FIELD = 8
_ABUNDANCE_SHARPNESS = 4.0
_EPOCH = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def vnir_wavelengths(
    n_bands: int = DEFAULT_N_BANDS, range_nm: tuple[float, float] = DEFAULT_RANGE_NM
) -> np.ndarray:
    """Evenly spaced band centres in nm (default: 61 bands, 430–910 nm every 8 nm)."""
    if n_bands < 2 or not range_nm[0] < range_nm[1]:
        raise ConfigError(
            "synthetic band grid",
            expected="n_bands >= 2 and low < high",
            found=f"n_bands={n_bands}, range_nm={range_nm}",
            fix="pass e.g. n_bands=61",
        )
    return np.linspace(float(range_nm[0]), float(range_nm[1]), int(n_bands))


def material_spectra(wavelengths_nm: np.ndarray) -> np.ndarray:
    """Reflectance ``(len(MATERIALS), C)`` of the materials, smooth in wavelength, in 0..1."""
    wl = np.asarray(wavelengths_nm, dtype=np.float64)

    def bump(centre: float, width: float) -> np.ndarray:
        return np.exp(-0.5 * ((wl - centre) / width) ** 2)

    def rise(centre: float, width: float) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(wl - centre) / width))

    vegetation = 0.03 + 0.07 * bump(550, 30) - 0.02 * bump(675, 18) + 0.44 * rise(718, 11)
    soil = 0.07 + 0.23 * np.clip((wl - 400) / 600, 0, None) ** 0.8 - 0.02 * bump(480, 40)
    water = 0.005 + 0.055 * np.exp(-(wl - 430) / 110) + 0.008 * bump(560, 30)
    asphalt = 0.07 + 0.04 * (wl - 400) / 600
    paint = 0.06 + 0.40 * rise(595, 14) - 0.05 * rise(850, 30)
    return np.clip(np.stack([vegetation, soil, water, asphalt, paint]), 0.002, 1.0)


def solar_shape(wavelengths_nm: np.ndarray) -> np.ndarray:
    """Relative spectral irradiance (black body at 5778 K, peak 1), the illumination's spectral shape."""
    wl_m = np.asarray(wavelengths_nm, dtype=np.float64) * 1e-9
    planck = 1.0 / (wl_m**5 * (np.exp(0.0143877735 / (wl_m * 5778.0)) - 1.0))
    return planck / planck.max()


def _seed_key(seed: int | Sequence[int]) -> tuple[int, ...]:
    key = (seed,) if isinstance(seed, int | np.integer) else tuple(seed)
    if not key or not all(isinstance(k, int | np.integer) and k >= 0 for k in key):
        raise ConfigError(
            "seed",
            expected="a non-negative int or a sequence of them",
            found=repr(seed),
            fix="pass e.g. seed=0",
        )
    return tuple(int(k) for k in key)


@dataclass(frozen=True)
class SyntheticScene:
    """A generated scene with its ground truth.

    Attributes
    ----------
    cube
        ``(H, W, C)`` float32 at-sensor signal.
    wavelengths_nm
        ``(C,)`` band centres.
    mask
        ``(H, W)`` bool, True on planted anomalies.
    discriminative_bands
        ``(k,)`` int64 band indices in which anomalies differ from the background (and only those).
    attrs
        Provenance attributes used when the scene is stored.
    """

    cube: np.ndarray
    wavelengths_nm: np.ndarray
    mask: np.ndarray
    discriminative_bands: np.ndarray
    attrs: dict[str, str | int | float | list[int]] = field(default_factory=dict)

    def to_dataset(self) -> xr.Dataset:
        """The scene as an acquisition Dataset in the store layout (mask as int labels 0/1)."""
        return make_acquisition(self.cube, self.wavelengths_nm, self.mask.astype(np.uint8), attrs=self.attrs)


class SceneGenerator:
    """Deterministic generator of one synthetic scene, any block of rows at a time.

    Parameters
    ----------
    height, width
        Scene size in pixels.
    n_bands, range_nm
        The band grid (evenly spaced).
    seed
        Int or sequence of ints; the same seed gives the same scene.
    anomaly_fraction
        Approximate fraction of pixels covered by anomalies (small disks of 5 or 13 pixels).
    anomaly_bands
        Band indices in which anomalies differ; default the bands nearest to 550, 558, 782 and 790 nm.
    anomaly_strength
        Relative attenuation of the anomaly bands (0.3: the anomaly reflects 30 % less there).
    noise_level
        Noise standard deviation relative to a unit signal (shot-like: it grows with the signal).
    texture_scale_px
        Typical size in pixels of the material patches.
    """

    def __init__(
        self,
        height: int,
        width: int,
        *,
        n_bands: int = DEFAULT_N_BANDS,
        range_nm: tuple[float, float] = DEFAULT_RANGE_NM,
        seed: int | Sequence[int] = 0,
        anomaly_fraction: float = 0.005,
        anomaly_bands: Sequence[int] | None = None,
        anomaly_strength: float = 0.3,
        noise_level: float = 0.01,
        texture_scale_px: float = 40.0,
    ) -> None:
        if int(height) < 1 or int(width) < 1:
            raise ConfigError(
                "scene size",
                expected="height >= 1 and width >= 1",
                found=f"{height}×{width}",
                fix="pass a positive height and width",
            )
        if not 0.0 <= anomaly_fraction < 0.5:
            raise ConfigError(
                "anomaly_fraction",
                expected="0 <= anomaly_fraction < 0.5",
                found=repr(anomaly_fraction),
                fix="pass e.g. anomaly_fraction=0.005",
            )
        if not 0.0 <= anomaly_strength < 1.0 or noise_level < 0.0 or texture_scale_px <= 0:
            raise ConfigError(
                "scene parameters",
                expected="0 <= anomaly_strength < 1, noise_level >= 0, texture_scale_px > 0",
                found=f"{anomaly_strength}, {noise_level}, {texture_scale_px}",
                fix="use the defaults or values in those ranges",
            )
        self.height, self.width = int(height), int(width)
        self.wavelengths_nm = vnir_wavelengths(n_bands, range_nm)
        self.key = _seed_key(seed)
        self.discriminative_bands = self._anomaly_bands(anomaly_bands)
        self.anomaly_strength = float(anomaly_strength)
        self.noise_level = float(noise_level)
        rng = np.random.default_rng([*self.key, 0])
        n_materials = len(MATERIALS)
        # Random Fourier fields: each material's abundance logit is a sum of plane waves.
        self._frequencies = self._random_frequencies(rng, (n_materials, _WAVES_PER_FIELD), texture_scale_px)
        self._phases = rng.uniform(0, 2 * np.pi, (n_materials, _WAVES_PER_FIELD))
        self._amplitudes = rng.normal(0, 1.0 / np.sqrt(_WAVES_PER_FIELD), (n_materials, _WAVES_PER_FIELD))
        self._light_frequencies = self._random_frequencies(rng, (1, 4), texture_scale_px * 6)
        self._light_phases = rng.uniform(0, 2 * np.pi, (1, 4))
        self._light_amplitudes = rng.normal(0, 0.08, (1, 4))
        gain = rng.uniform(0.7, 1.1)  # sun elevation / haze of this acquisition
        tilt = rng.uniform(-0.12, 0.12)  # colour of the light (cloud cover)
        wl = self.wavelengths_nm
        self._illumination = (gain * solar_shape(wl) * (1 + tilt * (wl - wl.mean()) / np.ptp(wl))).astype(
            np.float32
        )
        self._spectra = material_spectra(wl).astype(np.float32)
        self._anomaly_factor = np.ones(wl.size, dtype=np.float32)
        self._anomaly_factor[self.discriminative_bands] = 1.0 - self.anomaly_strength
        self._targets = self._plant_targets(rng, anomaly_fraction)

    # -- set-up ----------------------------------------------------------------------------------------
    def _anomaly_bands(self, anomaly_bands: Sequence[int] | None) -> np.ndarray:
        n_bands = self.wavelengths_nm.size
        if anomaly_bands is None:
            bands = sorted(
                {
                    nearest_band(self.wavelengths_nm, c, tolerance_nm=np.inf)
                    for c in DEFAULT_ANOMALY_CENTRES_NM
                }
            )
            return np.asarray(bands, dtype=np.int64)
        bands_array = np.unique(np.asarray(list(anomaly_bands), dtype=np.int64))
        if bands_array.size == 0 or bands_array.min() < 0 or bands_array.max() >= n_bands:
            raise ConfigError(
                "anomaly_bands",
                expected=f"at least one band index in 0..{n_bands - 1}",
                found=repr(list(anomaly_bands)),
                fix="pass indices into the band grid",
            )
        return bands_array

    @staticmethod
    def _random_frequencies(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
        magnitude = rng.uniform(0.25 / scale_px, 1.0 / scale_px, shape)
        angle = rng.uniform(0, np.pi, shape)
        return np.stack([magnitude * np.sin(angle), magnitude * np.cos(angle)], axis=-1)  # (..., [fy, fx])

    def _plant_targets(self, rng: np.random.Generator, fraction: float) -> np.ndarray:
        """Anomaly disks as rows ``(cy, cx, radius)``, sorted by ``cy``."""
        if fraction == 0:
            return np.zeros((0, 3), dtype=np.int64)
        mean_area = 9.0  # disks of radius 1 (5 px) and 2 (13 px), equally likely
        count = max(1, round(fraction * self.height * self.width / mean_area))
        targets = np.stack(
            [
                rng.integers(0, self.height, count),
                rng.integers(0, self.width, count),
                rng.integers(1, 3, count),
            ],
            axis=1,
        )
        return targets[np.argsort(targets[:, 0], kind="stable")]

    # -- generation ------------------------------------------------------------------------------------
    def _fields(self, ys: np.ndarray, freqs: np.ndarray, phases: np.ndarray, amps: np.ndarray) -> np.ndarray:
        """Sum of plane waves at rows ``ys`` and all columns, ``(fields, rows, W)``.

        cos(a·y + b·x + φ) = cos(a·y)·cos(b·x + φ) − sin(a·y)·sin(b·x + φ): two batched matrix products
        instead of one cosine per pixel and wave.
        """
        xs = np.arange(self.width, dtype=np.float64)
        angle_y = 2 * np.pi * freqs[..., 0][..., None] * ys[None, None, :]  # (F, waves, rows)
        angle_x = (
            2 * np.pi * freqs[..., 1][..., None] * xs[None, None, :] + phases[..., None]
        )  # (F, waves, W)
        weighted_cos = (amps[..., None] * np.cos(angle_y)).transpose(0, 2, 1)  # (F, rows, waves)
        weighted_sin = (amps[..., None] * np.sin(angle_y)).transpose(0, 2, 1)
        return weighted_cos @ np.cos(angle_x) - weighted_sin @ np.sin(angle_x)

    def anomaly_mask(self, y0: int, y1: int) -> np.ndarray:
        """``(y1 - y0, W)`` bool, True on planted anomalies."""
        mask = np.zeros((y1 - y0, self.width), dtype=np.bool_)
        near = self._targets[(self._targets[:, 0] >= y0 - 2) & (self._targets[:, 0] < y1 + 2)]
        for cy, cx, radius in near:
            for dy in range(-radius, radius + 1):
                row = cy + dy - y0
                if not 0 <= row < y1 - y0:
                    continue
                half = int(np.sqrt(radius * radius - dy * dy))
                mask[row, max(0, cx - half) : min(self.width, cx + half + 1)] = True
        return mask

    def rows(self, y0: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
        """Generate rows ``y0:y1``: cube ``(rows, W, C)`` float32 and anomaly mask ``(rows, W)`` bool."""
        if not 0 <= y0 < y1 <= self.height:
            raise ConfigError(
                "rows",
                expected=f"0 <= y0 < y1 <= {self.height}",
                found=f"{y0}:{y1}",
                fix="ask for rows inside the scene",
            )
        ys = np.arange(y0, y1, dtype=np.float64)
        logits = self._fields(ys, self._frequencies, self._phases, self._amplitudes)
        logits = _ABUNDANCE_SHARPNESS * (logits + _MATERIAL_BIAS[:, None, None])
        logits -= logits.max(axis=0, keepdims=True)
        abundance = np.exp(logits)
        abundance /= abundance.sum(axis=0, keepdims=True)  # (K, rows, W), softmax over materials
        n_rows = y1 - y0
        pixels = np.ascontiguousarray(abundance.transpose(1, 2, 0), dtype=np.float32).reshape(
            -1, len(MATERIALS)
        )
        signal = (pixels @ self._spectra).reshape(n_rows, self.width, -1)  # reflectance (rows, W, C)
        mask = self.anomaly_mask(y0, y1)
        signal[mask] *= self._anomaly_factor
        light = 1.0 + self._fields(ys, self._light_frequencies, self._light_phases, self._light_amplitudes)[0]
        signal *= light.astype(np.float32)[..., None]
        signal *= self._illumination
        noise = np.empty(signal.shape[1:], dtype=np.float32)
        scale = np.empty_like(noise)
        for index, y in enumerate(range(y0, y1)):
            # One generator per absolute row: a block of any size reproduces the same noise. Row by row
            # also keeps the temporaries small (no extra full-block arrays).
            np.random.default_rng([*self.key, 1, y]).standard_normal(out=noise, dtype=np.float32)
            np.add(signal[index], np.float32(0.01), out=scale)
            np.sqrt(scale, out=scale)
            scale *= np.float32(self.noise_level)
            noise *= scale
            signal[index] += noise
        return signal, mask

    def attrs(self, acquisition_time: str = "") -> dict[str, str | int | float | list[int]]:
        """Provenance attributes of the scene."""
        return {
            ATTR_SOURCE_FILE: "",
            ATTR_SOURCE_SHA256: "",
            ATTR_SOURCE_FORMAT: "synthetic",
            ATTR_SENSOR: SENSOR_NAME,
            ATTR_ACQUISITION_TIME: acquisition_time,
            ATTR_DISCRIMINATIVE_BANDS: [int(b) for b in self.discriminative_bands],
            "synthetic_seed": list(self.key),
        }

    def scene(self) -> SyntheticScene:
        """The whole scene in memory (for small scenes; use :meth:`to_source` for large ones)."""
        cube, mask = self.rows(0, self.height)
        return SyntheticScene(
            cube, self.wavelengths_nm.copy(), mask, self.discriminative_bands.copy(), self.attrs()
        )

    def to_source(self, name: str, acquisition_time: str = "") -> AcquisitionSource:
        """A block source for :meth:`Campaign.append_source` (mask stored as uint8 labels 0/1)."""

        def read_blocks(block_rows: int) -> Iterator[Block]:
            for y0 in range(0, self.height, block_rows):
                cube, mask = self.rows(y0, min(self.height, y0 + block_rows))
                yield cube, mask.astype(np.uint8), None

        return AcquisitionSource(
            name=name,
            shape=(self.height, self.width, self.wavelengths_nm.size),
            dtype=np.dtype(np.float32),
            wavelengths_nm=self.wavelengths_nm,
            read_blocks=read_blocks,
            mask_dtype=np.dtype(np.uint8),
            attrs=self.attrs(acquisition_time),
        )


def make_scene(
    height: int,
    width: int,
    *,
    n_bands: int = DEFAULT_N_BANDS,
    seed: int | Sequence[int] = 0,
    anomaly_fraction: float = 0.005,
    anomaly_bands: Sequence[int] | None = None,
    anomaly_strength: float = 0.3,
    noise_level: float = 0.01,
    range_nm: tuple[float, float] = DEFAULT_RANGE_NM,
) -> SyntheticScene:
    """Generate one synthetic scene in memory. See :class:`SceneGenerator` for the parameters.

    Returns
    -------
    SyntheticScene
        The cube, wavelengths, anomaly mask and the discriminative band indices.
    """
    return SceneGenerator(
        height,
        width,
        n_bands=n_bands,
        range_nm=range_nm,
        seed=seed,
        anomaly_fraction=anomaly_fraction,
        anomaly_bands=anomaly_bands,
        anomaly_strength=anomaly_strength,
        noise_level=noise_level,
    ).scene()


def write_campaign(
    path: str | os.PathLike[str],
    n_acquisitions: int,
    height: int,
    width: int,
    *,
    n_bands: int = DEFAULT_N_BANDS,
    seed: int = 0,
    anomaly_fraction: float = 0.005,
    anomaly_bands: Sequence[int] | None = None,
    anomaly_strength: float = 0.3,
    noise_level: float = 0.01,
    chunk_yx: object = DEFAULT_CHUNK_YX,
    progress: bool = False,
) -> Campaign:
    """Write a synthetic campaign of ``n_acquisitions`` scenes, block by block (bounded memory).

    Acquisition ``i`` uses seed ``(seed, i)``: scenes differ in layout, illumination and noise but share
    the band grid and the discriminative bands. Writing the same campaign again is a no-op (same ids).

    Returns
    -------
    Campaign
        The store (created when missing).
    """
    if int(n_acquisitions) < 1:
        raise ConfigError(
            "n_acquisitions",
            expected=">= 1",
            found=repr(n_acquisitions),
            fix="ask for at least one acquisition",
        )
    generators = [
        SceneGenerator(
            height,
            width,
            n_bands=n_bands,
            seed=(seed, index),
            anomaly_fraction=anomaly_fraction,
            anomaly_bands=anomaly_bands,
            anomaly_strength=anomaly_strength,
            noise_level=noise_level,
        )
        for index in range(int(n_acquisitions))
    ]
    # Created once the generators have checked the sizes: a bad argument leaves no empty store behind.
    campaign = open_campaign(path, create=True)  # a folder or an object-store URL
    total = int(n_acquisitions) * int(height) * int(width) * n_bands * 4
    per_row = int(width) * n_bands * 4
    with tqdm(total=total, unit="B", unit_scale=True, desc="synth", disable=not progress) as bar:
        for index, generator in enumerate(generators):
            time = (_EPOCH + timedelta(days=index)).isoformat()
            source = generator.to_source(f"synthetic_s{seed}_a{index:03d}", acquisition_time=time)
            campaign.append_source(source, chunk_yx=chunk_yx, on_rows=lambda rows: bar.update(rows * per_row))
    return campaign
