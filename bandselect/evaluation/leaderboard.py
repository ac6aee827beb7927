"""The leaderboard of a selector comparison: rows (selectors and baselines), records, tables, CSV.

What :func:`bandselect.evaluation.compare.compare_selections` returns; rendering, MLflow and Prefect read
it. A selector row carries the selector's :class:`~bandselect.selection.BandSelection`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bandselect.errors import ConfigError
from bandselect.evaluation.split import SpatialSplit
from bandselect.evaluation.stability import StabilityResult
from bandselect.selection import BandSelection
from bandselect.training.records import EpochRecord

__all__ = [
    "CLASSIFICATION_MEASURES",
    "MEASURES",
    "MEASURE_LABELS",
    "NOT_APPLICABLE",
    "STATUS_OK",
    "Leaderboard",
    "LeaderboardRow",
    "all_bands_row",
    "measure_axis_label",
    "merge_leaderboards",
    "not_applicable_row",
    "random_bands_row",
    "ranked_rows",
    "selector_progress",
]

#: Measures of a binary task, in leaderboard order; the first is the one rows are ranked by.
MEASURES: tuple[str, ...] = ("logistic_auroc", "rx_auroc", "logistic_holdout_auroc")
#: Measures of a multi-class task (``bandselect.evaluation.classification``), in leaderboard order.
CLASSIFICATION_MEASURES: tuple[str, ...] = ("overall_accuracy", "kappa")
MEASURE_LABELS: Mapping[str, str] = {
    "logistic_auroc": "logistic regression, 5-fold CV within the test blocks",
    "rx_auroc": "RX detector on the test blocks, background from train negatives",
    "logistic_holdout_auroc": "logistic regression fitted on train blocks, scored on test blocks",
    "overall_accuracy": "logistic regression fitted on train blocks, every block held out once",
    "kappa": "logistic regression fitted on train blocks, every block held out once",
}
_MEASURE_QUANTITIES: Mapping[str, str] = {"overall_accuracy": "overall accuracy", "kappa": "Cohen's kappa"}


def measure_axis_label(measure: str) -> str:
    """What a chart of ``measure`` shows, e.g. ``"AUROC (RX detector ...)"`` or ``"Cohen's kappa (...)"``."""
    return f"{_MEASURE_QUANTITIES.get(measure, 'AUROC')} ({MEASURE_LABELS[measure]})"


#: Node types a comparison accepts (``TopKIndices`` and the regularizers are not selectors).
STATUS_OK = "ok"
NOT_APPLICABLE = "not applicable"


@dataclass(frozen=True)
class LeaderboardRow:
    """One leaderboard entry: a selector (``kind="selector"``) or a baseline (``"all_bands"``, ``"random"``).

    ``scores`` maps each measure to its value (NaN when not applicable); ``scores_std`` holds the standard
    deviation over draws for the random baseline. ``status`` is ``"ok"`` or
    ``"not applicable: <error message>"``. A selector row that ran carries its :class:`BandSelection`;
    the bands, wavelengths and composite bands are read from it. A trained learnable selector's row
    carries its training curves (``history``, one
    :class:`~bandselect.training.records.EpochRecord` per epoch) and the epoch its validation kept
    (``best_epoch``).
    """

    name: str
    kind: str
    status: str
    scores: Mapping[str, float]
    selector_type: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    selection: BandSelection | None = None
    scores_std: Mapping[str, float] = field(default_factory=dict)
    stability: StabilityResult | None = None
    history: tuple[EpochRecord, ...] = ()
    best_epoch: int | None = None

    @property
    def trained(self) -> bool:
        """Whether the row's selector was trained (it has training curves)."""
        return bool(self.history)

    @property
    def applicable(self) -> bool:
        """Whether the row has scores (its selector ran on this sensor)."""
        return self.status == STATUS_OK

    @property
    def indices(self) -> tuple[int, ...]:
        """The selected bands in pick order (empty for baselines and rows that did not run)."""
        return () if self.selection is None else self.selection.indices

    @property
    def wavelengths_nm(self) -> tuple[float, ...]:
        """Wavelength of each pick."""
        return () if self.selection is None else self.selection.wavelengths_nm

    @property
    def rgb_indices(self) -> tuple[int, ...]:
        """The bands of the selector's composite, R, G, B (empty when it has fewer than three bands)."""
        if self.selection is None or self.selection.k < 3:
            return ()
        return self.selection.rgb_indices


def ranked_rows(rows: Sequence[LeaderboardRow], primary: str) -> tuple[LeaderboardRow, ...]:
    """Leaderboard order: the applicable rows best first by ``primary``, then the not-applicable ones."""
    ordered = sorted((row for row in rows if row.applicable), key=lambda row: -row.scores[primary])
    return (*ordered, *(row for row in rows if not row.applicable))


def not_applicable_row(
    name: str, selector_type: str, config: Mapping[str, Any], reason: Exception, measures: Sequence[str]
) -> LeaderboardRow:
    """The row of a selector that cannot run on this sensor (``reason`` says why; every score NaN)."""
    return LeaderboardRow(
        name=name,
        kind="selector",
        status=f"{NOT_APPLICABLE}: {reason}",
        scores={m: math.nan for m in measures},
        selector_type=selector_type,
        config=dict(config),
    )


def all_bands_row(n_bands: int, scores: Mapping[str, float]) -> LeaderboardRow:
    """The baseline row of every band of the sensor."""
    return LeaderboardRow(name=f"all bands ({n_bands})", kind="all_bands", status=STATUS_OK, scores=scores)


def random_bands_row(k: int, draws: Sequence[Mapping[str, float]]) -> LeaderboardRow:
    """The baseline row of ``len(draws)`` random draws of ``k`` bands: the mean and spread of each measure."""
    measures = list(draws[0])
    return LeaderboardRow(
        name=f"random {k} bands ({len(draws)} draws)",
        kind="random",
        status=STATUS_OK,
        scores={m: float(np.mean([draw[m] for draw in draws])) for m in measures},
        scores_std={m: float(np.std([draw[m] for draw in draws])) for m in measures},
    )


def selector_progress(row: LeaderboardRow) -> str:
    """One line for a scored row (the comparison's progress report): its bands and scores.

    Examples
    --------
    >>> from bandselect.selection import BandSelection
    >>> selection = BandSelection(indices=(3, 1, 0), output_indices=(3, 1, 0),
    ...     sensor_wavelengths_nm=(550.0, 650.0, 700.0, 800.0), selector_type="CIRFalseColorSelector")
    >>> row = LeaderboardRow(name="cir", kind="selector", status=STATUS_OK, scores={"rx_auroc": 0.9512},
    ...     selection=selection)
    >>> selector_progress(row)
    'cir: 800.0, 650.0, 550.0 nm; rx_auroc 0.9512'
    """
    bands = ", ".join(f"{w:.1f}" for w in row.wavelengths_nm)
    scores = ", ".join(f"{m} {v:.4f}" for m, v in row.scores.items())
    return f"{row.name}: {bands} nm; {scores}"


@dataclass(frozen=True)
class Leaderboard:
    """Outcome of :func:`compare_selections`.

    Attributes
    ----------
    rows
        Applicable rows best first by ``measures[0]`` (selectors and baselines together), then the
        rows that are not applicable.
    measures
        The measures, ranking measure first.
    wavelengths_nm
        ``(C,)`` band centres of the scene.
    split
        The train/test pixel masks.
    summary
        Pixel and positive counts of each part, the split and stability settings.
    """

    rows: tuple[LeaderboardRow, ...]
    measures: tuple[str, ...]
    wavelengths_nm: np.ndarray
    split: SpatialSplit
    summary: Mapping[str, Any]

    def row(self, name: str) -> LeaderboardRow:
        """The row called ``name``."""
        for row in self.rows:
            if row.name == name:
                return row
        raise ConfigError(
            "leaderboard row",
            expected=f"one of {[r.name for r in self.rows]}",
            found=repr(name),
            fix="use a selector or baseline name from the comparison",
        )

    @property
    def selector_rows(self) -> list[LeaderboardRow]:
        """The selector rows (applicable or not), in leaderboard order."""
        return [row for row in self.rows if row.kind == "selector"]

    def records(self) -> list[dict[str, Any]]:
        """JSON-able rows (``leaderboard.json``): rank, name, kind, status, bands, scores, stability."""
        records = []
        rank = 0
        for row in self.rows:
            if row.kind == "selector" and row.applicable:
                rank += 1
            record: dict[str, Any] = {
                "rank": rank if row.kind == "selector" and row.applicable else None,
                "name": row.name,
                "kind": row.kind,
                "selector_type": row.selector_type,
                "status": row.status,
                "bands": list(row.indices),
                "wavelengths_nm": [round(w, 2) for w in row.wavelengths_nm],
            }
            for measure in self.measures:
                record[measure] = _json_float(row.scores.get(measure, math.nan))
                if row.kind == "random":
                    record[f"{measure}_std"] = _json_float(row.scores_std.get(measure, math.nan))
            record["trained"] = row.trained
            record["epochs"] = len(row.history) if row.trained else None
            record["best_epoch"] = row.best_epoch
            stability = row.stability
            record["stability_index"] = None if stability is None else round(stability.score, 4)
            record["unstable"] = None if stability is None else stability.unstable
            record["stability_reason"] = None if stability is None else stability.reason
            records.append(record)
        return records

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """Columns and display rows (bands as text, NaN as empty) for HTML/Prefect tables and CSV."""
        columns = ["rank", "name", "kind", "status", "bands", "wavelengths (nm)", *self.measures]
        columns += ["stability index", "unstable"]
        rows = []
        for record in self.records():
            scores = []
            for measure in self.measures:
                value = record[measure]
                if value is not None and f"{measure}_std" in record and record[f"{measure}_std"] is not None:
                    scores.append(f"{value:.4f} ± {record[f'{measure}_std']:.4f}")
                else:
                    scores.append("" if value is None else round(value, 4))
            rows.append(
                [
                    "" if record["rank"] is None else record["rank"],
                    record["name"],
                    record["kind"],
                    record["status"],
                    " ".join(str(b) for b in record["bands"]),
                    " ".join(f"{w:.0f}" for w in record["wavelengths_nm"]),
                    *scores,
                    "" if record["stability_index"] is None else record["stability_index"],
                    "" if record["unstable"] is None else record["unstable"],
                ]
            )
        return columns, rows

    def __repr__(self) -> str:
        # A notebook's `board`: the ranking as aligned text (the rows' histories, bootstrap selections
        # and the split masks are attributes; the dataclass repr printed them all).
        columns, rows = self.display_table()
        cells = [columns, *([str(cell) for cell in row] for row in rows)]
        widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
                 for line in cells]  # fmt: skip
        return f"Leaderboard by {self.measures[0]} ({len(self.rows)} rows)\n" + "\n".join(lines)

    def _repr_html_(self) -> str:
        """The ranking as an HTML table (Jupyter shows it for a cell ending in the leaderboard)."""
        from bandselect.reports.html import ReportTable, table_html

        columns, rows = self.display_table()
        return table_html(ReportTable(columns, rows, caption=f"Leaderboard by {self.measures[0]}"))

    def display_table(self) -> tuple[list[str], list[list[Any]]]:
        """:meth:`table` less the stability columns when no row has a bootstrap (two empty columns):
        what the notebook repr, Jupyter and the Prefect artifact show."""
        columns, rows = self.table()
        if all(row.stability is None for row in self.rows):
            columns, rows = columns[:-2], [row[:-2] for row in rows]
        return columns, rows

    def to_markdown(self) -> str:
        """The :meth:`display_table` as a markdown table (the comparison's MLflow run description)."""
        from bandselect.reports.markdown import markdown_table

        return markdown_table(*self.display_table())

    def to_json(self) -> str:
        """``{"measures": [...], "summary": {...}, "rows": records()}`` as indented JSON."""
        return json.dumps(
            {"measures": list(self.measures), "summary": dict(self.summary), "rows": self.records()}, indent=2
        )

    def to_csv(self) -> str:
        """The :meth:`table` as CSV text."""
        columns, rows = self.table()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return buffer.getvalue()

    def chart_rows(self, measure: str | None = None) -> list[dict[str, Any]]:
        """Rows for :func:`bandselect.reports.plot_leaderboard` (applicable rows only)."""
        measure = measure or self.measures[0]
        rows = []
        for row in self.rows:
            if not row.applicable:
                continue
            entry: dict[str, Any] = {"name": row.name, "kind": row.kind, measure: row.scores[measure]}
            if row.kind == "random":
                entry[f"{measure}_std"] = row.scores_std[measure]
            rows.append(entry)
        return rows


def _json_float(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def merge_leaderboards(parts: Sequence[Leaderboard]) -> Leaderboard:
    """One leaderboard from the parts of a mapped comparison (one per selector, one for the baselines).

    The parts must come from the same scene, split and measures (the flow makes them with one set of
    settings); rows are ranked again by the first measure, the not-applicable rows last.

    Raises
    ------
    ConfigError
        No part, parts with other measures, another band grid or split, or a row name twice.
    """
    if not parts:
        raise ConfigError("leaderboard parts", expected="one or more", found="none", fix="compare a selector")
    first = parts[0]
    for part in parts[1:]:
        same_split = np.array_equal(part.split.train, first.split.train) and np.array_equal(
            part.split.test, first.split.test
        )
        if (
            part.measures != first.measures
            or not same_split
            or not np.array_equal(part.wavelengths_nm, first.wavelengths_nm)
        ):
            raise ConfigError(
                "leaderboard parts",
                expected=f"one scene, split and measures {list(first.measures)}",
                found=f"a part with measures {list(part.measures)}"
                + ("" if same_split else " on another split"),
                fix="make every part with the same scene and settings",
            )
    rows = [row for part in parts for row in part.rows]
    names = [row.name for row in rows]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(
            "leaderboard parts",
            expected="each row in one part",
            found=f"rows {twice} in several parts",
            fix="give each selector to one part and the baselines to one part",
        )
    return Leaderboard(
        rows=ranked_rows(rows, first.measures[0]),
        measures=first.measures,
        wavelengths_nm=first.wavelengths_nm,
        split=first.split,
        summary=first.summary,
    )
