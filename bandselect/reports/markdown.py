"""Markdown of a flow run for the Prefect UI: the campaign, the selection, the products, the MLflow link.

Text only (no Prefect here): :mod:`bandselect.tasks.artifacts` publishes it as the run's artifact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bandselect.selection import BandSelection

__all__ = ["flow_run_markdown", "selection_table"]


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
    mlflow_link: str,
    mlflow_note: str = "",
) -> str:
    """The run's summary: what was selected (and how), what was written, where MLflow has the rest."""
    how = "two-phase training" if trained else "statistics"
    lines = [
        f"# {flow}: {campaign}",
        "",
        f"**Selector** `{selector}` ({selection.selector_type}), fitted by {how}"
        + ("" if kept_epoch is None else f"; weights of epoch {kept_epoch + 1} kept")
        + ".",
        "",
        "| channel | band | wavelength (nm) |",
        "|---|---|---|",
        *(
            f"| {r['channel']} | {r['band']} | {r['wavelength (nm)']:.1f} |"
            for r in selection_table(selection)
        ),
        "",
        f"**Acquisitions** {len(acquisitions)}; **products** in `{output}`: "
        + ", ".join(f"{count} {status}" for status, count in exported.items()),
        "",
        f"**MLflow run**: [{mlflow_link}]({mlflow_link})" + (f" ({mlflow_note})" if mlflow_note else ""),
    ]
    return "\n".join(lines) + "\n"
