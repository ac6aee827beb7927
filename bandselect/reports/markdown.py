"""Markdown of a flow run for the Prefect UI: the campaign, the selection, the products, the MLflow link.

Text only (no Prefect here): :mod:`bandselect.tasks.artifacts` publishes it as the run's artifact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bandselect.selection import BandSelection

__all__ = ["fitted_by", "flow_run_markdown", "markdown_table", "search_note", "selection_table"]


def search_note(selection: BandSelection, trained_bands: Sequence[int] | None) -> str | None:
    """How the search after training changed the trained bands (``refine_window``); None: no move.

    Examples
    --------
    >>> from bandselect.selection import BandSelection
    >>> grid = [500.0, 550.0, 600.0, 650.0, 700.0]
    >>> selection = BandSelection.create([0, 2, 4], grid, selector_type="SoftChannelSelector")
    >>> search_note(selection, [0, 2, 3])
    'training gave 500, 600, 650 nm; the search on the validation rows moved 1 of them'
    >>> search_note(selection, [4, 2, 0]) is None
    True
    """
    if trained_bands is None:
        return None
    trained, selected = sorted(int(b) for b in trained_bands), {int(b) for b in selection.indices}
    if set(trained) == selected:
        return None
    grid = selection.sensor_wavelengths_nm
    listed = ", ".join(f"{grid[b]:.0f}" for b in trained)
    moved = len(set(trained) - selected)
    return f"training gave {listed} nm; the search on the validation rows moved {moved} of them"


def fitted_by(trained: bool, initialised: bool) -> str:
    """How a selector was fitted, in the words of every summary (CLI, Prefect artifact, MLflow).

    ``initialised``: the selector's own start came from the statistics (a trained selector from the
    uniform start did not)."""
    if not trained:
        return "statistics"
    return "two-phase training" if initialised else "gradient training from the uniform start"


def markdown_table(columns: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table, each cell on one line with its pipes escaped (a row per line)."""

    def cell(value: Any) -> str:
        return " ".join(str(value).split()).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, columns)) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def selection_table(selection: BandSelection) -> list[dict[str, Any]]:
    """One row per selected band, in output order: channel, band index, wavelength."""
    names = list(selection.channel_names) or [f"band {i + 1}" for i in range(selection.k)]
    return [
        {"channel": name, "band": index, "wavelength (nm)": round(wavelength, 1)}
        for name, index, wavelength in zip(
            names, selection.output_indices, selection.output_wavelengths_nm, strict=True
        )
    ]


def flow_run_markdown(
    *,
    campaign: str,
    flow: str,
    selector: str,
    selection: BandSelection,
    trained: bool,
    kept_epoch: int | None,
    acquisitions: Sequence[str],
    exported: Mapping[str, int],
    output: str,
    mlflow_link: str | None,
    mlflow_note: str = "",
    trained_bands: Sequence[int] | None = None,
    val_auroc: float | None = None,
    test_auroc: float | None = None,
    n_invalid: int = 0,
    initialised: bool = True,
    prefect_link: str | None = None,
    heading: bool = True,
) -> str:
    """The run's summary: what was selected (and how), what was written, where MLflow has the rest.

    ``trained_bands``: the kept epoch's bands before the search after training; ``val_auroc``,
    ``test_auroc``: the selection's RX AUROC on the validation and test rows (None: not measured);
    ``n_invalid``: the acquisitions' pixels without data (``valid`` False), which counted nowhere;
    ``initialised``: whether a node was initialised from the statistics (a trained selector from the
    uniform start is not); ``mlflow_link`` / ``prefect_link``: the run's pages to link (None: left out;
    the Prefect artifact links MLflow, the MLflow run's description links Prefect); ``heading``: a
    title naming the flow and the campaign (the MLflow run's page has its own).
    """
    how = fitted_by(trained, initialised)
    note = search_note(selection, trained_bands)
    measured = []
    if test_auroc is not None:
        measured.append(f"test {test_auroc:.4f} (held-out rows)")
    if val_auroc is not None:
        measured.append(f"validation {val_auroc:.4f} (chose the epoch and guided the search: optimistic)")
    # First, what a collapsed description (MLflow's shows a few lines) still shows.
    lead = (
        f"**Selected** {', '.join(f'{w:.1f}' for w in selection.output_wavelengths_nm)} nm "
        f"(bands {', '.join(str(i) for i in selection.output_indices)})"
        + ("" if test_auroc is None else f"; test RX AUROC {test_auroc:.4f}")
    )
    lines = [
        *([f"# {flow}: {campaign}", ""] if heading else []),
        lead,
        "",
        f"**Selector** `{selector}` ({selection.selector_type}), fitted by {how}"
        + ("" if kept_epoch is None else f"; weights of epoch {kept_epoch + 1} kept")
        + ("" if note is None else f"; {note}")
        + ".",
        "",
        markdown_table(
            ["channel", "band", "wavelength (nm)"],
            [[r["channel"], r["band"], f"{r['wavelength (nm)']:.1f}"] for r in selection_table(selection)],
        ),
        "",
        *(
            [
                f"**RX AUROC** of these bands (background: training rows' negatives): {'; '.join(measured)}.",
                "",
            ]
            if measured
            else []
        ),
        f"**Acquisitions** {len(acquisitions)}"
        + (
            f" ({n_invalid} pixels without data left out of the statistics and the training)"
            if n_invalid
            else ""
        )
        + f"; **products** in `{output}`: "
        + ", ".join(f"{count} {status}" for status, count in exported.items()),
    ]
    if mlflow_link:
        aside = f" ({mlflow_note})" if mlflow_note else ""
        lines += ["", f"**MLflow run**: [{mlflow_link}]({mlflow_link}){aside}"]
    if prefect_link:
        lines += ["", f"**Prefect flow run**: [{prefect_link}]({prefect_link})"]
    return "\n".join(lines) + "\n"
