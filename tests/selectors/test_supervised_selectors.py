"""Supervised selectors pick planted discriminative bands, avoid redundant copies, keep R, G, B order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from selector_fixtures import labelled_cube, load_real

from bandselect.errors import LabelError, ShapeError, WavelengthError
from bandselect.selectors import (
    SupervisedCIRBandSelector,
    SupervisedFullSpectrumBandSelector,
    SupervisedWindowedFalseRGBSelector,
)
from bandselect.stats import BandStatistics
from bandselect.stats.binning import data_edges


@pytest.mark.parametrize("criterion", ["mrmr", "separability"])
def test_cir_picks_planted_band_per_window_in_cir_order(criterion: str) -> None:
    # NIR window 840–910 nm = bands 44..51, Red 650–720 = 25..32, Green 500–570 = 10..17.
    data = labelled_cube({47: 3.0, 29: 2.0, 12: 1.5})
    selector = SupervisedCIRBandSelector(num_spectral_bands=61, criterion=criterion)
    selector.fit(data.cube, data.mask, data.wavelengths)
    assert selector.selected_indices.tolist() == [47, 29, 12]
    out = selector.forward(cube=data.cube, wavelengths=data.wavelengths)
    info = out["band_info"]
    assert info["strategy"] == "supervised_cir" and info["criterion"] == criterion
    assert info["band_indices"] == [47, 29, 12]
    assert info["band_wavelengths_nm"] == [870.0, 690.0, 520.0]
    assert info["channel_mapping"] == {"R": "NIR", "G": "Red", "B": "Green"}
    assert info["windows_nm"] == [[840.0, 910.0], [650.0, 720.0], [500.0, 570.0]]
    # The planted bands have the largest Fisher scores in their windows.
    assert int(selector.fisher_scores.argmax()) == 47
    assert info["fisher_scores"][0] == pytest.approx(float(selector.fisher_scores[47]))


def test_windowed_rgb_output_is_rgb_while_windows_are_bgr() -> None:
    # Blue 440–500 = bands 4..10, Green 500–580 = 10..18, Red 610–700 = 21..30.
    data = labelled_cube({6: 1.5, 14: 2.0, 26: 3.0})
    selector = SupervisedWindowedFalseRGBSelector(num_spectral_bands=61).fit(
        data.cube, data.mask, data.wavelengths
    )
    assert selector.selected_indices.tolist() == [6, 14, 26]  # window order: B, G, R
    out = selector.forward(cube=data.cube, wavelengths=data.wavelengths)
    assert out["band_info"]["band_indices"] == [26, 14, 6]  # image order: R, G, B
    assert out["band_info"]["channel_mapping"] == {"R": "Red", "G": "Green", "B": "Blue"}
    red = data.cube[0, ..., 26]
    torch.testing.assert_close(out["rgb_image"][0, ..., 0], (red - red.min()) / (red.max() - red.min()))


def test_full_spectrum_avoids_a_redundant_copy() -> None:
    # Band 20 is the most discriminative; band 40 is a near copy of it; bands 5 and 50 are weaker but
    # carry their own noise (correlated with 20 only through the labels).
    data = labelled_cube({20: 3.0, 5: 2.5, 50: 2.0}, copies={40: 20})
    selector = SupervisedFullSpectrumBandSelector(num_spectral_bands=61, k=3)
    selector.fit(data.cube, data.mask, data.wavelengths)
    picks = selector.selected_indices.tolist()
    # The first pick is the original or its copy (equally relevant), never both; then the independent band.
    assert picks[0] in (20, 40) and picks[1:] == [5, 50]
    redundant = 40 if picks[0] == 20 else 20
    assert float(selector.band_scores[redundant]) > float(selector.band_scores[5])  # relevant, yet redundant
    assert float(selector.correlation[20, 40]) > 0.99
    # Without the redundancy penalty the copy wins the second pick.
    greedy = SupervisedFullSpectrumBandSelector(num_spectral_bands=61, lambda_penalty=0.0, k=3)
    assert set(greedy.fit(data.cube, data.mask).selected_indices.tolist()[:2]) == {20, 40}
    info = selector.forward(cube=data.cube, wavelengths=data.wavelengths)["band_info"]
    assert info["band_indices"] == picks and info["selected_indices"] == picks


def test_full_spectrum_k_bands_image_shows_first_three() -> None:
    data = labelled_cube({20: 3.0, 5: 2.0, 50: 1.5, 33: 1.0})
    selector = SupervisedFullSpectrumBandSelector(num_spectral_bands=61, k=4).fit(data.cube, data.mask)
    picks = selector.selected_indices.tolist()
    assert picks == [20, 5, 50, 33]
    info = selector.forward(cube=data.cube, wavelengths=data.wavelengths)["band_info"]
    assert info["band_indices"] == picks[:3] and info["selected_indices"] == picks


def test_fit_and_fit_from_statistics_are_the_same_path() -> None:
    data = labelled_cube({47: 3.0, 29: 2.0, 12: 1.5})
    direct = SupervisedCIRBandSelector(num_spectral_bands=61).fit(data.cube, data.mask, data.wavelengths)
    # Streamed: two batches merged, as the StatisticalTrainer does.
    halves = [(data.cube[i : i + 1].numpy(), data.mask[i : i + 1].numpy()) for i in range(2)]
    first = BandStatistics.from_arrays(*halves[0]).merge(BandStatistics.from_arrays(*halves[1]))
    edges = data_edges(first.minimum, first.maximum, 2048)  # the engine's binning rule
    stats = BandStatistics.from_arrays(*halves[0], hist_edges=edges).merge(
        BandStatistics.from_arrays(*halves[1], hist_edges=edges)
    )
    streamed = SupervisedCIRBandSelector(num_spectral_bands=61)
    request = streamed.statistics_request()
    assert (request.cube_port, request.mask_port, request.wavelengths_port) == ("cube", "mask", "wavelengths")
    assert request.histograms
    streamed.fit_from_statistics(stats, wavelengths=data.wavelengths)
    for name, tensor in direct.state_dict().items():
        torch.testing.assert_close(streamed.state_dict()[name], tensor, rtol=1e-5, atol=1e-6)


def test_mask_errors_say_which() -> None:
    data = labelled_cube({47: 3.0})
    selector = SupervisedCIRBandSelector(num_spectral_bands=61)
    with pytest.raises(LabelError, match="no mask"):
        selector.fit(data.cube, None, data.wavelengths)
    with pytest.raises(LabelError, match="only the negative class 0"):
        selector.fit(data.cube, torch.zeros_like(data.mask), data.wavelengths)
    with pytest.raises(LabelError, match="only the positive class"):
        selector.fit(data.cube, torch.ones_like(data.mask), data.wavelengths)
    with pytest.raises(LabelError, match="only the negative class 0"):
        unlabelled = BandStatistics.from_arrays(data.cube.numpy())
        selector.fit_from_statistics(unlabelled, wavelengths=data.wavelengths)
    with pytest.raises(ShapeError):
        selector.fit(data.cube, data.mask[:, :10], data.wavelengths)
    assert not selector.is_initialized


def test_windowed_fit_needs_wavelengths_and_a_band_in_every_window() -> None:
    data = labelled_cube({47: 3.0})
    with pytest.raises(WavelengthError, match=r"data\.wavelengths"):
        SupervisedCIRBandSelector(num_spectral_bands=61).fit(data.cube, data.mask)
    selector = SupervisedCIRBandSelector(num_spectral_bands=61, windows=((940, 990), (650, 720), (500, 570)))
    with pytest.raises(WavelengthError) as info:
        selector.fit(data.cube, data.mask, data.wavelengths * 0.9)  # a sensor ending at 900 nm
    assert "940–990 nm" in str(info.value) and "360.0–900.0 nm" in str(info.value)


def test_real_scene_pavia_anomalies_are_separated() -> None:
    arrays = load_real("pavia_rosis_abu_beach4")
    cube = torch.from_numpy(arrays["cube"].astype(np.float32))[None]
    mask = torch.from_numpy(arrays["gt"] > 0)[None, ..., None]
    wavelengths = torch.from_numpy(arrays["wavelengths_nm"])
    c = cube.shape[-1]
    selector = SupervisedFullSpectrumBandSelector(num_spectral_bands=c).fit(cube, mask, wavelengths)
    picks = selector.selected_indices.tolist()
    assert len(set(picks)) == 3
    # The first pick is the band of best combined relevance; the picked bands separate the classes.
    assert picks[0] == int(selector.band_scores.argmax())
    assert min(float(selector.auc_scores[i]) for i in picks) > 0.6
    windowed = SupervisedWindowedFalseRGBSelector(num_spectral_bands=c).fit(cube, mask, wavelengths)
    wl = wavelengths.numpy()
    for pick, (low, high) in zip(windowed.selected_indices.tolist(), windowed.windows, strict=True):
        assert low <= wl[pick] <= high
