"""Progress of long steps (training epochs, comparison selectors): one report, several places to show it.

The library reports (:func:`report`, :func:`report_epoch`); it never knows where the report goes. Every
report is a log line of the ``bandselect.progress`` logger (the flows forward it to Prefect's run logs,
the CLI prints it), and goes to every *sink* active in the current context: the flows' tasks add a
Prefect progress artifact (:mod:`bandselect.tasks.progress`), the CLI a progress bar on an interactive
terminal (:class:`TerminalBar`). Sinks are context-local (:func:`progress_sink`), so two flows in one
process do not see each other's progress.

Examples
--------
>>> seen = []
>>> class Collect:
...     def update(self, step, done, total, message):
...         seen.append((step, done, total))
>>> with progress_sink(Collect()):
...     report("comparison", 1, 4, "selector soft done")
>>> seen
[('comparison', 1, 4)]
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from bandselect.training.records import EpochRecord

__all__ = [
    "COMPARISON_STEP",
    "EPOCH_STEP",
    "EXPORT_STEP",
    "INGEST_STEP",
    "LOGGER_NAME",
    "SELECTORS_STEP",
    "STATISTICS_STEP",
    "ProgressSink",
    "TerminalBar",
    "band_labels",
    "epoch_message",
    "progress_sink",
    "report",
    "report_epoch",
]

LOGGER_NAME = "bandselect.progress"
_logger = logging.getLogger(LOGGER_NAME)
if _logger.level == logging.NOTSET:
    # Progress lines are INFO: without a level of its own the logger would inherit the root's WARNING
    # and drop them (set another level on it, or on "bandselect", to change that).
    _logger.setLevel(logging.INFO)
#: The step names of the reports: a training epoch finished, a compared selector scored.
EPOCH_STEP = "training epoch"
COMPARISON_STEP = "comparison"
#: Tasks of a statistics job finished (local Dask schedulers).
STATISTICS_STEP = "statistics"
#: A source file read and staged for the campaign store.
INGEST_STEP = "ingest"
#: An acquisition's products exported.
EXPORT_STEP = "export"
#: A mapped comparison's flow: selectors (each in its own task) finished.
SELECTORS_STEP = "selectors compared"
#: How many of the largest-weight bands an epoch line names.
TOP_BANDS = 3

_sinks: contextvars.ContextVar[tuple[ProgressSink, ...]] = contextvars.ContextVar(
    "bandselect_progress_sinks", default=()
)
_wavelengths: contextvars.ContextVar[tuple[float, ...] | None] = contextvars.ContextVar(
    "bandselect_progress_wavelengths", default=None
)


class ProgressSink(Protocol):
    """Somewhere progress is shown: ``update`` is called with each report."""

    def update(self, step: str, done: int, total: int, message: str) -> None:
        """Show that ``done`` of ``total`` units of ``step`` are finished; ``message`` says the latest."""


@contextmanager
def progress_sink(sink: ProgressSink) -> Iterator[ProgressSink]:
    """Send the reports made inside the ``with`` block to ``sink`` too (besides the log line)."""
    token = _sinks.set((*_sinks.get(), sink))
    try:
        yield sink
    finally:
        _sinks.reset(token)


@contextmanager
def band_labels(wavelengths_nm: Sequence[float] | None) -> Iterator[None]:
    """Name bands by their wavelength in the epoch lines reported inside the block."""
    token = _wavelengths.set(None if wavelengths_nm is None else tuple(float(w) for w in wavelengths_nm))
    try:
        yield
    finally:
        _wavelengths.reset(token)


def report(step: str, done: int, total: int, message: str) -> None:
    """Report that ``done`` of ``total`` units of ``step`` are finished: a log line and every sink."""
    _logger.info("%s %d/%d: %s", step, done, total, message)
    for sink in _sinks.get():
        sink.update(step, done, total, message)


def _band(index: int) -> str:
    wavelengths = _wavelengths.get()
    if wavelengths is not None and 0 <= index < len(wavelengths):
        return f"{wavelengths[index]:.1f} nm"
    return f"band {index}"


def epoch_message(record: EpochRecord) -> str:
    """One line for an epoch: loss, validation loss and metrics, temperature, the top bands per selector.

    Examples
    --------
    >>> from bandselect.training.records import EpochRecord
    >>> epoch_message(EpochRecord(epoch=2, loss=0.41, val_loss=0.5, metrics={"rx.auroc": 0.93},
    ...     temperature={"selector": 4.05}, weights={"selector": (0.1, 0.9, 0.2, 0.8)}))
    'loss 0.41, val loss 0.5, rx.auroc 0.9300, T 4.05, top bands band 1, band 3, band 2'
    """
    parts = [f"loss {record.loss:.4g}"]
    if record.val_loss is not None:
        parts.append(f"val loss {record.val_loss:.4g}")
    parts += [f"{name} {value:.4f}" for name, value in record.metrics.items()]
    parts += [f"T {value:.3g}" for value in record.temperature.values()]
    for weights in record.weights.values():
        order = sorted(range(len(weights)), key=lambda i: (-weights[i], i))[:TOP_BANDS]
        parts.append("top bands " + ", ".join(_band(i) for i in order))
    if record.best:
        parts.append("best so far")
    return ", ".join(parts)


def report_epoch(record: EpochRecord, total_epochs: int) -> None:
    """Report a finished training epoch (``record.epoch`` is zero-based)."""
    report(EPOCH_STEP, record.epoch + 1, total_epochs, epoch_message(record))


class TerminalBar:
    """A one-line progress bar on an interactive terminal (the CLI's sink); redrawn in place.

    Parameters
    ----------
    stream
        Where to draw (default ``sys.stderr``).
    width
        Characters of the bar itself.
    """

    def __init__(self, stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width

    def update(self, step: str, done: int, total: int, message: str) -> None:
        """Redraw the bar for ``step``; a finished step ends its line."""
        fraction = 0.0 if total <= 0 else min(1.0, done / total)
        filled = round(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{step} [{bar}] {done}/{total}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
