"""Figures for band selection runs: scores, temperature, weights, previews, leaderboard, stability.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global state, no
GUI backend, safe in worker threads); write it with :func:`save_figure`. Axes carry units, the
figures have titles and legends, and sizes grow with the content so labels do not collide.
"""

from __future__ import annotations

import itertools
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FormatStrFormatter

from bandselect.errors import InputError, ShapeError
from bandselect.render import atomic_path, to_uint8_image
from bandselect.spectral import validate_wavelengths

__all__ = [
    "plot_band_scores",
    "plot_band_stability",
    "plot_leaderboard",
    "plot_rgb_previews",
    "plot_temperature_schedule",
    "plot_weight_evolution",
    "save_figure",
]

DEFAULT_DPI = 110
#: Colours that stay distinct for colour-blind readers (Okabe–Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
PICK_COLOUR = "#D55E00"
WINDOW_COLOUR = "#999999"


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = DEFAULT_DPI) -> Path:
    """Write a figure as PNG, atomically (temporary file, then :func:`os.replace`).

    Parameters
    ----------
    fig
        A figure from this module (or any :class:`~matplotlib.figure.Figure`).
    path
        Destination ``.png``; parent folders are created.
    dpi
        Resolution of the raster.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return Path(path)


def _vector(values: object, what: str, length: int | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or (length is not None and array.size != length):
        expected = f"a 1-D array of {length} values" if length is not None else "a 1-D array"
        raise ShapeError(
            what, expected=expected, found=f"shape {array.shape}", fix=f"pass one {what} value per band"
        )
    return array


def _indices(values: object, n_bands: int, what: str) -> np.ndarray:
    array = np.asarray(values if values is not None else [], dtype=np.int64).reshape(-1)
    if np.any(array < 0) or np.any(array >= n_bands):
        raise InputError(
            what,
            expected=f"band indices in [0, {n_bands})",
            found=array.tolist(),
            fix="pass indices into the wavelength array, not wavelengths",
        )
    return array


def _band_width(wavelengths_nm: np.ndarray) -> float:
    return float(np.median(np.diff(wavelengths_nm))) if wavelengths_nm.size > 1 else 10.0


#: A step between neighbouring bands this many times the median step is a spectral gap (water-absorption
#: bands a sensor or its processing dropped): plots leave it empty instead of bridging it.
GAP_FACTOR = 2.0


def spectral_gaps(wavelengths_nm: np.ndarray) -> np.ndarray:
    """Indices ``i`` where a gap lies between band ``i`` and band ``i + 1`` (see :data:`GAP_FACTOR`)."""
    if wavelengths_nm.size < 3:
        return np.zeros(0, dtype=np.int64)
    steps = np.diff(wavelengths_nm)
    return np.flatnonzero(steps > GAP_FACTOR * float(np.median(steps))).astype(np.int64)


def band_edges(wavelengths_nm: np.ndarray) -> np.ndarray:
    """``(C, 2)`` lower and upper edge of each band's column: half-way to its neighbours, or half the median
    step at the sensor's ends and beside a gap, so every column sits on its true wavelength."""
    half = _band_width(wavelengths_nm) / 2.0
    middles = (wavelengths_nm[:-1] + wavelengths_nm[1:]) / 2.0
    lower = np.concatenate([[wavelengths_nm[0] - half], middles])
    upper = np.concatenate([middles, [wavelengths_nm[-1] + half]])
    for gap in spectral_gaps(wavelengths_nm):
        upper[gap] = wavelengths_nm[gap] + half
        lower[gap + 1] = wavelengths_nm[gap + 1] - half
    return np.stack([lower, upper], axis=1)


def _broken_at_gaps(wavelengths_nm: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The curve with a NaN point inserted in every spectral gap, so the line is not drawn across it."""
    gaps = spectral_gaps(wavelengths_nm)
    if gaps.size == 0:
        return wavelengths_nm, values
    where = gaps + 1
    x = np.insert(wavelengths_nm, where, (wavelengths_nm[gaps] + wavelengths_nm[gaps + 1]) / 2.0)
    return x, np.insert(values.astype(np.float64), where, np.nan)


def _shade_gaps(ax: Any, wavelengths_nm: np.ndarray) -> None:
    """Hatch the spectral gaps (no band measured there) so an empty stretch reads as missing data."""
    edges = band_edges(wavelengths_nm)
    for number, gap in enumerate(spectral_gaps(wavelengths_nm)):
        ax.axvspan(
            edges[gap, 1],
            edges[gap + 1, 0],
            facecolor="none",
            edgecolor="#BBBBBB",
            hatch="//",
            linewidth=0,
            label="no bands (gap)" if number == 0 else None,
        )


def _label_groups(wavelengths: np.ndarray, min_gap: float) -> list[list[float]]:
    """Group sorted wavelengths closer than ``min_gap`` so their labels share one text."""
    groups: list[list[float]] = []
    for wavelength in np.sort(wavelengths):
        if groups and wavelength - groups[-1][-1] < min_gap:
            groups[-1].append(float(wavelength))
        else:
            groups.append([float(wavelength)])
    return groups


def _mark_picks(ax: Any, wavelengths_nm: np.ndarray, picks: np.ndarray, *, label: str) -> None:
    """Vertical lines at the picked bands with their wavelengths written just above the axes.

    Picks closer than 3 % of the spectral range share one label (``"651, 656 nm"``) so adjacent bands
    do not print on top of each other.
    """
    transform = ax.get_xaxis_transform()  # x in data units, y in axes fraction
    for rank, index in enumerate(picks):
        ax.axvline(
            wavelengths_nm[index],
            color=PICK_COLOUR,
            linestyle="--",
            linewidth=1.4,
            label=label if rank == 0 else None,
            zorder=3,
        )
    spectral_range = float(np.ptp(wavelengths_nm)) or 1.0
    for group in _label_groups(wavelengths_nm[picks], 0.03 * spectral_range):
        ax.text(
            float(np.mean(group)),
            1.01,
            ", ".join(f"{wavelength:.0f}" for wavelength in group) + " nm",
            transform=transform,
            rotation=90,
            ha="center",
            va="bottom",
            fontsize=8,
            color=PICK_COLOUR,
        )


def plot_band_scores(
    wavelengths_nm: Sequence[float] | np.ndarray,
    scores: Mapping[str, Sequence[float] | np.ndarray],
    picks: Sequence[int] | np.ndarray,
    windows_nm: Sequence[Sequence[float]] | None = None,
    *,
    normalize: bool = True,
    title: str = "Band scores and selected bands",
) -> Figure:
    """Per-band scores against wavelength, with the picks marked and the search windows shaded.

    Parameters
    ----------
    wavelengths_nm
        ``(C,)`` band centres in nm.
    scores
        Score name → ``(C,)`` values (e.g. ``{"fisher": ..., "auc": ..., "mi": ...}``).
    picks
        Selected band indices; each gets a dashed vertical line and its wavelength as a label.
    windows_nm
        Optional ``(low_nm, high_nm)`` windows the picks were searched in; drawn as grey spans.
    normalize
        Rescale each score to ``[0, 1]`` (min–max over bands) so scores of different units share one
        axis. Switch off when a single score is plotted in its own units.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    wl = validate_wavelengths(wavelengths_nm)
    if not scores:
        raise InputError(
            "scores",
            expected="at least one named score",
            found="an empty mapping",
            fix="pass {'fisher': ...}",
        )
    picks_array = _indices(picks, wl.size, "picks")
    fig = Figure(figsize=(9.0, 4.6), layout="constrained")
    ax = fig.add_subplot()
    if windows_nm:
        for number, window in enumerate(windows_nm):
            low, high = float(window[0]), float(window[1])
            ax.axvspan(
                low, high, color=WINDOW_COLOUR, alpha=0.18, label="search window" if number == 0 else None
            )
    for number, (name, values) in enumerate(scores.items()):
        series = _vector(values, f"score '{name}'", wl.size)
        if normalize:
            finite = series[np.isfinite(series)]
            span = float(finite.max() - finite.min()) if finite.size else 0.0
            series = (series - finite.min()) / span if span > 0 else np.zeros_like(series)
        ax.plot(*_broken_at_gaps(wl, series), color=PALETTE[number % len(PALETTE)], linewidth=1.8, label=name)
    _shade_gaps(ax, wl)
    _mark_picks(ax, wl, picks_array, label="selected band")
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel("score (min–max scaled per score, 0–1)" if normalize else "score")
    ax.set_xlim(wl.min() - _band_width(wl), wl.max() + _band_width(wl))
    if normalize:
        ax.set_ylim(-0.03, 1.08)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    picked = ", ".join(f"{wl[i]:.0f}" for i in picks_array)
    fig.suptitle(f"{title}\nselected: {picked} nm" if picked else title, fontsize=12)
    return fig


def plot_temperature_schedule(
    temperatures: Sequence[float] | np.ndarray,
    temperature_min: float | None = None,
    *,
    title: str = "Temperature schedule",
) -> Figure:
    """Temperature per epoch of a relaxed (Gumbel/concrete) selector, with its floor marked.

    Parameters
    ----------
    temperatures
        ``(E,)`` temperature at each epoch (dimensionless).
    temperature_min
        The schedule's floor, drawn as a dashed horizontal line.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    values = _vector(temperatures, "temperature")
    if values.size == 0:
        raise InputError("temperatures", expected="at least one epoch", found="none", fix="train first")
    epochs = np.arange(1, values.size + 1)
    fig = Figure(figsize=(7.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(epochs, values, marker="o" if values.size <= 40 else None, color=PALETTE[0], label="temperature")
    if temperature_min is not None:
        floor_label = f"minimum {temperature_min:g}"
        ax.axhline(float(temperature_min), color=PICK_COLOUR, linestyle="--", label=floor_label)
    positive = values[values > 0]
    floor = [float(temperature_min)] if temperature_min is not None and temperature_min > 0 else []
    if positive.size == values.size and np.ptp(np.log10(np.concatenate([positive, floor]))) >= 1.0:
        ax.set_yscale("log")  # geometric schedules are straight lines on a log axis
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.set_xlabel("epoch")
    ax.set_ylabel("temperature (dimensionless)")
    ax.set_xlim(0.5, values.size + 0.5)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(loc="upper right", fontsize=9)
    fig.suptitle(title, fontsize=12)
    return fig


#: The triangles above the weights heatmap that mark bands (filled: selected; open: trained, moved).
_MARKS: dict[str, Any] = {
    "linestyle": "none",
    "marker": "v",
    "markersize": 9,
    "markeredgecolor": PICK_COLOUR,
    "clip_on": False,
}


def plot_weight_evolution(
    weights: np.ndarray,
    wavelengths_nm: Sequence[float] | np.ndarray,
    n_select: int,
    *,
    selected: Sequence[int] | np.ndarray | None = None,
    kept_epoch: int | None = None,
    trained: Sequence[int] | np.ndarray | None = None,
    title: str = "Channel weights during training",
) -> Figure:
    """Heatmap of channel weights, epoch × wavelength, with the selected bands marked.

    Parameters
    ----------
    weights
        ``(E, C)`` weights per epoch and band (any real scale; the colour bar shows it).
    wavelengths_nm
        ``(C,)`` band centres in nm.
    n_select
        How many bands the selector keeps.
    selected
        The bands finally selected (e.g. the hard top-k of a kept best epoch). None: the
        ``n_select`` largest weights of the marked epoch. They are marked with triangles above the
        heatmap and listed in the title.
    kept_epoch
        Zero-based row of the epoch whose weights were kept (a best-epoch restore), outlined on the
        heatmap. None: the last epoch.
    trained
        The bands training gave before the search after it (``refine_moves``). Where they differ from
        ``selected``, the trained bands are marked with open triangles and listed in the title, so the
        heatmap's bright columns are not mistaken for the final bands.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    wl = validate_wavelengths(wavelengths_nm)
    matrix = np.asarray(weights, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != wl.size or matrix.shape[0] == 0:
        raise ShapeError(
            "weights",
            expected=f"an (epochs, {wl.size}) array",
            found=f"shape {matrix.shape}",
            fix="stack one row of channel weights per epoch",
        )
    if not 0 < int(n_select) <= wl.size:
        raise InputError(
            "n_select", expected=f"an integer in [1, {wl.size}]", found=n_select, fix="pass the selector's k"
        )
    n_epochs = matrix.shape[0]
    row = n_epochs - 1 if kept_epoch is None else int(kept_epoch)
    if not 0 <= row < n_epochs:
        raise InputError(
            "kept_epoch",
            expected=f"a row in [0, {n_epochs - 1}]",
            found=kept_epoch,
            fix="pass the zero-based index of the kept epoch in the weights",
        )
    fig = Figure(figsize=(9.0, 4.2 + min(n_epochs, 60) * 0.02), layout="constrained")
    ax = fig.add_subplot()
    half = _band_width(wl) / 2.0
    # One column per band at its true wavelength (pcolormesh over band edges; gaps stay empty): with
    # imshow the columns would be spread evenly and sit tens of nm off around absorption gaps.
    edges = band_edges(wl)
    x = np.empty(2 * wl.size)
    x[0::2], x[1::2] = edges[:, 0], edges[:, 1]
    padded = np.full((n_epochs, 2 * wl.size - 1), np.nan)
    padded[:, 0::2] = matrix  # the cells between one band's upper edge and the next one's lower edge
    y = np.arange(0.5, n_epochs + 1.0, 1.0)
    image = ax.pcolormesh(x, y, np.ma.masked_invalid(padded), cmap="viridis", shading="flat")
    ax.set_xlim(wl[0] - half, wl[-1] + half)
    _shade_gaps(ax, wl)
    colourbar = fig.colorbar(image, ax=ax, pad=0.02)
    colourbar.set_label("channel weight")
    if selected is None:
        picks = np.argsort(-matrix[row], kind="stable")[: int(n_select)]
    else:
        picks = np.asarray(selected, dtype=np.int64)
    picks = np.sort(picks)
    before = None if trained is None else np.sort(np.asarray(trained, dtype=np.int64))
    moved = np.empty(0, np.int64) if before is None else np.setdiff1d(before, picks)
    top = n_epochs + 0.5
    if moved.size:  # the trained bands the search moved away from: open marks
        ax.plot(wl[moved], np.full(moved.size, top), **_MARKS, markerfacecolor="none", markeredgewidth=1.5)
    ax.plot(
        wl[picks], np.full(picks.size, top), **{**_MARKS, "color": PICK_COLOUR, "markeredgecolor": "white"}
    )
    if kept_epoch is not None:
        # Epoch rows are drawn at y = 1..E (1-based, as the axis labels read).
        ax.axhspan(row + 0.5, row + 1.5, fill=False, edgecolor=PICK_COLOUR, linewidth=1.5)
        ax.annotate(
            f"kept: epoch {row + 1}",
            xy=(wl[-1] + half, row + 1),
            xytext=(-4, 0),
            textcoords="offset points",
            ha="right",
            va="center",
            color="white",
            fontsize=9,
        )
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel("epoch")
    ax.yaxis.get_major_locator().set_params(integer=True)
    picked = ", ".join(f"{wl[i]:.0f}" for i in picks)
    which = "selected" if selected is not None else f"top {int(n_select)} weights"
    when = "the last epoch" if kept_epoch is None else f"kept epoch {row + 1}"
    if not moved.size:
        fig.suptitle(f"{title}\n\u25bc {which} ({when}): {picked} nm", fontsize=12)
    else:
        trained_nm = ", ".join(f"{wl[i]:.0f}" for i in before)
        fig.suptitle(
            f"{title}\n\u25bc selected after the search on the validation rows: {picked} nm\n"
            f"\u25bd trained ({when}): {trained_nm} nm",
            fontsize=12,
        )
    return fig


def wrap_name(name: str, width: int) -> str:
    """``name`` on lines of at most ``width`` characters, broken after ``_`` or at spaces, never inside
    a word (``supervised_windowed_rgb_separability`` → ``supervised_windowed_rgb_`` / ``separability``);
    a longer piece keeps a line of its own."""
    tokens: list[tuple[str, str]] = []  # (piece, what joins it to the piece before on one line)
    for number, word in enumerate(name.split(" ")):
        pieces = word.split("_")
        for index, piece in enumerate(pieces):
            text = piece + ("_" if index < len(pieces) - 1 else "")
            tokens.append((text, " " if index == 0 and number > 0 else ""))
    lines: list[str] = []
    for text, glue in tokens:
        if lines and len(lines[-1]) + len(glue) + len(text) <= width:
            lines[-1] += glue + text
        else:
            lines.append(text)
    return "\n".join(lines)


def plot_rgb_previews(
    previews: Mapping[str, np.ndarray],
    band_labels: Mapping[str, str] | None = None,
    *,
    percentiles: Sequence[float] = (1, 99),
    title: str = "Composites per selector",
) -> Figure:
    """Side-by-side false-colour previews, one per selector, each with its bands written under it.

    Parameters
    ----------
    previews
        Selector name → ``(H, W, 3)`` float image (e.g. from :func:`bandselect.render.composite`).
    band_labels
        Selector name → caption such as ``"R 650 nm, G 550 nm, B 450 nm"``.
    percentiles
        Contrast stretch passed to :func:`bandselect.render.to_uint8_rgb`.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not previews:
        raise InputError(
            "previews", expected="at least one selector image", found="none", fix="pass {name: rgb}"
        )
    labels = dict(band_labels or {})
    count = len(previews)
    columns = min(count, 4)
    rows = int(np.ceil(count / columns))
    fig = Figure(figsize=(3.4 * columns, 3.7 * rows + 0.4), layout="constrained")
    for number, (name, rgb) in enumerate(previews.items()):
        ax = fig.add_subplot(rows, columns, number + 1)
        shown = to_uint8_image(np.asarray(rgb), percentiles)
        # Pixels without data (NaN) are transparent, over a hatched background, so that they are not
        # mistaken for dark pixels (water in the NIR is black too).
        nodata = shown.shape[-1] == 4
        ax.imshow(shown, interpolation="nearest")
        if nodata:
            ax.set_facecolor("white")
            ax.patch.set_hatch("////")
            ax.patch.set_edgecolor("0.6")
        ax.set_title(wrap_name(name, 28), fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
        caption = labels.get(name, "") + ("; hatched: no data" if nodata else "")
        ax.set_xlabel(textwrap.fill(caption, 34), fontsize=9)
    stretch = f"stretched {percentiles[0]:g}–{percentiles[1]:g} percentile per channel"
    fig.suptitle(f"{title} ({stretch})", fontsize=12)
    return fig


def plot_leaderboard(
    rows: Sequence[Mapping[str, Any]],
    *,
    measure: str = "auroc",
    measure_label: str = "AUROC",
    title: str = "Selector leaderboard",
) -> Figure:
    """Horizontal bars of a measure per selector, with the baselines drawn as reference lines.

    Parameters
    ----------
    rows
        One mapping per entry with keys ``"name"`` (str), ``measure`` (float), optionally
        ``f"{measure}_std"`` (float) and ``"kind"``: ``"selector"`` (default, a bar),
        ``"all_bands"`` (solid reference line) or ``"random"`` (dashed line with a ±std band).
    measure
        Key of the value to plot.
    measure_label
        Axis label of the value (AUROC is dimensionless, 0.5 = chance).
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Bars sorted best first; the x axis is zoomed to the data, so each bar carries its value.
    """
    selectors: list[tuple[str, float, float]] = []
    baselines: list[tuple[str, str, float, float]] = []
    for row in rows:
        if "name" not in row or measure not in row:
            raise InputError(
                "leaderboard row",
                expected=f"keys 'name' and '{measure}'",
                found=sorted(row),
                fix="build rows as {'name': ..., 'auroc': ..., 'kind': 'selector'}",
            )
        kind = str(row.get("kind", "selector"))
        value = float(row[measure])
        spread = float(row.get(f"{measure}_std", 0.0) or 0.0)
        if kind == "selector":
            selectors.append((str(row["name"]), value, spread))
        elif kind in ("all_bands", "random"):
            baselines.append((kind, str(row["name"]), value, spread))
        else:
            raise InputError(
                "leaderboard row kind",
                expected="'selector', 'all_bands' or 'random'",
                found=repr(kind),
                fix="mark baselines with kind='all_bands' or kind='random'",
            )
    if not selectors and not baselines:
        raise InputError("rows", expected="at least one row", found="none", fix="pass the leaderboard rows")
    selectors.sort(key=lambda item: -item[1])
    lows = [value - spread for _, value, spread in selectors] + [v - s for _, _, v, s in baselines]
    highs = [value + spread for _, value, spread in selectors] + [v + s for _, _, v, s in baselines]
    span = max(max(highs) - min(lows), 0.02)
    left = max(0.0, min(lows) - 0.35 * span)
    right = max(highs) + 0.25 * span
    if measure_label.upper().startswith("AUROC"):
        right = min(right, 1.0 + 0.12 * span)

    fig = Figure(figsize=(8.5, 1.4 + 0.5 * max(len(selectors), 2)), layout="constrained")
    ax = fig.add_subplot()
    positions = np.arange(len(selectors))[::-1]
    for position, (_name, value, spread) in zip(positions, selectors, strict=True):
        ax.barh(
            position,
            value - left,
            left=left,
            height=0.6,
            color=PALETTE[0],
            zorder=2,
            xerr=spread if spread > 0 else None,
            error_kw={"ecolor": "#333333", "capsize": 3},
        )
        # The value sits inside the bar's end, where no reference line or error bar can cover it.
        ax.text(
            value - 0.01 * span,
            position,
            f"{value:.4f}",
            va="center",
            ha="right",
            fontsize=9,
            color="white",
            fontweight="bold",
            zorder=4,
        )
    handles: list[Any] = [Patch(color=PALETTE[0], label="selector")]
    # One dash pattern per random baseline (a multi-class comparison draws one per k).
    dashes = itertools.cycle(["--", ":", "-.", (0, (5, 1, 1, 1, 1, 1))])
    for kind, name, value, spread in baselines:
        if kind == "all_bands":
            line = ax.axvline(value, color="#000000", linewidth=1.6, label=f"{name}: {value:.4f}", zorder=3)
        else:
            line = ax.axvline(
                value,
                color=PALETTE[1],
                linewidth=1.6,
                linestyle=next(dashes),
                label=f"{name}: {value:.4f} ± {spread:.4f}",
                zorder=3,
            )
            if spread > 0:
                ax.axvspan(value - spread, value + spread, color=PALETTE[1], alpha=0.2, zorder=0)
        handles.append(line)
    ax.set_yticks(positions, [textwrap.shorten(name, 40) for name, _, _ in selectors])
    ax.set_ylim(-0.7, max(len(selectors), 1) - 0.3)
    ax.set_xlim(left, right)
    ax.set_xlabel(f"{measure_label} (axis starts at {left:.3f})" if left > 0 else measure_label)
    ax.grid(True, axis="x", alpha=0.3)
    # Below the axes, not beside them: beside, the legend's long labels took half the width from the
    # bars, whose differences (often in the third decimal) need it.
    fig.legend(
        handles=handles, loc="outside lower center", ncols=min(len(handles), 2), fontsize=9, frameon=False
    )
    fig.suptitle(title, fontsize=12)
    return fig


def plot_band_stability(
    wavelengths_nm: Sequence[float] | np.ndarray,
    frequency: Sequence[float] | np.ndarray,
    selected: Sequence[int] | np.ndarray,
    unstable: bool,
    *,
    score: float | None = None,
    reason: str | None = None,
    title: str = "Band selection stability",
) -> Figure:
    """How often each band was chosen across resamples, with the full-data picks marked.

    Parameters
    ----------
    wavelengths_nm
        ``(C,)`` band centres in nm.
    frequency
        ``(C,)`` fraction of resamples in which each band was chosen (0–1).
    selected
        Band indices of the selection on the full data; their bars are highlighted and labelled.
    unstable
        When true, a red "UNSTABLE" flag is drawn inside the axes; otherwise a green "stable" note.
    score
        Optional stability index to print beside the flag.
    reason
        Optional one-line explanation printed under the flag.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    wl = validate_wavelengths(wavelengths_nm)
    freq = _vector(frequency, "frequency", wl.size)
    chosen = _indices(selected, wl.size, "selected")
    fig = Figure(figsize=(9.0, 4.6), layout="constrained")
    ax = fig.add_subplot()
    width = _band_width(wl) * 0.9
    colours = np.full(wl.size, PALETTE[0], dtype=object)
    colours[chosen] = PICK_COLOUR
    ax.bar(wl, freq, width=width, color=colours.tolist(), edgecolor="none")
    _mark_picks(ax, wl, chosen, label="selected on full data")
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel("selection frequency (fraction of resamples)")
    ax.set_ylim(0.0, 1.22)  # headroom above 1.0 holds the flag without covering any bar
    ax.set_yticks(np.linspace(0.0, 1.0, 6))
    ax.set_xlim(wl.min() - _band_width(wl), wl.max() + _band_width(wl))
    ax.grid(True, axis="y", alpha=0.3)
    handles = [
        Patch(color=PALETTE[0], label="band"),
        Patch(color=PICK_COLOUR, label="selected on full data"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    flag = "UNSTABLE" if unstable else "stable"
    if score is not None:
        flag = f"{flag} (stability index {score:.2f})"
    colour = "#C00000" if unstable else "#007A3D"
    ax.text(
        0.99,
        0.985,
        flag,
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=15 if unstable else 12,
        fontweight="bold",
        color=colour,
        bbox={"facecolor": "white", "edgecolor": colour, "boxstyle": "round"},
        zorder=5,
    )
    if reason:
        title = f"{title}\n{textwrap.fill(reason, 100)}"
    fig.suptitle(title, fontsize=12)
    return fig
