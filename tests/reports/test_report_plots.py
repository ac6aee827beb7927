"""plots: every figure renders to a PNG that opens and is not blank, with the labels a reader needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpl_image
from matplotlib.figure import Figure

from bandselect.errors import InputError, ShapeError
from bandselect.reports import (
    plot_band_scores,
    plot_band_stability,
    plot_leaderboard,
    plot_rgb_previews,
    plot_temperature_schedule,
    plot_weight_evolution,
    save_figure,
)

WAVELENGTHS = np.linspace(430.0, 860.0, 60)


def _all_text(fig: Figure) -> str:
    parts = [text.get_text() for text in fig.findobj(lambda artist: hasattr(artist, "get_text"))]
    return "\n".join(str(part) for part in parts)


def _check_png(fig: Figure, path: Path) -> np.ndarray:
    save_figure(fig, path)
    assert path.stat().st_size > 0
    pixels = mpl_image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 300
    assert float(pixels[..., :3].var()) > 0.0  # not a blank image
    return pixels


def test_band_scores(tmp_path) -> None:
    rng = np.random.default_rng(0)
    scores = {"fisher": rng.random(60), "auc": 0.5 + 0.5 * rng.random(60)}
    fig = plot_band_scores(WAVELENGTHS, scores, [10, 11, 40], windows_nm=[(500.0, 560.0)])
    _check_png(fig, tmp_path / "scores.png")
    ax = fig.axes[0]
    assert "nm" in ax.get_xlabel()
    text = _all_text(fig)
    for wavelength in WAVELENGTHS[[10, 11, 40]]:
        assert f"{wavelength:.0f}" in text
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"fisher", "auc", "search window", "selected band"} <= set(labels)
    plotted = {line.get_label(): line for line in ax.get_lines()}
    for name, values in scores.items():  # each score min-max scaled to [0, 1] across bands
        np.testing.assert_array_equal(plotted[name].get_xdata(), WAVELENGTHS)
        np.testing.assert_allclose(plotted[name].get_ydata(), (values - values.min()) / np.ptp(values))


def test_band_scores_rejects_mismatched_scores() -> None:
    with pytest.raises(ShapeError):
        plot_band_scores(WAVELENGTHS, {"fisher": np.ones(59)}, [1])
    with pytest.raises(InputError, match="indices"):
        plot_band_scores(WAVELENGTHS, {"fisher": np.ones(60)}, [60])


def test_temperature_schedule(tmp_path) -> None:
    temperatures = np.maximum(5.0 * 0.85 ** np.arange(30), 0.2)
    fig = plot_temperature_schedule(temperatures, 0.2)
    _check_png(fig, tmp_path / "temperature.png")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "epoch" and "temperature" in ax.get_ylabel()
    assert ax.get_yscale() == "log"


def test_weight_evolution(tmp_path) -> None:
    rng = np.random.default_rng(2)
    weights = rng.normal(size=(25, 60)) * 0.1
    weights[:, 33] += np.linspace(0.0, 2.0, 25)
    fig = plot_weight_evolution(weights, WAVELENGTHS, 3)
    _check_png(fig, tmp_path / "weights.png")
    assert "nm" in fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel() == "epoch"
    assert fig.axes[1].get_ylabel() == "channel weight"  # the colour bar
    assert f"{WAVELENGTHS[33]:.0f}" in _all_text(fig)
    with pytest.raises(ShapeError):
        plot_weight_evolution(weights[:, :10], WAVELENGTHS, 3)


def test_weight_evolution_marks_the_kept_epoch_and_the_selected_bands(tmp_path) -> None:
    # A best-epoch restore: the selection comes from epoch 8, not from the last epoch's weights.
    weights = np.zeros((12, 60))
    weights[:, 5] = 2.9
    fig = plot_weight_evolution(weights, WAVELENGTHS, 3, selected=[40, 10, 20], kept_epoch=7)
    _check_png(fig, tmp_path / "kept.png")
    title = fig.get_suptitle()
    picked = ", ".join(f"{WAVELENGTHS[i]:.0f}" for i in (10, 20, 40))
    assert title.endswith(f"selected (kept epoch 8): {picked} nm")  # not the last epoch's top band
    assert "kept: epoch 8" in _all_text(fig)
    with pytest.raises(InputError):
        plot_weight_evolution(weights, WAVELENGTHS, 3, kept_epoch=12)


def test_weight_evolution_tells_the_searched_bands_from_the_trained_ones(tmp_path) -> None:
    weights = np.zeros((12, 60))
    weights[:, [10, 20, 30]] = 1.0  # what training gave; the search then moved 30 to 45
    fig = plot_weight_evolution(
        weights, WAVELENGTHS, 3, selected=[10, 20, 45], kept_epoch=11, trained=[30, 10, 20]
    )
    _check_png(fig, tmp_path / "searched.png")
    nm = {i: f"{WAVELENGTHS[i]:.0f}" for i in (10, 20, 30, 45)}
    title = fig.get_suptitle()
    assert f"selected after the search on the validation rows: {nm[10]}, {nm[20]}, {nm[45]} nm" in title
    assert title.endswith(f"trained (kept epoch 12): {nm[10]}, {nm[20]}, {nm[30]} nm")
    lines = fig.axes[0].get_lines()
    open_marks = [line for line in lines if line.get_markerfacecolor() == "none"]
    assert len(open_marks) == 1 and list(open_marks[0].get_xdata()) == [
        WAVELENGTHS[30]
    ]  # the moved band only
    # Unmoved: one line of filled marks and the plain title.
    same = plot_weight_evolution(
        weights, WAVELENGTHS, 3, selected=[10, 20, 30], kept_epoch=11, trained=[10, 20, 30]
    )
    assert "search" not in same.get_suptitle()
    assert not [line for line in same.axes[0].get_lines() if line.get_markerfacecolor() == "none"]


def test_rgb_previews(tmp_path) -> None:
    rng = np.random.default_rng(3)
    previews = {name: rng.random((20, 30, 3)) for name in ("separability", "mrmr", "random")}
    labels = {"separability": "R 650 nm, G 550 nm, B 450 nm"}
    fig = plot_rgb_previews(previews, labels)
    _check_png(fig, tmp_path / "previews.png")
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["separability", "mrmr", "random"]
    assert fig.axes[0].get_xlabel() == "R 650 nm, G 550 nm, B 450 nm"


def test_leaderboard(tmp_path) -> None:
    rows = [
        {"name": "mrmr", "auroc": 0.981},
        {"name": "separability", "auroc": 0.995},
        {"name": "all bands", "auroc": 0.998, "kind": "all_bands"},
        {"name": "random 3 bands", "auroc": 0.97, "auroc_std": 0.02, "kind": "random"},
        {"name": "random 5 bands", "auroc": 0.975, "auroc_std": 0.01, "kind": "random"},
    ]
    fig = plot_leaderboard(rows)
    _check_png(fig, tmp_path / "leaderboard.png")
    ax = fig.axes[0]
    heights = {label.get_text(): y for label, y in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True)}
    assert heights["separability"] > heights["mrmr"]  # best at the top
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    # The legend sits below the bars, not beside them (it took half the width there).
    assert ax.get_legend() is None and fig.legends[0].get_window_extent().y1 < ax.get_window_extent().y0
    # One dash pattern per random baseline (a multi-class comparison has one per k).
    random_lines = [line for line in ax.get_lines() if line.get_label().startswith("random")]
    assert len({str(line.get_linestyle()) for line in random_lines}) == 2
    assert "all bands: 0.9980" in legend and "random 3 bands: 0.9700 ± 0.0200" in legend
    assert "AUROC" in ax.get_xlabel()
    with pytest.raises(InputError, match="kind"):
        plot_leaderboard([{"name": "x", "auroc": 0.9, "kind": "oracle"}])


def test_band_stability_flag(tmp_path) -> None:
    frequency = np.full(60, 0.05)
    frequency[[12, 30]] = 0.4
    unstable = plot_band_stability(WAVELENGTHS, frequency, [12, 30, 31], True, score=0.2, reason="too low")
    _check_png(unstable, tmp_path / "unstable.png")
    assert "UNSTABLE" in _all_text(unstable)
    assert "selection frequency" in unstable.axes[0].get_ylabel() and "nm" in unstable.axes[0].get_xlabel()
    stable = plot_band_stability(WAVELENGTHS, frequency, [12], False)
    _check_png(stable, tmp_path / "stable.png")
    assert "UNSTABLE" not in _all_text(stable) and "stable" in _all_text(stable)


def test_columns_sit_at_true_wavelengths_and_lines_break_at_gaps() -> None:
    from matplotlib.collections import QuadMesh

    from bandselect.reports.plots import band_edges, spectral_gaps

    # 10 nm steps with a 300 nm water-absorption gap between 800 and 1100 nm.
    wl = np.concatenate([np.arange(400.0, 810.0, 10.0), np.arange(1100.0, 1310.0, 10.0)])
    assert spectral_gaps(wl).tolist() == [40]
    edges = band_edges(wl)
    assert edges[40].tolist() == [795.0, 805.0] and edges[41].tolist() == [1095.0, 1105.0]
    weights = np.zeros((3, wl.size))
    weights[:, 45] = 1.0  # the band at 1140 nm
    fig = plot_weight_evolution(weights, wl, 1, selected=[45])
    (mesh,) = [c for c in fig.axes[0].collections if isinstance(c, QuadMesh)]
    row = mesh.get_array().reshape(3, -1)[0]
    x = mesh.get_coordinates()[0, :, 0]  # cell edges along wavelength
    hot = int(np.nanargmax(np.ma.filled(row, np.nan)))
    assert (x[hot], x[hot + 1]) == (1135.0, 1145.0)  # the bright column is on 1140 nm, not shifted
    fig = plot_band_scores(wl, {"fisher": np.arange(wl.size, dtype=float)}, [45])
    line = fig.axes[0].get_lines()[0]
    x_line, y_line = line.get_xdata(), line.get_ydata()
    gap = np.flatnonzero(np.isnan(y_line))
    assert gap.size == 1 and 800.0 < x_line[gap[0]] < 1100.0  # the curve is not drawn across the gap


def test_score_curves_draw_a_selector_score_once_when_it_is_the_campaigns() -> None:
    from bandselect.reports.figures import score_curves
    from bandselect.selectors import SupervisedFullSpectrumBandSelector
    from bandselect.stats import statistics_of

    rng = np.random.default_rng(0)
    cube = rng.normal(size=(1, 30, 30, 12)).astype(np.float32)
    mask = rng.random((1, 30, 30)) < 0.3
    cube[..., 5] += 1.5 * mask
    wavelengths = np.linspace(450.0, 900.0, 12)
    node = SupervisedFullSpectrumBandSelector(num_spectral_bands=12, k=3)
    node.fit(cube, mask, wavelengths)
    selection = node.selection(wavelengths)
    curves = score_curves(selection, statistics_of(cube, mask))
    # Fisher, AUC and MI of these statistics are the selector's own: drawn once, under their names.
    assert {"fisher", "auc", "mi"} <= set(curves) and not {"selector fisher", "selector auc"} & set(curves)
    assert any(name.startswith("selector ") for name in curves)  # its combined score still drawn
    # Statistics of other pixels: the selector's curves differ, so both are drawn.
    other = statistics_of(cube[:, :15], mask[:, :15])
    assert "selector fisher" in score_curves(selection, other)


def test_preview_titles_break_names_after_underscores_not_inside_words() -> None:
    from bandselect.reports.plots import wrap_name

    assert wrap_name("supervised_windowed_rgb_separability", 28) == "supervised_windowed_rgb_\nseparability"
    assert wrap_name("random 3 bands (20 draws)", 12) == "random 3\nbands (20\ndraws)"
    assert wrap_name("soft_trained", 28) == "soft_trained"
    assert wrap_name("x" * 40, 28) == "x" * 40  # a longer piece keeps its own line, unbroken
