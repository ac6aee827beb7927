"""A Prefect progress artifact fed by the library's progress reports (:mod:`bandselect.progress`).

Inside a flow or task run, :func:`prefect_progress` adds a sink that creates one progress artifact on the
first report (the percentage done, its description the latest report: epoch, loss, metric, temperature,
top bands) and updates it with every further report, so the run's Artifacts tab shows how far a long
training or comparison is while it runs. Outside a run it adds nothing (reports still log).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.runtime import flow_run

from bandselect.progress import progress_sink
from bandselect.tasks.artifacts import artifact_key

__all__ = ["PrefectProgress", "prefect_progress"]


class PrefectProgress:
    """A progress sink writing one Prefect progress artifact (created on the first update).

    The percentage follows the reports of ``step`` only (e.g. ``comparison``: selectors done); reports
    of other steps inside it (the epochs of a selector trained during a comparison) update the
    description, so the bar never jumps back.
    """

    def __init__(self, key: str, what: str, step: str) -> None:
        self.key = key
        self.what = what
        self.step = step
        self.percent = 0.0
        self.artifact_id: UUID | None = None

    def update(self, step: str, done: int, total: int, message: str) -> None:
        """Set the artifact to ``done / total`` percent of its step, described by the latest report."""
        if step == self.step:
            self.percent = 100.0 if total <= 0 else round(100.0 * min(done, total) / total, 1)
        description = f"{self.what}: {step} {done}/{total}: {message}"
        percent = self.percent
        if self.artifact_id is None:
            self.artifact_id = create_progress_artifact(percent, key=self.key, description=description)
        else:
            update_progress_artifact(self.artifact_id, percent, description=description)


@contextmanager
def prefect_progress(campaign: str, what: str, step: str) -> Iterator[PrefectProgress | None]:
    """Inside a Prefect run: a progress artifact ``<campaign>-<what>-progress`` whose percentage follows
    the reports of ``step`` made inside the block."""
    if flow_run.get_id() is None:
        yield None
        return
    sink = PrefectProgress(artifact_key(campaign, f"{what}-progress"), what, step)
    with progress_sink(sink):
        yield sink
