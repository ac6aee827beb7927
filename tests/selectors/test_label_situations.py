"""Supervised and unsupervised selector nodes in every label situation: multi-class labels with any class ids,
ignored pixels, one class against the rest on fit(), fit_node, and the bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from multiclass_scenes import CLASS_IDS, planted_pair_scene

from bandselect.errors import LabelError, NonFiniteError
from bandselect.selectors import (
    CorrelationClusterBandSelector,
    OrthogonalProjectionBandSelector,
    SupervisedFullSpectrumBandSelector,
)
from bandselect.training.fitting import fit_node

SCENE = planted_pair_scene()
CUBE = SCENE.cube[None]  # (1, H, W, C)
LABELS = SCENE.labels[None]
N_BANDS = CUBE.shape[-1]


def _multiclass(criterion: str = "separability", k: int = 6) -> SupervisedFullSpectrumBandSelector:
    return SupervisedFullSpectrumBandSelector(
        num_spectral_bands=N_BANDS, criterion=criterion, k=k, multiclass=True
    )


@pytest.mark.parametrize("criterion", ["separability", "mrmr"])
def test_multiclass_node_finds_the_planted_band_of_every_class_pair(criterion: str) -> None:
    selector = _multiclass(criterion).fit(CUBE, LABELS, SCENE.wavelengths_nm, ignore_label=0)
    assert sorted(selector.selected_indices.tolist()) == sorted(SCENE.planted)
    selection = selector.selection(SCENE.wavelengths_nm)
    assert selection.selector_config["multiclass"] is True
    assert selector.forward(cube=torch.from_numpy(CUBE), wavelengths=SCENE.wavelengths_nm)["band_info"][
        "multiclass"
    ]


def test_ignored_pixels_can_hold_garbage() -> None:
    garbage = CUBE.copy()
    unlabelled = LABELS == 0
    garbage[unlabelled] = np.nan
    garbage[unlabelled & (np.arange(garbage.shape[2]) % 2 == 0)] = 1e9
    clean = _multiclass().fit(CUBE, LABELS, ignore_label=0)
    dirty = _multiclass().fit(garbage, LABELS, ignore_label=0)
    assert dirty.selection(SCENE.wavelengths_nm) == clean.selection(SCENE.wavelengths_nm)
    assert torch.equal(dirty.band_scores, clean.band_scores) and torch.equal(
        dirty.correlation, clean.correlation
    )
    with pytest.raises(NonFiniteError):  # without ignoring them, the NaN pixels count
        _multiclass().fit(garbage, LABELS)


def test_positive_label_on_fit_is_one_class_against_the_rest() -> None:
    target = CLASS_IDS[2]
    on_fit = SupervisedFullSpectrumBandSelector(num_spectral_bands=N_BANDS, criterion="separability")
    on_fit.fit(CUBE, LABELS, positive_label=target, ignore_label=0)
    counted = LABELS != 0
    by_hand = SupervisedFullSpectrumBandSelector(num_spectral_bands=N_BANDS, criterion="separability")
    by_hand.fit(CUBE[counted][None, None], (LABELS[counted] == target)[None, None])
    assert on_fit.selected_indices.tolist() == by_hand.selected_indices.tolist()
    # The class's three pairs are planted in bands 9, 13 (class 12 moved up or down) and 5.
    pairs_of_target = [b for b, (i, j) in zip(SCENE.planted, SCENE.pairs, strict=True) if 2 in (i, j)]
    assert sorted(on_fit.selected_indices.tolist()) == sorted(pairs_of_target)


def test_a_label_map_without_class_zero() -> None:
    labels = np.where(LABELS == 0, CLASS_IDS[0], LABELS)  # classes 3, 7, 12, 40 only
    binary = SupervisedFullSpectrumBandSelector(num_spectral_bands=N_BANDS)
    with pytest.raises(LabelError, match=r"positive_label=c\).*or multiclass=True"):
        binary.fit(CUBE, labels)
    assert _multiclass().fit(CUBE, labels).is_initialized


def test_bad_label_situations_are_label_errors() -> None:
    one_left = np.where(LABELS == CLASS_IDS[0], CLASS_IDS[0], 0)
    with pytest.raises(LabelError, match="one class only"):
        _multiclass().fit(CUBE, one_left, ignore_label=0)
    with pytest.raises(LabelError, match="two different classes"):
        _multiclass().fit(CUBE, LABELS, positive_label=7, ignore_label=7)
    with pytest.raises(LabelError, match="positive_label=5"):
        _multiclass().fit(CUBE, LABELS, positive_label=5)
    with pytest.raises(LabelError, match="positive_label=0"):  # present, but only among the ignored pixels
        SupervisedFullSpectrumBandSelector(num_spectral_bands=N_BANDS).fit(
            CUBE, np.where(LABELS == 0, 255, LABELS), positive_label=0, ignore_label=255
        )


def test_fit_node_applies_the_label_rule() -> None:
    by_fit_node = _multiclass()
    assert fit_node(by_fit_node, CUBE, LABELS, SCENE.wavelengths_nm, ignore_label=0)
    assert (
        by_fit_node.selected_indices.tolist()
        == _multiclass().fit(CUBE, LABELS, ignore_label=0).selected_indices.tolist()
    )
    one_vs_rest = SupervisedFullSpectrumBandSelector(num_spectral_bands=N_BANDS, criterion="separability")
    fit_node(one_vs_rest, CUBE, LABELS, positive_label=CLASS_IDS[1], ignore_label=0)
    direct = SupervisedFullSpectrumBandSelector(num_spectral_bands=N_BANDS, criterion="separability")
    direct.fit(CUBE, LABELS, positive_label=CLASS_IDS[1], ignore_label=0)
    assert one_vs_rest.selected_indices.tolist() == direct.selected_indices.tolist()
    # An unsupervised node uses the labels only to leave the ignored pixels out.
    garbage = CUBE.copy()
    garbage[LABELS == 0] = 1e6
    unsupervised = OrthogonalProjectionBandSelector(num_spectral_bands=N_BANDS, k=5)
    fit_node(unsupervised, garbage, LABELS, ignore_label=0)
    clean = OrthogonalProjectionBandSelector(num_spectral_bands=N_BANDS, k=5).fit(
        CUBE[LABELS != 0][None, None]
    )
    assert unsupervised.selected_indices.tolist() == clean.selected_indices.tolist()


@pytest.mark.parametrize("cls", [OrthogonalProjectionBandSelector, CorrelationClusterBandSelector])
def test_unsupervised_nodes_fit_with_ignored_pixels(cls: type) -> None:
    garbage = CUBE.copy()
    garbage[LABELS == 0] = np.nan
    node = cls(num_spectral_bands=N_BANDS, k=4).fit(
        garbage, SCENE.wavelengths_nm, mask=LABELS, ignore_label=0
    )
    same = cls(num_spectral_bands=N_BANDS, k=4).fit(CUBE[LABELS != 0][None, None])
    assert node.selection(SCENE.wavelengths_nm) == same.selection(SCENE.wavelengths_nm)
    with pytest.raises(LabelError, match="mask"):
        cls(num_spectral_bands=N_BANDS, k=4).fit(CUBE, ignore_label=0)
