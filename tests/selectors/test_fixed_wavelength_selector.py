"""FixedWavelengthSelector: any number (>= 1) of fixed targets, nearest bands in target order, a true
dimension reduction whose BandSelection feeds the k-band product; three targets are the seed's baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from selector_fixtures import WAVELENGTHS_61, load_real

from bandselect.errors import WavelengthError
from bandselect.pipeline import Pipeline
from bandselect.selectors import BaselineFalseRGBSelector, FixedWavelengthSelector


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        ((700.0,), [30]),
        ((450.0, 550.0, 650.0, 750.0, 850.0), [5, 15, 25, 35, 45]),
        ((905.0, 404.0, 651.0, 449.0), [50, 0, 25, 5]),  # target order is output order, ties aside
        (tuple(float(t) for t in range(420, 1000, 60)), [2, 8, 14, 20, 26, 32, 38, 44, 50, 56]),
    ],
)
def test_nearest_bands_in_target_order_for_any_number_of_targets(
    targets: tuple[float, ...], expected: list[int]
) -> None:
    selector = FixedWavelengthSelector(target_wavelengths=targets)
    cube = torch.rand(2, 6, 5, 61, generator=torch.Generator().manual_seed(0))
    outputs = selector.forward(cube=cube, wavelengths=WAVELENGTHS_61)
    assert outputs["band_info"]["band_indices"] == expected
    assert outputs["band_info"]["target_wavelengths_nm"] == list(targets)
    torch.testing.assert_close(outputs["selected"], cube[..., expected], rtol=0, atol=0)  # raw values
    selection = selector.selection(WAVELENGTHS_61)
    assert list(selection.output_indices) == expected and selection.k == len(targets)
    assert selection.selector_type == "FixedWavelengthSelector"


def test_three_targets_are_the_seed_baseline() -> None:
    fixed = FixedWavelengthSelector().selection(WAVELENGTHS_61)
    baseline = BaselineFalseRGBSelector().selection(WAVELENGTHS_61)
    assert fixed.output_indices == baseline.output_indices == (25, 15, 5)
    assert fixed.rgb_indices == baseline.rgb_indices  # three targets or more also make a composite


def test_targets_outside_the_sensor_or_on_one_band_are_errors() -> None:
    with pytest.raises(WavelengthError, match=r"1200\.0 nm.*400\.0–1000\.0 nm") as raised:
        FixedWavelengthSelector(target_wavelengths=(550.0, 1200.0)).selection(WAVELENGTHS_61)
    assert "Fix:" in str(raised.value)
    with pytest.raises(WavelengthError, match=r"550 and 552 nm.*band 15"):
        FixedWavelengthSelector(target_wavelengths=(550.0, 552.0)).selection(WAVELENGTHS_61)


def test_in_a_yaml_pipeline() -> None:
    pipeline = Pipeline.from_config(
        {
            "nodes": {
                "five": {
                    "type": "FixedWavelengthSelector",
                    "config": {"target_wavelengths": [450, 550, 650, 750, 850], "tolerance_nm": 10},
                }
            },
            "connections": [["data.cube", "five.cube"], ["data.wavelengths", "five.wavelengths"]],
        }
    )
    outputs = pipeline.run(cube=torch.rand(1, 4, 4, 61), wavelengths=WAVELENGTHS_61)["five"]
    assert tuple(outputs["selected"].shape) == (1, 4, 4, 5)


def test_five_bands_of_a_real_scene() -> None:
    scene = load_real("pavia_rosis_abu_beach4")
    wavelengths = scene["wavelengths_nm"]
    selector = FixedWavelengthSelector(target_wavelengths=(450, 550, 650, 750, 850))
    selection = selector.selection(wavelengths)
    assert all(
        abs(w - t) < 5
        for w, t in zip(selection.output_wavelengths_nm, (450, 550, 650, 750, 850), strict=True)
    )
    reduced = selection.take(scene["cube"])
    assert reduced.shape == (100, 100, 5)
    np.testing.assert_array_equal(reduced[..., 2], scene["cube"][..., selection.output_indices[2]])
