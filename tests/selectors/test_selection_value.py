"""Every selector reports its bands as one ``BandSelection``; the value itself (validation, derived fields,
identity, JSON round trip, applying it to a cube)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from selector_fixtures import WAVELENGTHS_61, labelled_cube

from bandselect.errors import ConfigError, NotFittedError, ShapeError, WavelengthError
from bandselect.pipeline.node import BandSelector
from bandselect.selection import BandSelection, false_colour_order
from bandselect.selectors import (
    BandSelectorBase,
    BaselineFalseRGBSelector,
    CIRFalseColorSelector,
    HighContrastBandSelector,
    SoftChannelSelector,
    SupervisedCIRBandSelector,
    SupervisedFullSpectrumBandSelector,
    SupervisedWindowedFalseRGBSelector,
    TopKIndices,
)

# NIR 870 nm, red 670 nm, green 560 nm, blue 460 nm, and two bands outside every window (920, 730 nm).
DATA = labelled_cube({47: 3.0, 27: 2.5, 52: 2.2, 16: 2.0, 33: 1.8, 6: 1.5}, batch=2, size=16, seed=3)
GRID = WAVELENGTHS_61.numpy().astype(np.float64)


def _fitted() -> dict[str, BandSelector]:
    soft = SoftChannelSelector(n_select=3, input_channels=61, init_method="variance").fit(DATA.cube)
    contrast = HighContrastBandSelector().fit(DATA.cube, DATA.wavelengths)
    return {
        "baseline": BaselineFalseRGBSelector(),
        "cir": CIRFalseColorSelector(),
        "contrast": contrast,
        "soft": soft,
        "cir_mrmr": SupervisedCIRBandSelector(num_spectral_bands=61).fit(
            DATA.cube, DATA.mask, DATA.wavelengths
        ),
        "rgb_mrmr": SupervisedWindowedFalseRGBSelector(num_spectral_bands=61).fit(
            DATA.cube, DATA.mask, DATA.wavelengths
        ),
        "full4": SupervisedFullSpectrumBandSelector(num_spectral_bands=61, k=4).fit(
            DATA.cube, DATA.mask, DATA.wavelengths
        ),
    }


@pytest.mark.parametrize("name", list(_fitted()))
def test_every_selector_reports_what_its_forward_shows(name: str) -> None:
    node = _fitted()[name]
    assert isinstance(node, BandSelector)
    selection = node.selection(WAVELENGTHS_61)
    assert isinstance(selection, BandSelection)
    assert selection.selector_type == type(node).__name__
    assert selection.to_dict()["selector_config"] == json.loads(json.dumps(node.config))
    assert selection.sensor_wavelengths_nm == tuple(float(w) for w in GRID)
    if isinstance(node, BandSelectorBase):
        info = node.forward(cube=DATA.cube, wavelengths=DATA.wavelengths)["band_info"]
        assert list(selection.rgb_indices) == info["band_indices"]
        assert list(selection.rgb_wavelengths_nm) == pytest.approx(info["band_wavelengths_nm"])
        assert selection.strategy == info["strategy"]
        if "selected_indices" in info:
            assert list(selection.indices) == info["selected_indices"]


def test_planted_bands_and_orders() -> None:
    nodes = _fitted()
    # Windows are NIR, Red, Green: the planted 870, 670 and 560 nm bands, shown as R, G, B (CIR).
    cir = nodes["cir_mrmr"].selection(GRID)
    assert cir.indices == (47, 27, 16) and cir.output_indices == (47, 27, 16)
    assert dict(cir.channel_mapping) == {"R": "NIR", "G": "Red", "B": "Green"}
    assert cir.windows_nm == ((840.0, 910.0), (650.0, 720.0), (500.0, 570.0))
    # Windowed false RGB picks in window order (Blue, Green, Red) and outputs R, G, B.
    rgb = nodes["rgb_mrmr"].selection(GRID)
    assert rgb.indices[::-1] == rgb.output_indices
    assert rgb.output_indices == (27, 16, 6)  # the planted red, green and blue bands
    # Full spectrum, k=4: the five planted bands, most relevant first; no colour names beyond RGB.
    full = nodes["full4"].selection(GRID)
    assert set(full.indices) == {47, 27, 52, 16} and full.indices[0] == 47
    assert full.channel_names == () and full.rgb_indices == full.output_indices[:3]
    assert full.score("fisher").argmax() == 47
    # The learnable selector outputs its picks longest wavelength first (the false-colour convention).
    soft = nodes["soft"].selection(GRID)
    assert soft.output_indices == false_colour_order(soft.indices, GRID)
    assert soft.score("weight").sum() == pytest.approx(3.0)
    weights = nodes["soft"].get_selection_weights(hard=True)
    assert sorted(soft.indices) == torch.where(weights > 0)[0].tolist()


def test_selection_identity_ignores_score_rounding_and_round_trips() -> None:
    node = _fitted()["full4"]
    selection = node.selection(GRID)
    again = BandSelection.from_json(selection.to_json())
    assert again == selection and hash(again) == hash(selection) and again.digest == selection.digest
    np.testing.assert_allclose(again.score("auc"), selection.score("auc"), rtol=0, atol=0)
    perturbed = BandSelection.create(
        selection.indices,
        GRID,
        selector_type=selection.selector_type,
        selector_config=selection.selector_config,
        output_indices=selection.output_indices,
        scores={"auc": selection.score("auc") + 1e-12},
    )
    assert perturbed == selection
    other_order = BandSelection.create(
        selection.indices,
        GRID,
        selector_type=selection.selector_type,
        selector_config=selection.selector_config,
        output_indices=selection.output_indices[::-1],
    )
    assert other_order != selection and other_order.digest != selection.digest
    other_config = SupervisedFullSpectrumBandSelector(num_spectral_bands=61, k=4, lambda_penalty=0.4)
    other_config.fit(DATA.cube, DATA.mask, DATA.wavelengths)
    if other_config.selection(GRID).indices == selection.indices:
        assert other_config.selection(GRID) != selection  # same bands, another selector configuration


def test_take_applies_the_selection_to_any_cube() -> None:
    selection = _fitted()["cir_mrmr"].selection(GRID)
    cube = np.arange(2 * 3 * 61, dtype=np.float32).reshape(2, 3, 61)
    np.testing.assert_array_equal(selection.take(cube), cube[..., [47, 27, 16]])
    np.testing.assert_array_equal(
        selection.take(torch.from_numpy(cube), order="pick").numpy(), cube[..., [47, 27, 16]]
    )
    assert selection.support.sum() == 3 and selection.support[[16, 27, 47]].all()
    with pytest.raises(ShapeError, match=r"\(\.\.\., 61\) bands last.*shape \(2, 3, 60\)"):
        selection.take(cube[..., :60])
    with pytest.raises(WavelengthError, match="different band centres"):
        selection.check_grid(GRID + 1.0)
    selection.check_grid(GRID)


def test_fixed_selection_on_another_sensor_and_out_of_range() -> None:
    grid = np.linspace(430.0, 910.0, 49)
    selection = BaselineFalseRGBSelector().selection(grid)
    assert selection.rgb_wavelengths_nm == (650.0, 550.0, 450.0)
    with pytest.raises(WavelengthError, match=r"860.0 nm.*sensor covers 400.0–700.0 nm"):
        CIRFalseColorSelector().selection(np.linspace(400.0, 700.0, 31))
    with pytest.raises(WavelengthError, match="wavelengths"):
        BaselineFalseRGBSelector().selection(None)


def test_unfitted_selectors_refuse_to_report() -> None:
    with pytest.raises(NotFittedError, match="fit"):
        SupervisedCIRBandSelector(num_spectral_bands=61).selection(GRID)
    with pytest.raises(NotFittedError, match="fit"):
        HighContrastBandSelector().selection(GRID)
    with pytest.raises(NotFittedError, match="StatisticalTrainer"):
        SoftChannelSelector(n_select=3, input_channels=61, init_method="variance").selection(GRID)
    with pytest.raises(WavelengthError, match="61 values"):
        _fitted()["soft"].selection(GRID[:60])
    assert not isinstance(TopKIndices(k=3), BandSelector)  # a utility, not a selector


def test_high_contrast_state_dict_carries_the_fitted_scores() -> None:
    node = _fitted()["contrast"]
    fresh = HighContrastBandSelector()
    fresh.load_state_dict(node.state_dict())
    assert fresh.selection(GRID) == node.selection(GRID)
    np.testing.assert_array_equal(
        fresh.selection(GRID).score("contrast"), node.selection(GRID).score("contrast")
    )


def test_custom_selector_without_selection_says_how_to_add_it() -> None:
    class FirstBands(BandSelectorBase):
        def forward(self, cube, wavelengths, **kwargs):  # type: ignore[no-untyped-def]
            return {}

    with pytest.raises(NotFittedError, match="implement selection"):
        FirstBands().selection(GRID)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"indices": []}, ShapeError, "at least one band"),
        ({"indices": [0, 61]}, ShapeError, r"\[0, 61\)"),
        ({"indices": [3, 3]}, ShapeError, "distinct bands"),
        ({"indices": [1, 2], "output_indices": [1, 3]}, ShapeError, "permutation"),
        ({"indices": [1, 2], "channel_names": ["R"]}, ShapeError, "2 channel names"),
        ({"indices": [1, 2], "scores": {"x": [1.0]}}, ShapeError, "61 values"),
    ],
)
def test_bad_selections_are_typed_errors(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        BandSelection.create(wavelengths_nm=GRID, selector_type="Manual", **kwargs)


def test_rgb_of_fewer_than_three_bands_and_unknown_scores() -> None:
    two = BandSelection.create([4, 9], GRID, selector_type="Manual")
    with pytest.raises(ShapeError, match="k-band"):
        _ = two.rgb_indices
    with pytest.raises(ConfigError, match="fisher"):
        two.score("fisher")
    with pytest.raises(ConfigError, match="format"):
        BandSelection.from_dict({"indices": [1]})


def test_high_contrast_windows_sharing_a_band_show_three_distinct_bands() -> None:
    # The default Blue (440-500) and Green (500-580) windows share the 500 nm band: make it the most
    # textured band of both. Blue (the earlier window) takes it; Green takes its own next best.
    generator = torch.Generator().manual_seed(0)
    cube = torch.rand(1, 12, 12, 61, generator=generator) * 0.01
    cube[..., 10] = torch.rand(1, 12, 12, generator=generator)  # 500 nm
    cube[..., 14] = 0.5 * torch.rand(1, 12, 12, generator=generator)  # 540 nm, the Green runner-up
    node = HighContrastBandSelector()
    info = node.forward(cube=cube, wavelengths=WAVELENGTHS_61)["band_info"]
    selection = node.fit(cube, WAVELENGTHS_61).selection(WAVELENGTHS_61)
    assert selection.indices[:2] == (10, 14)  # Blue, Green
    assert list(selection.output_indices) == info["band_indices"]
    assert len(set(info["band_indices"])) == 3
