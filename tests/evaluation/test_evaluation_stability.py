"""Band stability: an unstable synthetic case is flagged, a strongly planted band is stable."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import image as mpl_image

from bandselect.errors import ConfigError, InputError, LabelError
from bandselect.evaluation import band_stability, consistency_index, tolerant_matches
from bandselect.reports import plot_band_stability, save_figure

N_BANDS = 40
WAVELENGTHS = np.linspace(400.0, 790.0, N_BANDS)


def fisher_top_k(k: int):
    """Top-k bands by the Fisher ratio (mu1 - mu0)^2 / (var1 + var0), in NumPy: no selector needed."""

    def select(cube: np.ndarray, mask: np.ndarray, wavelengths: np.ndarray) -> np.ndarray:
        pixels = cube.reshape(-1, cube.shape[-1])
        labels = np.asarray(mask).reshape(-1) > 0
        positive, negative = pixels[labels], pixels[~labels]
        fisher = (positive.mean(0) - negative.mean(0)) ** 2 / (positive.var(0) + negative.var(0))
        return np.argsort(-fisher, kind="stable")[:k]

    return select


def scene(effects: dict[int, float], seed: int = 0, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Independent unit-noise bands; positives (scattered, 15 %) shifted by ``effects[band]``."""
    rng = np.random.default_rng(seed)
    cube = rng.normal(size=(size, size, N_BANDS))
    mask = rng.random((size, size)) < 0.15
    shift = np.zeros(N_BANDS)
    for band, effect in effects.items():
        shift[band] = effect
    cube[mask] += shift
    return cube, mask


def test_consistency_index_known_values() -> None:
    assert tolerant_matches(np.array([1, 5, 9]), np.array([2, 5, 20]), 1) == 2
    assert tolerant_matches(np.array([1, 5, 9]), np.array([2, 5, 20]), 0) == 1
    assert consistency_index(np.array([1, 2, 3]), np.array([1, 2, 3]), 40) == pytest.approx(1.0)
    # Kuncheva: (r C - k^2) / (k (C - k)) with r = 1, C = 40, k = 3
    assert consistency_index(np.array([1, 2, 3]), np.array([3, 10, 20]), 40) == pytest.approx(
        (40 - 9) / (3 * 37)
    )
    with pytest.raises(ConfigError, match="tolerance"):
        consistency_index(np.arange(10), np.arange(10), 20, tolerance_bands=1)


def test_many_equally_informative_bands_are_flagged_unstable(tmp_path) -> None:
    cube, mask = scene(dict.fromkeys(range(N_BANDS), 0.3))
    result = band_stability(fisher_top_k(3), cube, mask, WAVELENGTHS, n_bootstrap=20, n_blocks=(4, 4), seed=0)
    assert result.unstable
    assert result.score < 0.5
    assert result.selections.shape == (20, 3) and result.frequency.shape == (N_BANDS,)
    assert result.frequency.sum() == pytest.approx(3.0)
    assert result.frequency.max() < 0.9  # no band is always chosen
    assert "<" in result.reason
    fig = plot_band_stability(
        WAVELENGTHS, result.frequency, result.selected, result.unstable, reason=result.reason
    )
    path = save_figure(fig, tmp_path / "unstable.png")
    assert float(mpl_image.imread(path)[..., :3].var()) > 0
    assert any("UNSTABLE" in text.get_text() for text in fig.axes[0].texts)


def test_pure_noise_labels_are_flagged_unstable() -> None:
    cube, mask = scene({})
    result = band_stability(fisher_top_k(3), cube, mask, WAVELENGTHS, n_bootstrap=15, seed=1)
    assert result.unstable and result.score < 0.3


def test_strong_single_band_is_stable() -> None:
    cube, mask = scene({17: 3.0})
    result = band_stability(fisher_top_k(1), cube, mask, WAVELENGTHS, n_bootstrap=20, seed=0)
    assert not result.unstable
    assert result.selected.tolist() == [17]
    assert result.frequency[17] == 1.0 and result.score == pytest.approx(1.0)
    np.testing.assert_array_equal(result.pick_reproducibility, [1.0])


def test_three_planted_bands_are_stable_and_neighbours_count_as_the_same_pick() -> None:
    cube, mask = scene({5: 3.0, 20: 2.5, 33: 2.0})
    result = band_stability(
        fisher_top_k(3), cube, mask, WAVELENGTHS, n_bootstrap=20, block_size=(12, 12), seed=2
    )
    assert not result.unstable and result.score > 0.9
    assert sorted(result.selected.tolist()) == [5, 20, 33]
    # Two neighbouring bands with the same signal: the top pick alternates between them. Exact
    # matching sees an unstable selection; the ±1 band tolerance counts them as the same pick.
    twins, twin_mask = scene({20: 2.0, 21: 2.0}, seed=4)
    tolerant = band_stability(fisher_top_k(1), twins, twin_mask, WAVELENGTHS, n_bootstrap=20, seed=3)
    exact = band_stability(
        fisher_top_k(1), twins, twin_mask, WAVELENGTHS, n_bootstrap=20, seed=3, tolerance_bands=0
    )
    assert set(np.flatnonzero(exact.frequency)) == {20, 21}
    assert exact.unstable and exact.score < 0.5
    assert not tolerant.unstable and tolerant.score == pytest.approx(1.0)


def test_bootstrap_over_acquisitions() -> None:
    acquisitions = [scene({9: 3.0}, seed=seed, size=24) for seed in range(5)]
    result = band_stability(fisher_top_k(1), acquisitions, wavelengths=WAVELENGTHS, n_bootstrap=10, seed=0)
    assert not result.unstable and result.selected.tolist() == [9]
    noisy = [scene({}, seed=seed, size=24) for seed in range(5)]
    assert band_stability(fisher_top_k(3), noisy, wavelengths=WAVELENGTHS, n_bootstrap=10, seed=0).unstable


def test_bad_inputs_are_typed_errors() -> None:
    cube, mask = scene({3: 2.0}, size=24)
    with pytest.raises(InputError, match="expected 3 bands, as on the full data"):
        calls = iter(range(100))
        band_stability(lambda c, m, w: np.arange(3 if next(calls) == 0 else 2), cube, mask, WAVELENGTHS)
    with pytest.raises(InputError, match="distinct indices"):
        band_stability(lambda c, m, w: np.array([0, 0, 1]), cube, mask, WAVELENGTHS)
    with pytest.raises(ConfigError, match="at least 2"):
        band_stability(fisher_top_k(1), [(cube, mask)], wavelengths=WAVELENGTHS)
    single = np.zeros((24, 24), dtype=bool)
    single[0, 0] = True  # one positive pixel: most block resamples lose it
    with pytest.raises(LabelError, match="missing a class"):
        band_stability(fisher_top_k(1), cube, single, WAVELENGTHS, n_blocks=(6, 6), max_redraws=5)


def test_with_the_supervised_full_spectrum_selector() -> None:
    selectors = pytest.importorskip("bandselect.selectors", reason="bandselect.selectors has not landed")
    selector_class = selectors.SupervisedFullSpectrumBandSelector

    def select(cube: np.ndarray, mask: np.ndarray, wavelengths: np.ndarray) -> np.ndarray:
        selector = selector_class(num_spectral_bands=cube.shape[-1], k=3, criterion="separability")
        fitted = selector.fit(cube[None].astype(np.float32), mask[None, ..., None], wavelengths)
        return fitted.selected_indices.numpy()

    cube, mask = scene({5: 3.0, 20: 2.5, 33: 2.0}, size=32)
    result = band_stability(select, cube, mask, WAVELENGTHS, n_bootstrap=8, seed=0)
    assert sorted(result.selected.tolist()) == [5, 20, 33]
    assert not result.unstable


def test_an_ignore_label_is_no_class_a_resample_must_hold() -> None:
    """Tiles whose pixels that count nowhere carry an ignore label (the comparison's no-data pixels):
    resamples without them are kept, so the bootstrap is not conditioned on the few tiles that hold
    them (about 1 − (11/12)¹² = 65 % of resamples draw the one such tile of 12)."""
    rng = np.random.default_rng(0)
    tiles = []
    for number in range(12):
        cube = rng.normal(size=(8, 8, 12))
        labels = (rng.random((8, 8)) < 0.3).astype(np.int64)
        if number == 5:
            labels[:2] = 2  # the ignored pixels, in one tile
        tiles.append((cube, labels))
    held: list[bool] = []

    def select(cube: np.ndarray, mask: np.ndarray, wavelengths: np.ndarray) -> np.ndarray:
        held.append(bool((mask == 2).any()))
        return np.array([0, 1, 2])

    band_stability(select, tiles, n_bootstrap=200, seed=1, ignore_label=2)
    share = np.mean(held[1:])  # the first call is the full data
    assert 0.5 < share < 0.8
    held.clear()
    with pytest.raises(LabelError, match="resamples missing a class"):  # as a class, it had to be drawn
        band_stability(select, tiles, n_bootstrap=200, seed=1)
