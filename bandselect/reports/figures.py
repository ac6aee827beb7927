"""The figures of one flow run, drawn from its :class:`~bandselect.selection.BandSelection`.

Band scores over wavelength (the selector's own scores and the campaign statistics' per-band scores),
the temperature schedule and the weight heatmap of a trained selector (from its
:class:`~bandselect.training.records.EpochRecord` history), and RGB previews of a few exported
composites. Nothing is re-derived: the bands marked are the selection's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bandselect.export import composite_image, read_composite
from bandselect.names import VAR_VALID
from bandselect.reports.plots import (
    plot_band_scores,
    plot_rgb_previews,
    plot_temperature_schedule,
    plot_weight_evolution,
    save_figure,
)
from bandselect.selection import BandSelection
from bandselect.stats.scores import rescale_unit

if TYPE_CHECKING:
    from bandselect.stats import BandStatistics
    from bandselect.training.records import EpochRecord

__all__ = ["PREVIEW_SIDE", "composite_preview", "flow_figures", "score_curves"]

#: Longest side of a composite drawn in the previews figure (larger ones are subsampled).
PREVIEW_SIDE = 256
_PREVIEWS_IN_FIGURE = 4


def score_curves(
    selection: BandSelection, statistics: BandStatistics | None = None, positive_label: int | None = None
) -> dict[str, np.ndarray]:
    """Per-band curves for the band-scores figure: the campaign's separability scores, then the selector's.

    With labelled statistics: Fisher, AUC and MI of ``positive_label`` (None: labels > 0; a multi-class
    campaign without one: its largest class) against the rest; unlabelled: the band variance. Then every
    score the selection carries (``selector <name>``), except one that draws the same curve as the
    campaign's score of that name (the selector scored on these statistics).
    """
    curves: dict[str, np.ndarray] = {}
    if statistics is not None:
        classes = [int(c) for c in statistics.classes]
        if len(classes) >= 2 and statistics.has_histograms:
            if positive_label is not None:
                binary = statistics.one_vs_rest(int(positive_label))
            elif set(classes) <= {0, 1} or 0 in classes:
                binary = statistics
            else:
                binary = statistics.one_vs_rest(max(classes))
            curves.update(fisher=binary.fisher, auc=binary.auc, mi=binary.mi)
        else:
            curves["variance"] = np.asarray(statistics.variance)
    for name in selection.scores:
        values = selection.score(name)
        if name in curves and _same_curve(curves[name], values):
            continue  # the selector scored on these statistics: one curve, not two on top of each other
        curves[f"selector {name}"] = values
    return {name: np.nan_to_num(np.asarray(values, dtype=np.float64)) for name, values in curves.items()}


def _same_curve(a: Any, b: Any) -> bool:
    # As the figure draws them: each min-max scaled to [0, 1] (selections keep float32 scores).
    x, y = (np.nan_to_num(np.asarray(v, dtype=np.float64)).reshape(-1) for v in (a, b))
    return x.shape == y.shape and np.allclose(rescale_unit(x), rescale_unit(y), rtol=0, atol=1e-6)


def composite_preview(output: str | os.PathLike[str], acquisition_id: str) -> np.ndarray:
    """An exported composite, subsampled to at most :data:`PREVIEW_SIDE` pixels on its longest side."""
    dataset = read_composite(output, acquisition_id)
    valid = dataset[VAR_VALID] if VAR_VALID in dataset else None
    return composite_image(dataset["composite"], valid, PREVIEW_SIDE)


def flow_figures(
    plots_dir: str | os.PathLike[str],
    selection: BandSelection,
    *,
    selector: str,
    history: Sequence[EpochRecord] = (),
    temperature_min: float | None = None,
    statistics: BandStatistics | None = None,
    positive_label: int | None = None,
    previews: Mapping[str, np.ndarray] | None = None,
    n_acquisitions: int | None = None,
    trained_bands: Sequence[int] | None = None,
) -> list[Path]:
    """Write a flow run's figures as PNGs into ``plots_dir``; return their paths.

    Parameters
    ----------
    plots_dir
        Destination folder (created).
    selection
        The run's selection.
    selector
        The selector node's name (its temperatures and weights in ``history``).
    history
        The gradient phase's records (empty: no training figures).
    temperature_min
        The schedule's floor, drawn in the temperature figure.
    statistics, positive_label
        The campaign statistics for the band-score curves (see :func:`score_curves`).
    previews
        Acquisition id → composite image, drawn side by side (the first four).
    n_acquisitions
        How many acquisitions the run exported (for the previews' title).
    trained_bands
        The bands training gave before the search after it (marked apart in the weights figure when
        the search moved them).
    """
    folder = Path(plots_dir)
    written = []
    figure = plot_band_scores(
        np.asarray(selection.sensor_wavelengths_nm),
        score_curves(selection, statistics, positive_label),
        list(selection.indices),
        [list(w) for w in selection.windows_nm] or None,
        title=f"Band scores and selected bands ({selector}: {selection.selector_type})",
    )
    written.append(save_figure(figure, folder / "band_scores.png"))
    temperatures = [record.temperature[selector] for record in history if selector in record.temperature]
    if temperatures:
        figure = plot_temperature_schedule(temperatures, temperature_min)
        written.append(save_figure(figure, folder / "temperature_schedule.png"))
    rows = [record for record in history if selector in record.weights]
    if rows:
        # With a best-epoch restore the selection comes from the last epoch flagged best.
        kept = [index for index, record in enumerate(rows) if record.best]
        figure = plot_weight_evolution(
            np.asarray([record.weights[selector] for record in rows]),
            np.asarray(selection.sensor_wavelengths_nm),
            selection.k,
            selected=list(selection.indices),
            kept_epoch=kept[-1] if kept else None,
            trained=trained_bands,
        )
        written.append(save_figure(figure, folder / "weight_evolution.png"))
    shown = dict(list((previews or {}).items())[:_PREVIEWS_IN_FIGURE])
    if shown:
        caption = ", ".join(
            f"{channel} {w:.0f} nm" for channel, w in zip("RGB", selection.rgb_wavelengths_nm, strict=True)
        )
        total = n_acquisitions if n_acquisitions is not None else len(shown)
        figure = plot_rgb_previews(
            shown, dict.fromkeys(shown, caption), title=f"Composites of {len(shown)} of {total} acquisitions"
        )
        written.append(save_figure(figure, folder / "rgb_previews.png"))
    return written
