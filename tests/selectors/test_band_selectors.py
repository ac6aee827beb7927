"""Fixed-wavelength, high-contrast and base-class behaviour on a known wavelength grid."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from selector_fixtures import WAVELENGTHS_61

from bandselect.errors import WavelengthError
from bandselect.selectors import (
    BandSelectorBase,
    BaselineFalseRGBSelector,
    CIRFalseColorSelector,
    HighContrastBandSelector,
)


def _ramp_cube(c: int = 61) -> torch.Tensor:
    """Band b holds the constant-plus-ramp image b + x/10, so every band is identifiable."""
    x = torch.arange(6.0).reshape(1, 1, 6, 1)
    bands = torch.arange(float(c)).reshape(1, 1, 1, c)
    return (bands + x / 10.0).expand(2, 4, 6, c).clone()


def test_baseline_picks_nearest_bands_in_rgb_order() -> None:
    baseline = BaselineFalseRGBSelector(target_wavelengths=(650.0, 550.0, 450.0))
    out = baseline.forward(cube=_ramp_cube(), wavelengths=WAVELENGTHS_61)
    assert out["band_info"] == {
        "strategy": "baseline_false_rgb",
        "band_indices": [25, 15, 5],
        "band_wavelengths_nm": [650.0, 550.0, 450.0],
        "target_wavelengths_nm": [650.0, 550.0, 450.0],
    }
    # Off-grid targets: nearest band; a tie goes to the lower index.
    out = BaselineFalseRGBSelector(target_wavelengths=(648.5, 555.0, 441.0)).forward(
        cube=_ramp_cube(), wavelengths=WAVELENGTHS_61
    )
    assert out["band_info"]["band_indices"] == [25, 15, 4]
    assert out["band_info"]["band_wavelengths_nm"] == [650.0, 550.0, 440.0]


def test_rgb_channels_are_the_selected_bands_normalised() -> None:
    cube = torch.rand(3, 5, 7, 61, generator=torch.Generator().manual_seed(0))
    out = BaselineFalseRGBSelector().forward(cube=cube, wavelengths=WAVELENGTHS_61)
    rgb = out["rgb_image"]
    assert rgb.shape == (3, 5, 7, 3) and rgb.dtype == torch.float32
    for channel, band in enumerate([25, 15, 5]):
        for sample in range(3):
            image = cube[sample, ..., band]
            expected = (image - image.min()) / (image.max() - image.min())
            torch.testing.assert_close(rgb[sample, ..., channel], expected)
            assert float(rgb[sample, ..., channel].min()) == 0.0
            assert float(rgb[sample, ..., channel].max()) == pytest.approx(1.0)


def test_compose_rgb_constant_channel_is_zero_not_nan() -> None:
    cube = torch.rand(2, 4, 4, 5)
    cube[0, ..., 1] = 7.0  # constant in sample 0 only
    rgb = BandSelectorBase._compose_rgb(cube, [0, 1, 2])
    assert bool(torch.isfinite(rgb).all())
    assert torch.equal(rgb[0, ..., 1], torch.zeros(4, 4))
    assert float(rgb[1, ..., 1].max()) == pytest.approx(1.0)


def test_target_outside_sensor_range_names_the_range() -> None:
    visible = torch.linspace(400.0, 700.0, 31)
    cir = CIRFalseColorSelector()
    with pytest.raises(WavelengthError) as info:
        cir.forward(cube=torch.rand(1, 4, 4, 31), wavelengths=visible)
    message = str(info.value)
    assert "860.0 nm" in message and "400.0–700.0 nm" in message and "tolerance_nm" in message
    # Within tolerance it snaps; beyond it, an error (no silent snap to the edge).
    assert (
        CIRFalseColorSelector(nir_nm=720.0).forward(cube=torch.rand(1, 4, 4, 31), wavelengths=visible)[
            "band_info"
        ]["band_indices"][0]
        == 30
    )
    with pytest.raises(WavelengthError):
        CIRFalseColorSelector(nir_nm=730.0, tolerance_nm=25.0).forward(
            cube=torch.rand(1, 4, 4, 31), wavelengths=visible
        )
    wide = CIRFalseColorSelector(nir_nm=730.0, tolerance_nm=40.0)
    info = wide.forward(cube=torch.rand(1, 4, 4, 31), wavelengths=visible)["band_info"]
    assert info["band_indices"][0] == 30


def test_cir_mapping_and_band_info() -> None:
    cir = CIRFalseColorSelector(nir_nm=860.0, red_nm=670.0, green_nm=560.0)
    cube = _ramp_cube()
    out = cir.forward(cube=cube, wavelengths=WAVELENGTHS_61)
    assert out["band_info"] == {
        "strategy": "cir_false_color",
        "band_indices": [46, 27, 16],
        "band_wavelengths_nm": [860.0, 670.0, 560.0],
        "target_wavelengths_nm": [860.0, 670.0, 560.0],
        "channel_mapping": {"R": "NIR", "G": "Red", "B": "Green"},
    }
    marked = torch.zeros(1, 4, 4, 61)
    marked[0, 0, 0, 46] = 1.0  # only the NIR band has a bright pixel: it must appear in the red channel
    rgb = cir.forward(cube=marked, wavelengths=WAVELENGTHS_61)["rgb_image"]
    assert float(rgb[0, 0, 0, 0]) == 1.0 and float(rgb[..., 1:].abs().sum()) == 0.0


def test_integer_wavelengths_as_the_seed_declares_them() -> None:
    out = BaselineFalseRGBSelector().forward(cube=_ramp_cube(), wavelengths=WAVELENGTHS_61.to(torch.int32))
    assert out["band_info"]["band_indices"] == [25, 15, 5]


def _texture_cube() -> torch.Tensor:
    """Bands 22 and 26 (620 and 660 nm, red window) share variance 1; 26 is a checkerboard (edges
    everywhere), 22 two flat halves (one edge). Band 14 (green) and 6 (blue) are mildly textured."""
    generator = torch.Generator().manual_seed(0)
    cube = 0.01 * torch.randn(2, 8, 8, 61, generator=generator)
    yy, xx = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    checker = ((yy + xx) % 2 * 2 - 1).float()
    halves = (xx >= 4).float() * 2 - 1
    cube[..., 26] = checker
    cube[..., 22] = halves
    cube[..., 14] += 0.3 * checker
    cube[..., 6] += 0.2 * checker
    return cube


def test_high_contrast_picks_the_planted_textured_bands_in_rgb_order() -> None:
    selector = HighContrastBandSelector(windows=((440, 500), (500, 580), (610, 700)), alpha=0.1)
    out = selector.forward(cube=_texture_cube(), wavelengths=WAVELENGTHS_61)
    info = out["band_info"]
    assert info["strategy"] == "high_contrast"
    assert info["band_indices"] == [26, 14, 6]  # R from the third window, B from the first
    assert info["band_wavelengths_nm"] == [660.0, 540.0, 460.0]
    assert info["windows_nm"] == [[610.0, 700.0], [500.0, 580.0], [440.0, 500.0]]
    # The Laplacian term decides between equal variances; without it the tie goes to the lower index.
    assert (
        HighContrastBandSelector(alpha=0.0).forward(cube=_texture_cube(), wavelengths=WAVELENGTHS_61)[
            "band_info"
        ]["band_indices"][0]
        == 22
    )


def test_high_contrast_score_formula() -> None:
    cube = _texture_cube()
    selector = HighContrastBandSelector(alpha=0.5)
    scores = selector.band_scores(cube, torch.tensor([26, 22]).numpy())
    # Checkerboard ±1: interior |Laplacian| = 8, replicate-padded edges 6 (sides) and 4 (corners).
    lap_checker = (36 * 8 + 24 * 6 + 4 * 4) / 64
    lap_halves = (2 * 8 * 2) / 64  # the two columns beside the edge, |±2| each
    torch.testing.assert_close(scores, torch.tensor([1 + 0.5 * lap_checker, 1 + 0.5 * lap_halves]).double())


def test_high_contrast_scores_every_sample_of_the_batch() -> None:
    cube = _texture_cube()
    cube[..., 26] = 0.0
    cube[1, ..., 26] = _texture_cube()[1, ..., 26] * 3.0  # textured only in the second sample
    info = HighContrastBandSelector().forward(cube=cube, wavelengths=WAVELENGTHS_61)["band_info"]
    assert info["band_indices"][0] == 26


def test_high_contrast_empty_window_is_an_error() -> None:
    selector = HighContrastBandSelector(windows=((440, 500), (500, 580), (1100, 1200)))
    with pytest.raises(WavelengthError) as info:
        selector.forward(cube=torch.rand(1, 4, 4, 61), wavelengths=WAVELENGTHS_61)
    assert "1100–1200 nm" in str(info.value) and "400.0–1000.0 nm" in str(info.value)


class CustomBandSelector(BandSelectorBase):
    """The seed's "Creating Custom Selectors" example, as written (with a concrete algorithm)."""

    def __init__(self, custom_param: float = 1.0, **kwargs: Any) -> None:
        super().__init__(custom_param=custom_param, **kwargs)
        self.custom_param = custom_param

    def forward(self, cube: Any, wavelengths: Any, **kwargs: Any) -> dict[str, Any]:
        indices = [int(i) for i in torch.argsort(cube.reshape(-1, cube.shape[-1]).var(0))[-3:].flip(0)]
        rgb = self._compose_rgb(cube, indices)
        band_info = {"strategy": "custom", "band_indices": indices}
        return {"rgb_image": rgb, "band_info": band_info}


def test_custom_selector_subclass_as_in_the_seed() -> None:
    cube = torch.rand(1, 6, 6, 10) * torch.arange(1.0, 11.0)
    node = CustomBandSelector(custom_param=2.0)
    assert node.config == {"custom_param": 2.0}
    out = node.forward(cube=cube, wavelengths=torch.arange(10.0))
    assert out["band_info"]["band_indices"][0] in (9, 8) and out["rgb_image"].shape == (1, 6, 6, 3)
